"""PostgreSQL persistence of stock positions, the ledger and reservations.

Every write goes through a unit of work's session. Batched writes use array parameters
(``unnest``) so that a coalesced batch of reservations costs a fixed number of statements
whatever its size. Rows are always locked in (sku, location_id) order, reservations
before stock levels, so concurrent transactions never deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.domain.locations import Location
from services.inventory.domain.model import (
    ZERO,
    Allocation,
    DiscrepancyKind,
    LineSource,
    LocationStock,
    Movement,
    PendingSaleLine,
    Reservation,
    ReservationStatus,
    StockPosition,
)

Key = tuple[str, str]


async def lock_positions(session: AsyncSession, keys: Iterable[Key]) -> dict[Key, StockPosition]:
    """Load and row-lock stock levels, in a fixed order; missing levels are simply absent."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    rows = await session.execute(
        text(
            "SELECT sku, location_id, on_hand, reserved, in_transit, safety_stock FROM stock_level "
            "WHERE (sku, location_id) IN (SELECT * FROM unnest(CAST(:skus AS text[]), CAST(:locations AS text[]))) "
            "ORDER BY sku, location_id FOR UPDATE"
        ),
        {"skus": [k[0] for k in ordered], "locations": [k[1] for k in ordered]},
    )
    return {(row.sku, row.location_id): _position(row) for row in rows}


async def read_positions(
    session: AsyncSession,
    *,
    sku: str | None = None,
    location_id: str | None = None,
    after_sku: str = "",
    limit: int = 1000,
) -> list[StockPosition]:
    """Stock levels without locking, for answering questions."""
    rows = await session.execute(
        text(
            "SELECT sku, location_id, on_hand, reserved, in_transit, safety_stock FROM stock_level "
            "WHERE (CAST(:sku AS text) IS NULL OR sku = :sku) "
            "AND (CAST(:location AS text) IS NULL OR location_id = :location) AND sku > :after "
            "ORDER BY sku, location_id LIMIT :limit"
        ),
        {"sku": sku, "location": location_id, "after": after_sku, "limit": limit},
    )
    return [_position(row) for row in rows]


async def positions_for_channel(session: AsyncSession, sku: str, channel: str) -> list[StockPosition]:
    rows = await session.execute(
        text(
            "SELECT s.sku, s.location_id, s.on_hand, s.reserved, s.in_transit, s.safety_stock "
            "FROM stock_level s JOIN location l USING (location_id) "
            "WHERE s.sku = :sku AND l.active AND (:channel = '' OR :channel = ANY (l.channels)) "
            "ORDER BY s.location_id"
        ),
        {"sku": sku, "channel": channel},
    )
    return [_position(row) for row in rows]


async def stock_by_location(session: AsyncSession, sku: str) -> list[LocationStock]:
    """A SKU's stock at every active location, with the location's kind and the channels it serves."""
    rows = await session.execute(
        text(
            "SELECT s.sku, s.location_id, s.on_hand, s.reserved, s.in_transit, s.safety_stock, l.kind, l.channels "
            "FROM stock_level s JOIN location l USING (location_id) WHERE s.sku = :sku AND l.active "
            "ORDER BY s.location_id"
        ),
        {"sku": sku},
    )
    return [LocationStock(_position(row), row.kind, tuple(row.channels)) for row in rows]


async def save_positions(session: AsyncSession, positions: Iterable[StockPosition]) -> list[StockPosition]:
    """Write the new balances and append every movement they recorded, in two statements.

    Returns the positions that had movements, i.e. the levels that changed.
    """
    changed = [p for p in positions if p.movements]
    if not changed:
        return []
    await session.execute(
        text(
            "UPDATE stock_level s SET on_hand = v.on_hand, reserved = v.reserved, in_transit = v.in_transit, "
            "updated_at = now() FROM unnest(CAST(:skus AS text[]), CAST(:locations AS text[]), "
            "CAST(:on_hand AS numeric[]), CAST(:reserved AS numeric[]), CAST(:in_transit AS numeric[])) "
            "AS v(sku, location_id, on_hand, reserved, in_transit) "
            "WHERE s.sku = v.sku AND s.location_id = v.location_id"
        ),
        {
            "skus": [p.sku for p in changed],
            "locations": [p.location_id for p in changed],
            "on_hand": [p.on_hand for p in changed],
            "reserved": [p.reserved for p in changed],
            "in_transit": [p.in_transit for p in changed],
        },
    )
    movements = [m for p in changed for m in p.movements]
    await insert_movements(session, movements)
    for position in changed:
        position.movements.clear()
    return changed


async def insert_movements(session: AsyncSession, movements: Sequence[Movement]) -> None:
    if not movements:
        return
    await session.execute(
        text(
            "INSERT INTO stock_movement (sku, location_id, kind, on_hand_delta, reserved_delta, in_transit_delta, "
            "reference) SELECT * FROM unnest(CAST(:skus AS text[]), CAST(:locations AS text[]), "
            "CAST(:kinds AS text[]), CAST(:on_hand AS numeric[]), CAST(:reserved AS numeric[]), "
            "CAST(:in_transit AS numeric[]), CAST(:refs AS text[]))"
        ),
        {
            "skus": [m.sku for m in movements],
            "locations": [m.location_id for m in movements],
            "kinds": [m.kind.value for m in movements],
            "on_hand": [m.on_hand_delta for m in movements],
            "reserved": [m.reserved_delta for m in movements],
            "in_transit": [m.in_transit_delta for m in movements],
            "refs": [m.reference for m in movements],
        },
    )


async def create_position(session: AsyncSession, position: StockPosition) -> None:
    """A new, empty stock level (zero balance, so its ledger starts empty too)."""
    await session.execute(
        text(
            "INSERT INTO stock_level (sku, location_id, on_hand, reserved, in_transit, safety_stock) "
            "VALUES (:sku, :location, 0, 0, 0, :safety) ON CONFLICT DO NOTHING"
        ),
        {"sku": position.sku, "location": position.location_id, "safety": position.safety_stock},
    )


async def insert_reservations(session: AsyncSession, reservations: Sequence[Reservation]) -> None:
    if not reservations:
        return
    await session.execute(
        text(
            "INSERT INTO reservation (reservation_id, sku, channel, status, expires_at, owner) "
            "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:skus AS text[]), CAST(:channels AS text[]), "
            "CAST(:statuses AS text[]), CAST(:expires AS timestamptz[]), CAST(:owners AS text[]))"
        ),
        {
            "ids": [uuid.UUID(r.reservation_id) for r in reservations],
            "skus": [r.sku for r in reservations],
            "channels": [r.channel for r in reservations],
            "statuses": [r.status.value for r in reservations],
            "expires": [r.expires_at for r in reservations],
            "owners": [r.owner for r in reservations],
        },
    )
    allocations = [(r.reservation_id, a) for r in reservations for a in r.allocations]
    await session.execute(
        text(
            "INSERT INTO reservation_allocation (reservation_id, location_id, quantity) "
            "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:locations AS text[]), CAST(:quantities AS numeric[]))"
        ),
        {
            "ids": [uuid.UUID(rid) for rid, _ in allocations],
            "locations": [a.location_id for _, a in allocations],
            "quantities": [a.quantity for _, a in allocations],
        },
    )


async def load_reservation(session: AsyncSession, reservation_id: str, *, lock: bool) -> Reservation | None:
    return (await load_reservations(session, [reservation_id], lock=lock)).get(reservation_id)


async def load_reservations(
    session: AsyncSession, reservation_ids: Iterable[str], *, lock: bool
) -> dict[str, Reservation]:
    """Reservations by id (row-locked in id order when ``lock``), in two statements; unknown or
    malformed ids are simply absent."""
    wanted: dict[uuid.UUID, str] = {}
    for reservation_id in reservation_ids:
        try:
            wanted[uuid.UUID(reservation_id)] = reservation_id
        except ValueError:
            continue
    if not wanted:
        return {}
    ids = sorted(wanted)
    rows = (
        await session.execute(
            text(
                "SELECT reservation_id, sku, channel, status, expires_at, sale_id, owner FROM reservation "
                "WHERE reservation_id = ANY (CAST(:ids AS uuid[])) ORDER BY reservation_id"
                + (" FOR UPDATE" if lock else "")
            ),
            {"ids": ids},
        )
    ).all()
    if not rows:
        return {}
    allocations: dict[uuid.UUID, list[Allocation]] = {}
    for allocation in await session.execute(
        text(
            "SELECT reservation_id, location_id, quantity FROM reservation_allocation "
            "WHERE reservation_id = ANY (CAST(:ids AS uuid[])) ORDER BY reservation_id, location_id"
        ),
        {"ids": [row.reservation_id for row in rows]},
    ):
        allocations.setdefault(allocation.reservation_id, []).append(
            Allocation(allocation.location_id, allocation.quantity)
        )
    return {
        wanted[row.reservation_id]: Reservation(
            reservation_id=str(row.reservation_id),
            sku=row.sku,
            channel=row.channel,
            status=ReservationStatus(row.status),
            expires_at=row.expires_at,
            allocations=allocations.get(row.reservation_id, []),
            sale_id=row.sale_id,
            owner=row.owner,
        )
        for row in rows
    }


async def set_reservation_status(session: AsyncSession, reservation: Reservation) -> None:
    closed = reservation.status not in (ReservationStatus.ACTIVE, ReservationStatus.COMMITTED)
    await session.execute(
        text(
            "UPDATE reservation SET status = :status, sale_id = :sale_id, "
            "closed_at = CASE WHEN :closed THEN now() ELSE closed_at END WHERE reservation_id = :id"
        ),
        {
            "status": reservation.status.value,
            "sale_id": reservation.sale_id,
            "closed": closed,
            "id": uuid.UUID(reservation.reservation_id),
        },
    )


async def lock_expired_reservations(session: AsyncSession, now: datetime, limit: int) -> list[Reservation]:
    """Expired active reservations, locked; SKIP LOCKED lets a commit or release in progress win."""
    ids = (
        (
            await session.execute(
                text(
                    "SELECT reservation_id FROM reservation WHERE status = 'active' AND expires_at <= :now "
                    "ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED"
                ),
                {"now": now, "limit": limit},
            )
        )
        .scalars()
        .all()
    )
    found = [await load_reservation(session, str(rid), lock=False) for rid in ids]
    return [reservation for reservation in found if reservation is not None]


async def known_sku(session: AsyncSession, sku: str) -> bool:
    return bool((await session.execute(text("SELECT 1 FROM item WHERE sku = :sku AND active"), {"sku": sku})).first())


async def known_location(session: AsyncSession, location_id: str) -> bool:
    row = await session.execute(text("SELECT 1 FROM location WHERE location_id = :id AND active"), {"id": location_id})
    return bool(row.first())


async def list_locations(session: AsyncSession) -> list[Location]:
    """Every active location, by id."""
    rows = await session.execute(
        text("SELECT location_id, name, kind, city, channels FROM location WHERE active ORDER BY location_id")
    )
    return [Location(r.location_id, r.name, r.kind, r.city, tuple(r.channels)) for r in rows]


async def ledger_sums(session: AsyncSession, sku: str, location_id: str) -> tuple[Decimal, Decimal, Decimal]:
    row = (
        await session.execute(
            text(
                "SELECT coalesce(sum(on_hand_delta), 0) AS on_hand, coalesce(sum(reserved_delta), 0) AS reserved, "
                "coalesce(sum(in_transit_delta), 0) AS in_transit FROM stock_movement "
                "WHERE sku = :sku AND location_id = :location"
            ),
            {"sku": sku, "location": location_id},
        )
    ).one()
    return row.on_hand, row.reserved, row.in_transit


async def record_discrepancy(
    session: AsyncSession,
    *,
    kind: DiscrepancyKind,
    sku: str,
    location_id: str,
    sale_id: str,
    occurred_at: datetime | None,
    on_hand_after: Decimal | None = None,
    quantity: Decimal | None = None,
    is_return: bool = False,
    detail: str = "",
    source: LineSource = LineSource.SALE,
) -> str | None:
    """Keep one discrepancy; its id, or None when this line of this sale was recorded before."""
    discrepancy_id = uuid.uuid4()
    inserted = await session.execute(
        text(
            "INSERT INTO stock_discrepancy (discrepancy_id, kind, sku, location_id, sale_id, on_hand_after, quantity, "
            "is_return, detail, occurred_at, source) VALUES (:id, :kind, :sku, :location, :sale, :after, :quantity, "
            ":is_return, :detail, :occurred, :source) ON CONFLICT DO NOTHING RETURNING discrepancy_id"
        ),
        {
            "id": discrepancy_id,
            "kind": kind.value,
            "sku": sku,
            "location": location_id,
            "sale": sale_id,
            "after": on_hand_after,
            "quantity": quantity,
            "is_return": is_return,
            "detail": detail,
            "occurred": occurred_at,
            "source": source.value,
        },
    )
    return str(discrepancy_id) if inserted.first() is not None else None


async def missing_items(session: AsyncSession, skus: Iterable[str]) -> set[str]:
    """The SKUs inventory has no item for at all (an inactive item still exists: its sales still move stock)."""
    wanted = sorted(set(skus))
    if not wanted:
        return set()
    rows = await session.execute(text("SELECT sku FROM item WHERE sku = ANY (CAST(:skus AS text[]))"), {"skus": wanted})
    return set(wanted) - {row.sku for row in rows}


async def missing_locations(session: AsyncSession, location_ids: Iterable[str]) -> set[str]:
    """The locations never set up (a closed one still exists: it still takes the sales it made)."""
    wanted = sorted(set(location_ids))
    if not wanted:
        return set()
    rows = await session.execute(
        text("SELECT location_id FROM location WHERE location_id = ANY (CAST(:ids AS text[]))"), {"ids": wanted}
    )
    return set(wanted) - {row.location_id for row in rows}


# A SKU's registration and a sale finding the SKU unknown serialise on this lock, so a line
# recorded as waiting is always seen (and applied) by the registration that makes it known.
_ITEM_REGISTRATION_LOCK = (
    "SELECT pg_advisory_xact_lock{mode}(hashtextextended('inventory.item:' || sku, 0)) "
    "FROM (SELECT sku FROM unnest(CAST(:skus AS text[])) AS s(sku) ORDER BY sku) AS ordered"
)


async def hold_item_registrations(session: AsyncSession, skus: Iterable[str]) -> None:
    """Keep these SKUs from being registered until this transaction ends (shared: sales do not wait on each other)."""
    await session.execute(text(_ITEM_REGISTRATION_LOCK.format(mode="_shared")), {"skus": sorted(set(skus))})


async def lock_item_registration(session: AsyncSession, sku: str) -> None:
    """Wait for every transaction holding this SKU's registration, and keep new ones out until this one ends."""
    await session.execute(text(_ITEM_REGISTRATION_LOCK.format(mode="")), {"skus": [sku]})


async def register_item(
    session: AsyncSession, *, sku: str, name: str, category: str, unit: str, supplier_id: str, active: bool
) -> bool:
    """Make a SKU known to inventory as the catalogue describes it; False when it already was."""
    inserted = await session.execute(
        text(
            "INSERT INTO item (sku, name, category_id, unit, sold_by_weight, supplier_id, active) "
            "VALUES (:sku, :name, :category, :unit, :by_weight, :supplier, :active) "
            "ON CONFLICT (sku) DO NOTHING RETURNING 1"
        ),
        {
            "sku": sku,
            "name": name or sku,
            "category": category or None,
            "unit": unit or "piece",
            "by_weight": unit == "kg",
            "supplier": supplier_id or None,
            "active": active,
        },
    )
    return inserted.first() is not None


_WAITING_LINE_COLUMNS = (
    "d.discrepancy_id, d.kind, d.sale_id, d.location_id, d.sku, d.quantity, d.is_return, d.occurred_at, d.source"
)


async def lock_applicable_waiting_lines(
    session: AsyncSession, *, sku: str | None = None, location_id: str | None = None
) -> list[PendingSaleLine]:
    """The waiting lines (of a SKU, at a location) whose SKU and location both exist now, row-locked.

    Lines another transaction is applying right now are skipped: that one applies them.
    """
    rows = await session.execute(
        text(
            f"SELECT {_WAITING_LINE_COLUMNS} FROM stock_discrepancy d "
            "WHERE d.status = 'open' AND d.kind IN ('unknown_sku', 'unknown_location') "
            "AND (CAST(:sku AS text) IS NULL OR d.sku = :sku) "
            "AND (CAST(:location AS text) IS NULL OR d.location_id = :location) "
            "AND EXISTS (SELECT 1 FROM item i WHERE i.sku = d.sku) "
            "AND EXISTS (SELECT 1 FROM location l WHERE l.location_id = d.location_id) "
            # In the order the sales happened at the tills, as they would have been applied.
            "ORDER BY coalesce(d.occurred_at, d.recorded_at), d.recorded_at, d.discrepancy_id "
            "FOR UPDATE OF d SKIP LOCKED"
        ),
        {"sku": sku, "location": location_id},
    )
    return [_waiting_line(row) for row in rows]


async def mark_lines_applied(session: AsyncSession, discrepancy_ids: Sequence[str], at: datetime) -> None:
    await session.execute(
        text(
            "UPDATE stock_discrepancy SET status = 'resolved', applied_at = :at "
            "WHERE discrepancy_id = ANY (CAST(:ids AS uuid[]))"
        ),
        {"ids": [uuid.UUID(d) for d in discrepancy_ids], "at": at},
    )


async def waiting_lines(
    session: AsyncSession, *, location_id: str | None = None, limit: int = 100
) -> tuple[int, list[PendingSaleLine]]:
    """How many lines still wait (at a location), and the oldest ``limit`` of them."""
    where = (
        "WHERE d.status = 'open' AND d.kind IN ('unknown_sku', 'unknown_location') "
        "AND (CAST(:location AS text) IS NULL OR d.location_id = :location)"
    )
    total = (
        await session.execute(text(f"SELECT count(*) FROM stock_discrepancy d {where}"), {"location": location_id})
    ).scalar_one()
    rows = await session.execute(
        text(
            f"SELECT {_WAITING_LINE_COLUMNS} FROM stock_discrepancy d {where} "
            "ORDER BY coalesce(d.occurred_at, d.recorded_at), d.recorded_at, d.discrepancy_id LIMIT :limit"
        ),
        {"location": location_id, "limit": limit},
    )
    return int(total), [_waiting_line(row) for row in rows]


def _waiting_line(row: Any) -> PendingSaleLine:
    return PendingSaleLine(
        discrepancy_id=str(row.discrepancy_id),
        kind=DiscrepancyKind(row.kind),
        sale_id=row.sale_id,
        location_id=row.location_id,
        sku=row.sku,
        quantity=row.quantity,
        is_return=row.is_return,
        occurred_at=row.occurred_at,
        source=LineSource(row.source),
    )


def _position(row: Any) -> StockPosition:
    return StockPosition(
        sku=row.sku,
        location_id=row.location_id,
        on_hand=row.on_hand or ZERO,
        reserved=row.reserved or ZERO,
        in_transit=row.in_transit or ZERO,
        safety_stock=row.safety_stock or ZERO,
    )


async def lock_or_create_positions(session: AsyncSession, keys: Iterable[Key]) -> dict[Key, StockPosition]:
    """Lock stock levels, creating empty ones first where an item is new at a location."""
    wanted = sorted(set(keys))
    positions = await lock_positions(session, wanted)
    missing = [key for key in wanted if key not in positions]
    for sku, location_id in missing:
        await create_position(session, StockPosition(sku, location_id))
    if missing:
        positions = await lock_positions(session, wanted)
    return positions


async def add_journal_sales(session: AsyncSession, sales: Mapping[tuple[str, date, str], Decimal]) -> None:
    """Accumulate journal entries into the daily totals, in one statement: (location, business
    day, SKU) → the quantity sold, returns netted (a total may be zero or negative)."""
    if not sales:
        return
    keys = sorted(sales)
    await session.execute(
        text(
            "INSERT INTO daily_sales (location_id, sku, day, source, quantity) "
            "SELECT location_id, sku, day, 'journal', quantity FROM unnest(CAST(:locations AS text[]), "
            "CAST(:skus AS text[]), CAST(:days AS date[]), CAST(:quantities AS numeric[])) "
            "AS v(location_id, sku, day, quantity) "
            "ON CONFLICT (location_id, sku, day, source) "
            "DO UPDATE SET quantity = daily_sales.quantity + EXCLUDED.quantity"
        ),
        {
            "locations": [location_id for location_id, _, _ in keys],
            "days": [day for _, day, _ in keys],
            "skus": [sku for _, _, sku in keys],
            "quantities": [sales[key] for key in keys],
        },
    )


async def upsert_imported_sales(
    session: AsyncSession, location_id: str, rows: Sequence[tuple[str, date, Decimal]]
) -> None:
    """Backfilled daily totals: the last import of a (SKU, day) wins, so re-importing changes nothing."""
    await session.execute(
        text(
            "INSERT INTO daily_sales (location_id, sku, day, source, quantity) "
            "SELECT :location, sku, day, 'import', quantity FROM unnest(CAST(:skus AS text[]), "
            "CAST(:days AS date[]), CAST(:quantities AS numeric[])) AS v(sku, day, quantity) "
            "ON CONFLICT (location_id, sku, day, source) DO UPDATE SET quantity = EXCLUDED.quantity"
        ),
        {
            "location": location_id,
            "skus": [r[0] for r in rows],
            "days": [r[1] for r in rows],
            "quantities": [r[2] for r in rows],
        },
    )


async def daily_sales_series(session: AsyncSession, location_id: str, sku: str) -> list[tuple[date, Decimal]]:
    """Sold quantity per day, both sources together, oldest first."""
    rows = await session.execute(
        text(
            "SELECT day, sum(quantity) AS quantity FROM daily_sales WHERE location_id = :location AND sku = :sku "
            "GROUP BY day ORDER BY day"
        ),
        {"location": location_id, "sku": sku},
    )
    return [(row.day, row.quantity) for row in rows]


async def unknown_skus(session: AsyncSession, skus: Iterable[str]) -> set[str]:
    wanted = sorted(set(skus))
    rows = await session.execute(
        text("SELECT sku FROM item WHERE active AND sku = ANY (CAST(:skus AS text[]))"), {"skus": wanted}
    )
    return set(wanted) - {row.sku for row in rows}


async def supplier_of(session: AsyncSession, sku: str) -> str:
    row = (await session.execute(text("SELECT supplier_id FROM item WHERE sku = :sku"), {"sku": sku})).first()
    return (row.supplier_id or "") if row else ""
