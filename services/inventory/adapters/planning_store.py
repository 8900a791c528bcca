"""PostgreSQL reads and writes of replenishment planning: sales history, stock for planning, ledger days, reports.

Everything here answers questions about one location; nothing changes stock. Days are
business days in China Standard Time, as in ``daily_sales``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.domain.kpis import DiscrepancyTally
from services.inventory.domain.model import DiscrepancyKind
from services.inventory.domain.replenishment import AlertKind, LastReported, StockPosition

ZERO = Decimal(0)
SELLING_KINDS = ("store", "online")


@dataclass(frozen=True, slots=True)
class SalesVersion:
    """A fingerprint of a location's daily sales before a day: equal fingerprints, same history.

    Weighted sums rather than a hash of every row: one index range scan, and a late sale,
    a return or a corrected import moves at least one of them.
    """

    rows: int
    last_day: date | None
    total: Decimal
    by_day: Decimal
    by_sku: Decimal


@dataclass(frozen=True, slots=True)
class PlanningLevel:
    """One SKU's stock at a location with what replenishing it depends on."""

    sku: str
    position: StockPosition
    supplier_id: str
    lead_time_days: int | None
    sold_by_weight: bool


@dataclass(frozen=True, slots=True)
class LedgerDay:
    """A SKU's ledger on one business day: the net change of on hand and the shrink."""

    day: date
    on_hand_delta: Decimal
    shrink: Decimal


@dataclass(slots=True)
class SkuLedger:
    """A SKU's ledger over a period: on hand before it, its first day ever, and each day's changes."""

    first_day: date
    opening_on_hand: Decimal = ZERO
    days: list[LedgerDay] = field(default_factory=list)


async def location_kind(session: AsyncSession, location_id: str) -> str | None:
    """``store``, ``warehouse`` or ``online`` for an active location; ``None`` if there is none."""
    row = await session.execute(
        text("SELECT kind FROM location WHERE location_id = :id AND active"), {"id": location_id}
    )
    kind: str | None = row.scalar_one_or_none()
    return kind


async def selling_locations(session: AsyncSession) -> list[str]:
    """Active stores and online locations: the ones whose demand is forecast."""
    rows = await session.execute(
        text("SELECT location_id FROM location WHERE active AND kind = ANY (CAST(:kinds AS text[])) ORDER BY 1"),
        {"kinds": list(SELLING_KINDS)},
    )
    return list(rows.scalars())


async def carries(session: AsyncSession, location_id: str, sku: str) -> bool:
    """Whether the SKU has a stock level or any sales history at the location."""
    row = await session.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM stock_level WHERE location_id = :location AND sku = :sku) "
            "OR EXISTS (SELECT 1 FROM daily_sales WHERE location_id = :location AND sku = :sku)"
        ),
        {"location": location_id, "sku": sku},
    )
    return bool(row.scalar_one())


async def sales_version(session: AsyncSession, location_id: str, before: date) -> SalesVersion:
    row = (
        await session.execute(
            text(
                "SELECT count(*) AS rows, max(day) AS last_day, coalesce(sum(quantity), 0) AS total, "
                "coalesce(sum(quantity * (day - DATE '2000-01-01')), 0) AS by_day, "
                "coalesce(sum(quantity * (1 + abs(hashtext(sku)) % 9973)), 0) AS by_sku "
                "FROM daily_sales WHERE location_id = :location AND day < :before"
            ),
            {"location": location_id, "before": before},
        )
    ).one()
    return SalesVersion(row.rows, row.last_day, row.total, row.by_day, row.by_sku)


async def daily_sales_by_sku(session: AsyncSession, location_id: str, before: date) -> dict[str, dict[date, Decimal]]:
    """Units sold per SKU and day before ``before`` (journal and imports together)."""
    rows = await session.execute(
        text(
            "SELECT sku, day, sum(quantity) AS quantity FROM daily_sales "
            "WHERE location_id = :location AND day < :before GROUP BY sku, day ORDER BY sku, day"
        ),
        {"location": location_id, "before": before},
    )
    history: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for row in rows:
        history[row.sku][row.day] = row.quantity
    return dict(history)


async def planning_levels(
    session: AsyncSession, location_id: str, *, after_sku: str = "", limit: int | None = None, supplier_id: str = ""
) -> list[PlanningLevel]:
    """The location's stock levels of active items, by SKU, optionally one supplier's only."""
    rows = await session.execute(
        text(
            "SELECT s.sku, s.on_hand, s.reserved, s.in_transit, s.safety_stock, "
            "coalesce(i.supplier_id, '') AS supplier, "
            "i.lead_time_days, i.sold_by_weight FROM stock_level s JOIN item i USING (sku) "
            "WHERE s.location_id = :location AND i.active AND s.sku > :after "
            "AND (:supplier = '' OR i.supplier_id = :supplier) ORDER BY s.sku LIMIT :limit"
        ),
        {"location": location_id, "after": after_sku, "supplier": supplier_id, "limit": limit},
    )
    return [
        PlanningLevel(
            sku=row.sku,
            position=StockPosition(
                on_hand=row.on_hand, reserved=row.reserved, in_transit=row.in_transit, safety_stock=row.safety_stock
            ),
            supplier_id=row.supplier,
            lead_time_days=row.lead_time_days,
            sold_by_weight=row.sold_by_weight,
        )
        for row in rows
    ]


async def lock_location_reports(session: AsyncSession, location_id: str) -> None:
    """Serialise replenishment runs of one location (replicas, or a test beside the periodic run)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('replenishment-report'), hashtext(:location))"),
        {"location": location_id},
    )


async def last_reports(session: AsyncSession, location_id: str) -> dict[str, LastReported]:
    rows = await session.execute(
        text("SELECT sku, suggested_quantity, alert_kind FROM replenishment_report WHERE location_id = :location"),
        {"location": location_id},
    )
    return {
        row.sku: LastReported(row.suggested_quantity, AlertKind(row.alert_kind) if row.alert_kind else None)
        for row in rows
    }


async def save_reports(session: AsyncSession, location_id: str, as_of: date, reports: dict[str, LastReported]) -> None:
    if not reports:
        return
    skus = sorted(reports)
    await session.execute(
        text(
            "INSERT INTO replenishment_report (location_id, sku, suggested_quantity, alert_kind, as_of) "
            "SELECT :location, sku, quantity, alert, :as_of FROM unnest(CAST(:skus AS text[]), "
            "CAST(:quantities AS numeric[]), CAST(:alerts AS text[])) AS v(sku, quantity, alert) "
            "ON CONFLICT (location_id, sku) DO UPDATE SET suggested_quantity = EXCLUDED.suggested_quantity, "
            "alert_kind = EXCLUDED.alert_kind, as_of = EXCLUDED.as_of, reported_at = now()"
        ),
        {
            "location": location_id,
            "as_of": as_of,
            "skus": skus,
            "quantities": [reports[sku].suggested_quantity for sku in skus],
            "alerts": [_alert_value(reports[sku].alert) for sku in skus],
        },
    )


def _alert_value(alert: AlertKind | None) -> str | None:
    return alert.value if alert is not None else None


async def ledger_by_day(
    session: AsyncSession,
    location_id: str,
    start: date,
    end: date,
    business_time: tzinfo,
    *,
    sku: str = "",
    supplier_id: str = "",
) -> dict[str, SkuLedger]:
    """Each SKU's ledger at the location up to ``end``: everything before ``start`` in one opening sum.

    The ledger records instants; a movement belongs to the business day it happened on in
    ``business_time`` (a fixed offset). Shrink is stock that left without being sold:
    negative count adjustments and transfer shortfalls (``shrink`` movements).
    """
    until = datetime.combine(end + timedelta(days=1), time(), tzinfo=business_time)
    rows = await session.execute(
        text(
            "SELECT sku, GREATEST(day, :opening) AS bucket, min(day) AS first_day, sum(on_hand_delta) AS delta, "
            "sum(shrink) AS shrink FROM (SELECT m.sku, "
            "CAST((m.recorded_at AT TIME ZONE 'UTC') + CAST(:utc_offset AS interval) AS date) AS day, m.on_hand_delta, "
            "CASE WHEN m.kind = 'count_adjustment' AND m.on_hand_delta < 0 THEN -m.on_hand_delta "
            "WHEN m.kind = 'shrink' THEN -(m.on_hand_delta + m.in_transit_delta) ELSE 0 END AS shrink "
            "FROM stock_movement m JOIN item i USING (sku) WHERE m.location_id = :location AND m.recorded_at < :until "
            "AND (:sku = '' OR m.sku = :sku) AND (:supplier = '' OR i.supplier_id = :supplier)) AS moves "
            "GROUP BY sku, bucket ORDER BY sku, bucket"
        ),
        {
            "location": location_id,
            "opening": start - timedelta(days=1),
            "until": until,
            "sku": sku,
            "supplier": supplier_id,
            "utc_offset": business_time.utcoffset(None),
        },
    )
    ledgers: dict[str, SkuLedger] = {}
    for row in rows:
        ledger = ledgers.setdefault(row.sku, SkuLedger(first_day=row.first_day))
        if row.bucket < start:
            ledger.opening_on_hand = row.delta
        else:
            ledger.days.append(LedgerDay(row.bucket, row.delta, row.shrink))
    return ledgers


async def categories_of(session: AsyncSession, skus: Sequence[str]) -> dict[str, str]:
    """Each SKU's category id ("" when it has none)."""
    rows = await session.execute(
        text("SELECT sku, coalesce(category_id, '') AS category_id FROM item WHERE sku = ANY(:skus)"),
        {"skus": list(skus)},
    )
    return {row.sku: row.category_id for row in rows}


async def sales_by_day(
    session: AsyncSession, location_id: str, start: date, end: date, *, sku: str = "", supplier_id: str = ""
) -> dict[str, dict[date, Decimal]]:
    """Units sold per SKU and day of the period (net of returns)."""
    rows = await session.execute(
        text(
            "SELECT d.sku, d.day, sum(d.quantity) AS quantity FROM daily_sales d JOIN item i USING (sku) "
            "WHERE d.location_id = :location AND d.day BETWEEN :start AND :end AND (:sku = '' OR d.sku = :sku) "
            "AND (:supplier = '' OR i.supplier_id = :supplier) GROUP BY d.sku, d.day"
        ),
        {"location": location_id, "start": start, "end": end, "sku": sku, "supplier": supplier_id},
    )
    sold: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for row in rows:
        sold[row.sku][row.day] = row.quantity
    return dict(sold)


async def discrepancy_tallies(
    session: AsyncSession,
    location_id: str,
    start: date,
    end: date,
    tz: tzinfo,
    *,
    sku: str = "",
    supplier_id: str = "",
) -> list[DiscrepancyTally]:
    """Per kind, the discrepancies of the sales made at a location on the days of the period, and how many are open.

    A supplier's view counts its own SKUs only (a SKU inventory does not know has no supplier).
    """
    rows = await session.execute(
        text(
            "SELECT d.kind, count(*) AS recorded, count(*) FILTER (WHERE d.status = 'open') AS open "
            "FROM stock_discrepancy d LEFT JOIN item i ON i.sku = d.sku "
            "WHERE d.location_id = :location AND coalesce(d.occurred_at, d.recorded_at) >= :start_at "
            "AND coalesce(d.occurred_at, d.recorded_at) < :end_at AND (:sku = '' OR d.sku = :sku) "
            "AND (:supplier = '' OR i.supplier_id = :supplier) GROUP BY d.kind"
        ),
        {
            "location": location_id,
            "start_at": datetime.combine(start, time.min, tz),
            "end_at": datetime.combine(end + timedelta(days=1), time.min, tz),
            "sku": sku,
            "supplier": supplier_id,
        },
    )
    order = list(DiscrepancyKind)
    tallies = [DiscrepancyTally(DiscrepancyKind(row.kind), int(row.recorded), int(row.open)) for row in rows]
    return sorted(tallies, key=lambda tally: order.index(tally.kind))
