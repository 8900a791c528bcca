"""Stock KPIs per location and SKU over a period, from one record per SKU, location and day.

Definitions (the ones store operations in a Chinese supermarket chain report):

* **stock-out rate** — share of days whose closing on hand was zero or below;
* **sell-through** — per SKU, units sold ÷ (units sold + closing stock): how much of
  what was available in the period actually sold. Per location, 动销率: the share of
  the SKUs it carries that sold at least once in the period;
* **days of cover / turnover days** — average closing stock ÷ average daily sales: how
  many days the typical stock would last at the period's selling rate (``None`` when
  nothing sold: the stock does not turn over at all);
* **shrink rate** — shrink ÷ (units sold + shrink): of all the stock that left the
  shelf, the share that left without being sold (damage, expiry, theft, count
  differences). :func:`shrink_rate` takes values as well as quantities, for a shrink
  share in money (value at cost for both).

Negative closing stock (a sale recorded before its receipt) counts as a stock-out day and
as zero stock in the averages: shelves do not hold negative goods. Rates are ``Decimal``
to four places, days to one.

Beside the rates, a location's **discrepancies**: per kind, how many its sales and returns
of the period left (a sale that took on-hand below zero; a line of a SKU, or at a location,
inventory did not know, which waits unapplied; an unreadable quantity), and how many of
them are still open. They are what the figures above cannot see yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.inventory.domain.model import DiscrepancyKind

RATE_PLACES = Decimal("0.0001")
DAY_PLACES = Decimal("0.1")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class DailyStockRecord:
    """One SKU at one location on one day: units sold, units shrunk and the closing on hand."""

    day: date
    units_sold: Decimal
    closing_on_hand: Decimal
    shrink: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class SkuKpis:
    """KPIs of one SKU at one location over ``start`` .. ``end`` (inclusive, ``days`` records)."""

    sku: str
    location_id: str
    start: date
    end: date
    days: int
    units_sold: Decimal
    shrink: Decimal
    closing_stock: Decimal
    stock_out_rate: Decimal
    sell_through_rate: Decimal | None
    days_of_cover: Decimal | None
    shrink_rate: Decimal | None


@dataclass(frozen=True, slots=True)
class LocationKpis:
    """KPIs of one location over a period: its SKUs' figures and the location-wide ones.

    ``sell_through_rate`` is 动销率 (share of carried SKUs that sold); ``stock_out_rate``
    is over all SKU-days; ``days_of_cover`` and ``shrink_rate`` are over the summed units.
    """

    location_id: str
    start: date
    end: date
    skus_carried: int
    skus_sold: int
    sell_through_rate: Decimal | None
    stock_out_rate: Decimal
    days_of_cover: Decimal | None
    shrink_rate: Decimal | None
    by_sku: tuple[SkuKpis, ...]
    by_category: tuple[CategoryKpis, ...] = ()


@dataclass(frozen=True, slots=True)
class CategoryKpis:
    """The location-wide KPIs over one category's SKUs, and how many of them are overstocked.

    A SKU is overstocked when it ends the period with stock on hand and either more days of
    cover than the threshold or no sales at all (stock nobody is buying).
    """

    category_id: str
    kpis: LocationKpis
    overstocked_skus: int
    overstock_rate: Decimal


@dataclass(frozen=True, slots=True)
class DiscrepancyTally:
    """How many discrepancies of one kind a location's sales of a period left, and how many are still open."""

    kind: DiscrepancyKind
    recorded: int
    open: int


def stock_out_rate(closing_on_hand: Sequence[Decimal]) -> Decimal:
    """Share of days whose closing on hand was zero or below."""
    if not closing_on_hand:
        raise ValueError("a stock-out rate needs at least one day")
    out_days = sum(1 for quantity in closing_on_hand if quantity <= 0)
    return _rate(Decimal(out_days), Decimal(len(closing_on_hand)))


def sku_sell_through_rate(units_sold: Decimal, closing_stock: Decimal) -> Decimal | None:
    """Units sold ÷ (units sold + closing stock); ``None`` when there was nothing to sell."""
    available = units_sold + max(ZERO, closing_stock)
    return _rate(units_sold, available) if available > 0 else None


def location_sell_through_rate(units_sold_by_sku: Mapping[str, Decimal]) -> Decimal | None:
    """动销率: share of the carried SKUs (the mapping's keys) that sold at least once."""
    if not units_sold_by_sku:
        return None
    sold = sum(1 for units in units_sold_by_sku.values() if units > 0)
    return _rate(Decimal(sold), Decimal(len(units_sold_by_sku)))


def days_of_cover(average_stock: Decimal, average_daily_sales: Decimal) -> Decimal | None:
    """Average stock ÷ average daily sales (turnover days); ``None`` when nothing sold."""
    if average_daily_sales <= 0:
        return None
    return (max(ZERO, average_stock) / average_daily_sales).quantize(DAY_PLACES)


def shrink_rate(shrink: Decimal, sales: Decimal) -> Decimal | None:
    """Shrink ÷ (sales + shrink), in units or in value at cost; ``None`` when nothing left the shelf."""
    total = sales + shrink
    return _rate(shrink, total) if total > 0 else None


def sku_kpis(sku: str, location_id: str, records: Sequence[DailyStockRecord]) -> SkuKpis:
    """Every KPI of one SKU at one location over the days of ``records`` (one per day, any order)."""
    if not records:
        raise ValueError(f"no daily records for {sku} at {location_id}")
    ordered = sorted(records, key=lambda record: record.day)
    if len({record.day for record in ordered}) != len(ordered):
        raise ValueError(f"more than one record a day for {sku} at {location_id}")
    days = len(ordered)
    units_sold = sum((record.units_sold for record in ordered), ZERO)
    shrink = sum((record.shrink for record in ordered), ZERO)
    closing = ordered[-1].closing_on_hand
    average_stock = sum((max(ZERO, record.closing_on_hand) for record in ordered), ZERO) / days
    return SkuKpis(
        sku=sku,
        location_id=location_id,
        start=ordered[0].day,
        end=ordered[-1].day,
        days=days,
        units_sold=units_sold,
        shrink=shrink,
        closing_stock=closing,
        stock_out_rate=stock_out_rate([record.closing_on_hand for record in ordered]),
        sell_through_rate=sku_sell_through_rate(units_sold, closing),
        days_of_cover=days_of_cover(average_stock, units_sold / days),
        shrink_rate=shrink_rate(shrink, units_sold),
    )


def location_kpis(location_id: str, records_by_sku: Mapping[str, Sequence[DailyStockRecord]]) -> LocationKpis:
    """KPIs of one location: each carried SKU's (the mapping's keys) and the location-wide figures."""
    if not records_by_sku:
        raise ValueError(f"no SKUs carried at {location_id}")
    by_sku = tuple(sku_kpis(sku, location_id, records) for sku, records in sorted(records_by_sku.items()))
    sku_days = sum(kpis.days for kpis in by_sku)
    out_days = sum(1 for records in records_by_sku.values() for record in records if record.closing_on_hand <= 0)
    units_sold = sum((kpis.units_sold for kpis in by_sku), ZERO)
    shrink = sum((kpis.shrink for kpis in by_sku), ZERO)
    period_days = (max(kpis.end for kpis in by_sku) - min(kpis.start for kpis in by_sku)).days + 1
    # Location stock on an average day: each SKU's average stock, summed.
    average_stock = sum(
        (
            sum((max(ZERO, record.closing_on_hand) for record in records), ZERO) / len(records)
            for records in records_by_sku.values()
        ),
        ZERO,
    )
    return LocationKpis(
        location_id=location_id,
        start=min(kpis.start for kpis in by_sku),
        end=max(kpis.end for kpis in by_sku),
        skus_carried=len(by_sku),
        skus_sold=sum(1 for kpis in by_sku if kpis.units_sold > 0),
        sell_through_rate=location_sell_through_rate({kpis.sku: kpis.units_sold for kpis in by_sku}),
        stock_out_rate=_rate(Decimal(out_days), Decimal(sku_days)),
        days_of_cover=days_of_cover(average_stock, units_sold / period_days),
        shrink_rate=shrink_rate(shrink, units_sold),
        by_sku=by_sku,
    )


def is_overstocked(kpis: SkuKpis, overstock_cover_days: Decimal) -> bool:
    """Stock left at the end and either more days of cover than the threshold or nothing sold."""
    if kpis.closing_stock <= 0:
        return False
    return kpis.days_of_cover is None or kpis.days_of_cover > overstock_cover_days


def category_kpis(
    location_id: str,
    records_by_sku: Mapping[str, Sequence[DailyStockRecord]],
    category_of: Mapping[str, str],
    overstock_cover_days: Decimal,
) -> tuple[CategoryKpis, ...]:
    """The KPIs of each category's SKUs at a location (``""`` for SKUs without a category), by category."""
    grouped: dict[str, dict[str, Sequence[DailyStockRecord]]] = {}
    for sku, records in records_by_sku.items():
        grouped.setdefault(category_of.get(sku, ""), {})[sku] = records
    answer = []
    for category_id, skus in sorted(grouped.items()):
        kpis = location_kpis(location_id, skus)
        overstocked = sum(1 for sku in kpis.by_sku if is_overstocked(sku, overstock_cover_days))
        answer.append(
            CategoryKpis(category_id, kpis, overstocked, _rate(Decimal(overstocked), Decimal(kpis.skus_carried)))
        )
    return tuple(answer)


def _rate(part: Decimal, whole: Decimal) -> Decimal:
    return (part / whole).quantize(RATE_PLACES)
