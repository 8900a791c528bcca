"""Replenishment suggestions and stock alerts from a demand forecast and the current stock position.

The policy is the textbook periodic-review one a store buyer recognises:

* safety stock = z(service level) × σ(daily forecast error) × √(lead time), so stock
  covers the forecast's own mistakes over the days an order takes to arrive (σ is how far
  the forecast's calibrated 95% interval says demand may run above its mean);
* reorder point = expected demand over the lead time + safety stock;
* order-up-to level = expected demand over lead time + review period + safety stock,
  because stock ordered now must last until the order after next arrives;
* suggested quantity = max(0, order-up-to − inventory position), inventory position
  being on hand − reserved + in transit, rounded up to whole packs.

Everything is ``Decimal``; the normal quantile comes from the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from statistics import NormalDist

from services.inventory.domain.forecasting import QUANTITY_PLACES, Forecast

COVER_PLACES = Decimal("0.1")
DEFAULT_SERVICE_LEVEL = Decimal("0.95")
DEFAULT_REVIEW_PERIOD_DAYS = 7
DEFAULT_OVERSTOCK_COVER_DAYS = Decimal(60)
ZERO = Decimal(0)


class AlertKind(StrEnum):
    """Why a stock level needs someone's attention."""

    LOW_STOCK = "low_stock"  # available to promise at or below the reorder point
    OVERSTOCK = "overstock"  # more days of cover than the threshold (or stock nobody is expected to buy)


@dataclass(frozen=True, slots=True)
class ReplenishmentPolicy:
    """How one SKU at one location is replenished.

    ``pack_size`` is the supplier's order multiple (a case of 12, or 1 for single pieces);
    ``None`` orders the exact quantity (loose goods by the gram).
    """

    lead_time_days: int
    review_period_days: int = DEFAULT_REVIEW_PERIOD_DAYS
    service_level: Decimal = DEFAULT_SERVICE_LEVEL
    pack_size: Decimal | None = None
    overstock_cover_days: Decimal = DEFAULT_OVERSTOCK_COVER_DAYS

    def __post_init__(self) -> None:
        if self.lead_time_days < 0:
            raise ValueError(f"lead time must not be negative, not {self.lead_time_days}")
        if self.review_period_days < 0:
            raise ValueError(f"review period must not be negative, not {self.review_period_days}")
        if not ZERO < self.service_level < 1:
            raise ValueError(f"service level must be between 0 and 1 (exclusive), not {self.service_level}")
        if self.pack_size is not None and self.pack_size <= 0:
            raise ValueError(f"pack size must be positive, not {self.pack_size}")
        if self.overstock_cover_days <= 0:
            raise ValueError(f"overstock threshold must be positive, not {self.overstock_cover_days}")

    @property
    def protection_days(self) -> int:
        """Days an order placed now must cover: until the next order's goods arrive."""
        return self.lead_time_days + self.review_period_days


@dataclass(frozen=True, slots=True)
class StockPosition:
    """Stock of one SKU at one location now.

    ``safety_stock`` is the level's configured safety stock, which available-to-promise
    holds back (ATP = on hand − reserved − safety stock, as everywhere in the service).
    """

    on_hand: Decimal
    reserved: Decimal = ZERO
    in_transit: Decimal = ZERO
    safety_stock: Decimal = ZERO

    @property
    def available_to_promise(self) -> Decimal:
        return self.on_hand - self.reserved - self.safety_stock

    @property
    def inventory_position(self) -> Decimal:
        """What is ours to sell once inbound goods arrive: on hand − reserved + in transit."""
        return self.on_hand - self.reserved + self.in_transit


@dataclass(frozen=True, slots=True)
class ReplenishmentSuggestion:
    """What to order of one SKU for one location, and the figures that justify it."""

    sku: str
    location_id: str
    as_of: date
    lead_time_days: int
    review_period_days: int
    service_level: Decimal
    daily_error_std: Decimal
    lead_time_demand: Decimal
    protection_demand: Decimal
    safety_stock: Decimal
    reorder_point: Decimal
    order_up_to: Decimal
    inventory_position: Decimal
    suggested_quantity: Decimal

    @property
    def reorder_due(self) -> bool:
        """True when the inventory position has fallen to the reorder point: order now, not at the next review."""
        return self.inventory_position <= self.reorder_point


@dataclass(frozen=True, slots=True)
class StockAlert:
    """A low-stock or overstock finding for one SKU at one location.

    ``days_of_cover`` is ``None`` when no demand is forecast at all (stock that would never sell).
    """

    kind: AlertKind
    sku: str
    location_id: str
    as_of: date
    available_to_promise: Decimal
    reorder_point: Decimal
    days_of_cover: Decimal | None
    overstock_cover_days: Decimal


def service_level_z(service_level: Decimal) -> Decimal:
    """The standard normal quantile for a cycle service level (0.95 → 1.645)."""
    return Decimal(repr(NormalDist().inv_cdf(float(service_level))))


def safety_stock(daily_error_std: Decimal, lead_time_days: int, service_level: Decimal) -> Decimal:
    """z(service level) × σ(daily forecast error) × √(lead time), to the gram."""
    if daily_error_std < 0:
        raise ValueError(f"forecast error σ must not be negative, not {daily_error_std}")
    root = Decimal(lead_time_days).sqrt() if lead_time_days else ZERO
    return _quantity(service_level_z(service_level) * daily_error_std * root)


def round_up_to_pack(quantity: Decimal, pack_size: Decimal | None) -> Decimal:
    """The smallest whole number of packs holding ``quantity`` (the quantity itself without a pack size)."""
    if quantity <= 0:
        return ZERO
    if pack_size is None:
        return quantity.quantize(QUANTITY_PLACES, rounding=ROUND_CEILING)
    packs = (quantity / pack_size).to_integral_value(rounding=ROUND_CEILING)
    return packs * pack_size


def suggest_replenishment(
    forecast: Forecast,
    position: StockPosition,
    policy: ReplenishmentPolicy,
    daily_error_std: Decimal,
) -> ReplenishmentSuggestion:
    """The order suggestion for the forecast's SKU and location, as of the forecast's first day.

    The forecast must cover the protection period (lead time + review period); a shorter
    one is refused rather than silently under-ordering.
    """
    if forecast.horizon_days < policy.protection_days:
        raise ValueError(
            f"the forecast covers {forecast.horizon_days} days but lead time + review period "
            f"is {policy.protection_days} days"
        )
    lead_time_demand = forecast.expected_total(policy.lead_time_days)
    protection_demand = forecast.expected_total(policy.protection_days)
    buffer = safety_stock(daily_error_std, policy.lead_time_days, policy.service_level)
    reorder_point = lead_time_demand + buffer
    order_up_to = protection_demand + buffer
    shortfall = order_up_to - position.inventory_position
    return ReplenishmentSuggestion(
        sku=forecast.sku,
        location_id=forecast.location_id,
        as_of=forecast.start,
        lead_time_days=policy.lead_time_days,
        review_period_days=policy.review_period_days,
        service_level=policy.service_level,
        daily_error_std=daily_error_std,
        lead_time_demand=lead_time_demand,
        protection_demand=protection_demand,
        safety_stock=buffer,
        reorder_point=reorder_point,
        order_up_to=order_up_to,
        inventory_position=position.inventory_position,
        suggested_quantity=round_up_to_pack(max(ZERO, shortfall), policy.pack_size),
    )


def days_of_cover(stock: Decimal, forecast: Forecast) -> Decimal | None:
    """How many days ``stock`` lasts at the forecast's average expected demand (``None`` if none is expected)."""
    if forecast.horizon_days == 0:
        return None
    average = forecast.expected_total() / forecast.horizon_days
    if average <= 0:
        return None
    return (max(ZERO, stock) / average).quantize(COVER_PLACES)


def stock_alerts(
    suggestion: ReplenishmentSuggestion,
    position: StockPosition,
    forecast: Forecast,
    policy: ReplenishmentPolicy,
) -> list[StockAlert]:
    """Low stock when ATP ≤ reorder point; overstock when on-hand stock covers more days than the threshold.

    At most one alert: stock cannot be both. A zero reorder point (no demand forecast)
    raises no low-stock alert unless ATP is negative.

    Cover is counted on what is physically there and not promised (on hand − reserved):
    goods in transit are not yet a problem on the shelf.
    """
    available = position.on_hand - position.reserved
    cover = days_of_cover(available, forecast)
    alerts = []

    def alert(kind: AlertKind) -> StockAlert:
        return StockAlert(
            kind=kind,
            sku=suggestion.sku,
            location_id=suggestion.location_id,
            as_of=suggestion.as_of,
            available_to_promise=position.available_to_promise,
            reorder_point=suggestion.reorder_point,
            days_of_cover=cover,
            overstock_cover_days=policy.overstock_cover_days,
        )

    atp = position.available_to_promise
    # An item nobody is expected to buy, with nothing on the shelf, is not low on stock (unless oversold).
    if atp <= suggestion.reorder_point and (suggestion.reorder_point > 0 or atp < 0):
        alerts.append(alert(AlertKind.LOW_STOCK))
    elif available > 0 and (cover is None or cover > policy.overstock_cover_days):
        alerts.append(alert(AlertKind.OVERSTOCK))
    return alerts


def _quantity(value: Decimal) -> Decimal:
    """Round a computed quantity to the gram, upwards: a buffer is never rounded away."""
    if not value.is_finite():
        raise ValueError(f"not a finite quantity: {value}")
    return value.quantize(QUANTITY_PLACES, rounding=ROUND_CEILING)


@dataclass(frozen=True, slots=True)
class LastReported:
    """What replenishment runs last told others about one SKU at one location."""

    suggested_quantity: Decimal
    alert: AlertKind | None = None

    @classmethod
    def of(cls, suggestion: ReplenishmentSuggestion, alert: StockAlert | None) -> LastReported:
        return cls(suggestion.suggested_quantity, alert.kind if alert is not None else None)


@dataclass(frozen=True, slots=True)
class ReplenishmentNews:
    """What a run has to tell about one SKU at one location that was not told before."""

    suggestion: ReplenishmentSuggestion | None
    alert: StockAlert | None

    def __bool__(self) -> bool:
        return self.suggestion is not None or self.alert is not None


def news_since(
    last: LastReported | None, suggestion: ReplenishmentSuggestion, alert: StockAlert | None
) -> ReplenishmentNews:
    """Only what changed since ``last``, so a run over unchanged stock and demand says nothing.

    A suggestion is news when its quantity differs from the last one reported (nothing
    reported counts as zero, so a first suggestion to order nothing is not news, and a
    drop to zero withdraws an earlier one). An alert is news when the SKU had no alert or
    one of the other kind: it is raised once, not on every run while it lasts, and again
    after it cleared.
    """
    reported_quantity = last.suggested_quantity if last is not None else ZERO
    reported_alert = last.alert if last is not None else None
    return ReplenishmentNews(
        suggestion if suggestion.suggested_quantity != reported_quantity else None,
        alert if alert is not None and alert.kind is not reported_alert else None,
    )
