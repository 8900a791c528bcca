"""Sales history: receipts per location and day, and the daily per-SKU view forecasting uses.

Each (day, location) draws from its own random stream, so any day can be produced on its
own and a run over the whole history streams in constant memory, one day at a time.
The number of receipts follows the trading calendar (weekday pattern, holidays and
shopping festivals), a mild growth trend and day-to-day noise; the basket follows SKU
popularity, lifted for promoted SKUs while their promotion runs and for festival food in
its season.
"""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from demodata._random import substream
from demodata.locations import STORE_FORMAT_TRAFFIC
from demodata.members import MemberRoll, member_id
from demodata.model import (
    CHINA_STANDARD_TIME,
    Channel,
    DailySales,
    Location,
    LocationKind,
    Occasion,
    Payment,
    PaymentMethod,
    Promotion,
    Sale,
    SaleLine,
    Sku,
    StoreFormat,
    Unit,
)
from demodata.retail_calendar import TradingCalendar
from demodata.scale import DemoScale

CENT = Decimal("0.01")
ZERO_MONEY = Decimal("0.00")

POS_MEMBER_SHARE = 0.5  # with the online orders, which are all by members, about 60 % of receipts
CLICK_AND_COLLECT_SHARE = 0.04
STORE_DELIVERY_SHARE = 0.08  # mini-program orders picked in the store and delivered from it
AWAY_FROM_HOME_SHARE = 0.12  # member receipts at a store other than the member's home store
STORE_EXTRA_LINES = 2.6  # mean lines per receipt beyond the first
ONLINE_EXTRA_LINES = 4.0  # beyond the first two: online baskets are bigger
IN_SEASON_BOOST = 2.0
TREND_PER_YEAR = {LocationKind.STORE: 0.04, LocationKind.ONLINE: 0.18}
DAILY_NOISE = 0.07

# Relative traffic by hour of day (0..23).
_STORE_HOURS = (
    0.05,
    0.05,
    0.05,
    0.05,
    0.05,
    0.05,
    0.1,
    0.5,
    0.85,
    1.0,
    1.1,
    1.2,
    1.0,
    0.8,
    0.7,
    0.8,
    1.1,
    1.6,
    1.8,
    1.5,
    1.0,
    0.6,
    0.3,
    0.1,
)
_ONLINE_HOURS = (
    0.35,
    0.2,
    0.1,
    0.05,
    0.05,
    0.1,
    0.25,
    0.5,
    0.7,
    0.9,
    1.0,
    1.1,
    1.0,
    0.85,
    0.8,
    0.8,
    0.85,
    0.95,
    1.0,
    1.1,
    1.5,
    1.7,
    1.5,
    0.8,
)
_STORE_PAYMENTS = ((PaymentMethod.WECHAT_PAY, 0.48), (PaymentMethod.ALIPAY, 0.3), (PaymentMethod.UNIONPAY_CARD, 0.1))
_APP_PAYMENTS = ((PaymentMethod.WECHAT_PAY, 0.55),)


def _mean_pieces(unit: Unit) -> float:
    """The mean of :func:`_pieces`."""
    return 1.1 if unit is Unit.BOX else 1.48


_MEAN_LOOSE_KG = 0.6


@dataclass(frozen=True, slots=True)
class _Basket:
    """What one location sells on one day: its SKUs and their cumulative pick weights."""

    skus: tuple[Sku, ...]
    cumulative: tuple[float, ...]


class DemandModel:
    """How much each location sells: traffic per day and the pick weights of its SKUs."""

    def __init__(
        self,
        scale: DemoScale,
        stores: tuple[Location, ...],
        online: Location,
        skus: tuple[Sku, ...],
        popularity: dict[str, float],
        promotions: tuple[Promotion, ...],
        calendar: TradingCalendar,
    ) -> None:
        self.scale = scale
        self.calendar = calendar
        self._popularity = popularity
        self._assortments = {
            LocationKind.STORE: skus,
            LocationKind.ONLINE: tuple(sku for sku in skus if not sku.sold_by_weight),  # no loose goods online
        }
        self._base_receipts = {
            store.location_id: scale.receipts_per_store_day
            * STORE_FORMAT_TRAFFIC[store.store_format or StoreFormat.SUPERMARKET]
            for store in stores
        }
        self._base_receipts[online.location_id] = scale.online_orders_per_day
        self._promotions = promotions
        self._occasions = tuple(sorted({sku.seasonal_occasion for sku in skus if sku.seasonal_occasion}))
        self._baskets: dict[tuple[LocationKind, tuple[str, ...], tuple[Occasion, ...]], _Basket] = {}

    def base_receipts(self, location: Location) -> float:
        """Receipts on an average day, before the calendar, trend and noise."""
        return self._base_receipts[location.location_id]

    def expected_receipts(self, location: Location, day: date) -> float:
        kind = LocationKind.ONLINE if location.kind is LocationKind.ONLINE else LocationKind.STORE
        years = (day - self.scale.history_start).days / 365
        trend = 1.0 + TREND_PER_YEAR[kind] * years
        return self.base_receipts(location) * self.calendar.demand_factor(kind, day) * trend

    def active_promotions(self, location: Location, day: date) -> dict[str, Promotion]:
        """Promotions running at ``location`` on ``day``, by SKU code."""
        return {
            promotion.sku_code: promotion
            for promotion in self._promotions
            if promotion.applies(location.location_id, day)
        }

    def basket(self, location: Location, day: date, promotions: dict[str, Promotion]) -> _Basket:
        kind = LocationKind.ONLINE if location.kind is LocationKind.ONLINE else LocationKind.STORE
        in_season = tuple(occasion for occasion in self._occasions if self.calendar.in_season(occasion, day))
        key = (kind, tuple(sorted(promotion.promotion_id for promotion in promotions.values())), in_season)
        basket = self._baskets.get(key)
        if basket is None:
            skus = self._assortments[kind]
            weights = [self._weight(sku, promotions, in_season) for sku in skus]
            basket = _Basket(skus, tuple(itertools.accumulate(weights)))
            if len(self._baskets) >= 64:  # days go by in order: old promotion mixes will not come back
                self._baskets.clear()
            self._baskets[key] = basket
        return basket

    def _weight(self, sku: Sku, promotions: dict[str, Promotion], in_season: tuple[Occasion, ...]) -> float:
        weight = self._popularity[sku.sku_code]
        if sku.seasonal_occasion is not None:
            weight = weight * IN_SEASON_BOOST if sku.seasonal_occasion in in_season else 0.0
        promotion = promotions.get(sku.sku_code)
        if promotion is not None:
            weight *= promotion.expected_uplift
        return weight

    def expected_daily_quantity(self, location: Location, day: date) -> dict[str, float]:
        """Expected units (kg for loose goods) per SKU on an ordinary day like ``day``, without promotions."""
        basket = self.basket(location, day, {})
        total = basket.cumulative[-1] if basket.cumulative else 0.0
        if total == 0.0:
            return {}
        lines = 2 + ONLINE_EXTRA_LINES if location.kind is LocationKind.ONLINE else 1 + STORE_EXTRA_LINES
        receipts = self.base_receipts(location)
        expected = {}
        previous = 0.0
        for sku, cumulative in zip(basket.skus, basket.cumulative, strict=True):
            share = (cumulative - previous) / total
            previous = cumulative
            per_line = _MEAN_LOOSE_KG if sku.sold_by_weight else _mean_pieces(sku.unit)
            expected[sku.sku_code] = receipts * lines * share * per_line
        return expected


class SalesHistory:
    """The receipts of every selling location over the history window, generated on demand."""

    def __init__(
        self,
        seed: int,
        demand: DemandModel,
        members: MemberRoll,
        stores: tuple[Location, ...],
        online: Location,
    ) -> None:
        self._seed = seed
        self._demand = demand
        self._members = members
        self._store_index = {store.location_id: index for index, store in enumerate(stores)}
        self.selling_locations: tuple[Location, ...] = (*stores, online)
        self._trading_seconds = {
            location.location_id: _trading_seconds(location) for location in self.selling_locations
        }
        self.start = demand.scale.history_start
        self.end = demand.scale.end_date

    def iter_sales(self, start: date | None = None, end: date | None = None) -> Iterator[Sale]:
        """Receipts in time order, day by day, over ``start..end`` (inclusive, clipped to the history)."""
        first = max(start or self.start, self.start)
        last = min(end or self.end, self.end)
        day = first
        while day <= last:
            yield from self.sales_on(day)
            day += timedelta(days=1)

    def sales_on(self, day: date) -> list[Sale]:
        """Every receipt of ``day`` across all locations, by time (empty outside the history)."""
        if not self.start <= day <= self.end:
            return []
        sales = [sale for location in self.selling_locations for sale in self._location_day(location, day)]
        sales.sort(key=lambda sale: (sale.occurred_at, sale.sale_id))
        return sales

    def _location_day(self, location: Location, day: date) -> list[Sale]:
        rng = substream(self._seed, "sales", day.isoformat(), location.location_id)
        expected = self._demand.expected_receipts(location, day) * math.exp(rng.gauss(0.0, DAILY_NOISE))
        count = min(99_999, max(0, round(rng.gauss(expected, math.sqrt(expected)))))
        promotions = self._demand.active_promotions(location, day)
        basket = self._demand.basket(location, day, promotions)
        if not basket.cumulative or basket.cumulative[-1] <= 0.0:
            return []
        hours, cumulative_hours = self._trading_seconds[location.location_id]
        seconds = sorted(_pick_second(rng, hours, cumulative_hours) for _ in range(count))
        midnight = datetime.combine(day, time(0), CHINA_STANDARD_TIME)
        prefix = f"{location.location_id}-{day:%Y%m%d}-"
        online = location.kind is LocationKind.ONLINE
        store_index = self._store_index.get(location.location_id)
        sales = []
        for sequence, second in enumerate(seconds, 1):
            channel = self._channel(rng, location)
            shopper: int | None = None
            if channel is not Channel.STORE or rng.random() < POS_MEMBER_SHARE:
                away = online or rng.random() < AWAY_FROM_HOME_SHARE
                shopper = self._members.pick_shopper(rng, day, None if away else store_index)
                if shopper is None and channel is not Channel.STORE and not online:
                    channel = Channel.STORE  # nobody has joined yet: an anonymous till sale instead
            lines = _basket_lines(rng, basket, promotions, online)
            total = sum((line.net_amount for line in lines), ZERO_MONEY)
            sales.append(
                Sale(
                    sale_id=f"{prefix}{sequence:05d}",
                    location_id=location.location_id,
                    channel=channel,
                    business_date=day,
                    occurred_at=midnight + timedelta(seconds=second),
                    terminal_id=rng.choice(location.pos_terminal_ids) if channel is Channel.STORE else None,
                    member_id=member_id(shopper) if shopper is not None else None,
                    lines=lines,
                    payments=(Payment(_payment_method(rng, channel), total),),
                    gross_amount=sum((line.gross_amount for line in lines), ZERO_MONEY),
                    discount_amount=sum((line.discount_amount for line in lines), ZERO_MONEY),
                    total_amount=total,
                )
            )
        return sales

    @staticmethod
    def _channel(rng: random.Random, location: Location) -> Channel:
        if location.kind is LocationKind.ONLINE:
            return Channel.MINI_PROGRAM if rng.random() < 0.6 else Channel.ONLINE
        draw = rng.random()
        if draw < CLICK_AND_COLLECT_SHARE and Channel.CLICK_AND_COLLECT in location.channels:
            return Channel.CLICK_AND_COLLECT
        if draw > 1 - STORE_DELIVERY_SHARE and Channel.MINI_PROGRAM in location.channels:
            return Channel.MINI_PROGRAM
        return Channel.STORE


def _basket_lines(
    rng: random.Random, basket: _Basket, promotions: dict[str, Promotion], online: bool
) -> tuple[SaleLine, ...]:
    line_count = (
        2 + int(rng.expovariate(1 / ONLINE_EXTRA_LINES)) if online else 1 + int(rng.expovariate(1 / STORE_EXTRA_LINES))
    )
    total_weight = basket.cumulative[-1]
    quantities: dict[int, Decimal] = {}
    for _ in range(min(line_count, 30)):
        position = bisect_right(basket.cumulative, rng.random() * total_weight)
        position = min(position, len(basket.skus) - 1)
        sku = basket.skus[position]
        if sku.sold_by_weight:
            quantity = Decimal(min(3_000, 120 + int(rng.expovariate(1 / 480)))).scaleb(-3)
        else:
            quantity = Decimal(_pieces(rng, sku.unit))
        quantities[position] = quantities[position] + quantity if position in quantities else quantity
    lines = []
    for position, quantity in quantities.items():
        sku = basket.skus[position]
        gross = (sku.base_price * quantity).quantize(CENT, rounding=ROUND_HALF_UP)
        promotion = promotions.get(sku.sku_code)
        discount = (
            ((sku.base_price - promotion.promo_price) * quantity).quantize(CENT, rounding=ROUND_HALF_UP)
            if promotion is not None
            else ZERO_MONEY
        )
        lines.append(
            SaleLine(
                sku_code=sku.sku_code,
                quantity=quantity,
                unit_price=sku.base_price,
                gross_amount=gross,
                discount_amount=discount,
                net_amount=gross - discount,
                promotion_id=promotion.promotion_id if promotion is not None else None,
            )
        )
    return tuple(lines)


def _pieces(rng: random.Random, unit: Unit) -> int:
    """Most people take one; some take two, a few stock up (but rarely on whole cases)."""
    draw = rng.random()
    if unit is Unit.BOX:
        return 1 if draw < 0.9 else 2
    return 1 if draw < 0.72 else 2 if draw < 0.92 else rng.randint(3, 6)


def _payment_method(rng: random.Random, channel: Channel) -> PaymentMethod:
    if channel in (Channel.MINI_PROGRAM, Channel.CLICK_AND_COLLECT):
        return PaymentMethod.WECHAT_PAY  # mini-program checkout only offers WeChat Pay
    options = _APP_PAYMENTS if channel is Channel.ONLINE else _STORE_PAYMENTS
    fallback = PaymentMethod.ALIPAY if channel is Channel.ONLINE else PaymentMethod.CASH
    draw = rng.random()
    for method, share in options:
        if draw < share:
            return method
        draw -= share
    return fallback


def _trading_seconds(location: Location) -> tuple[tuple[tuple[int, int], ...], tuple[float, ...]]:
    """The location's open stretch of each hour of the day and their cumulative traffic weights."""
    profile = _ONLINE_HOURS if location.kind is LocationKind.ONLINE else _STORE_HOURS
    opens, closes = 0, 24 * 3600
    if location.opening_hours is not None:
        opens = location.opening_hours.opens.hour * 3600 + location.opening_hours.opens.minute * 60
        closes = location.opening_hours.closes.hour * 3600 + location.opening_hours.closes.minute * 60
    stretches = []
    weights = []
    for hour, weight in enumerate(profile):
        start, end = max(opens, hour * 3600), min(closes, (hour + 1) * 3600)
        if start < end:
            stretches.append((start, end))
            weights.append(weight * (end - start) / 3600)
    return tuple(stretches), tuple(itertools.accumulate(weights))


def _pick_second(rng: random.Random, stretches: tuple[tuple[int, int], ...], cumulative: tuple[float, ...]) -> int:
    position = min(bisect_right(cumulative, rng.random() * cumulative[-1]), len(stretches) - 1)
    start, end = stretches[position]
    return rng.randrange(start, end)


def aggregate_daily_sales(sales: Iterable[Sale]) -> Iterator[DailySales]:
    """Roll receipts up to (business date, location, SKU), one day at a time.

    ``sales`` must come in business-date order (as :meth:`SalesHistory.iter_sales` gives
    them); each day's rows are sorted by location and SKU.
    """
    current: date | None = None
    totals: dict[tuple[str, str], list[Decimal]] = {}
    counts: dict[tuple[str, str], int] = {}

    def flush(day: date) -> Iterator[DailySales]:
        for (location_id, sku_code), (quantity, gross, discount, revenue) in sorted(totals.items()):
            yield DailySales(
                day, location_id, sku_code, quantity, gross, discount, revenue, counts[location_id, sku_code]
            )

    for sale in sales:
        if sale.business_date != current:
            if current is not None:
                if sale.business_date < current:
                    raise ValueError("sales must come in business-date order to be aggregated")
                yield from flush(current)
            current = sale.business_date
            totals.clear()
            counts.clear()
        for line in sale.lines:
            key = (sale.location_id, line.sku_code)
            sums = totals.get(key)
            if sums is None:
                totals[key] = [line.quantity, line.gross_amount, line.discount_amount, line.net_amount]
                counts[key] = 1
            else:
                sums[0] += line.quantity
                sums[1] += line.gross_amount
                sums[2] += line.discount_amount
                sums[3] += line.net_amount
                counts[key] += 1
    if current is not None:
        yield from flush(current)
