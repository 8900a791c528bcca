"""What every fact that moves stock shares: finding which of its lines inventory can apply, and
recording what it cannot as a discrepancy.

A sale's, a goods receipt's and a return to vendor's lines are facts: a line whose SKU or
location inventory does not know is not refused but waits as a discrepancy, and is applied
exactly once when both exist (``InventoryService.apply_waiting_lines``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import UnitOfWork
from services.inventory.adapters import stock_store
from services.inventory.adapters.integration_events import stock_discrepancy_recorded
from services.inventory.domain.model import DiscrepancyKind, LineSource, StockPosition

Key = tuple[str, str]


async def lock_known_positions(
    session: AsyncSession, keys: set[Key], locations: Iterable[str]
) -> tuple[dict[Key, StockPosition], set[str], set[str]]:
    """Lock the stock levels of ``keys`` once, in (sku, location) order (creating those new at a
    location), leaving out the ones whose SKU inventory does not know, or which are at one of the
    facts' ``locations`` that is unknown; returns the levels, the unknown SKUs and the unknown
    locations (of ``locations``)."""
    positions = await stock_store.lock_positions(session, keys)
    unknown: set[str] = set()
    unknown_locations: set[str] = set()
    if missing := keys - positions.keys():  # rare: a SKU new at a location, or not known at all
        unknown = await stock_store.missing_items(session, {sku for sku, _ in missing})
        if unknown:
            # A registration of one of these SKUs either committed before this re-read, or
            # waits for this transaction and then finds the waiting line it records.
            await stock_store.hold_item_registrations(session, unknown)
            unknown = await stock_store.missing_items(session, unknown)
        # A location with every level in place exists; only the others need looking up.
        unknown_locations = await stock_store.missing_locations(
            session, {where for _, where in missing} & set(locations)
        )
        keys = {(sku, where) for sku, where in keys if sku not in unknown and where not in unknown_locations}
        positions = await stock_store.lock_or_create_positions(session, keys)
    return positions, unknown, unknown_locations


async def record_discrepancy(
    uow: UnitOfWork,
    at: datetime,
    kind: DiscrepancyKind,
    *,
    sku: str,
    location_id: str,
    sale_id: str,
    occurred_at: datetime | None,
    on_hand_after: Decimal | None = None,
    quantity: Decimal | None = None,
    is_return: bool = False,
    detail: str = "",
    source: LineSource = LineSource.SALE,
) -> None:
    """Keep a discrepancy and announce it (dated ``at`` when the fact has no time); a line already
    recorded (a replayed sale, a republished receipt) is neither."""
    discrepancy_id = await stock_store.record_discrepancy(
        uow.session,
        kind=kind,
        sku=sku,
        location_id=location_id,
        sale_id=sale_id,
        occurred_at=occurred_at,
        on_hand_after=on_hand_after,
        quantity=quantity,
        is_return=is_return,
        detail=detail,
        source=source,
    )
    if discrepancy_id is not None:
        uow.publish(
            stock_discrepancy_recorded(
                discrepancy_id,
                kind,
                sku=sku,
                location_id=location_id,
                sale_id=sale_id,
                sale_occurred_at=occurred_at or at,
                on_hand_after=on_hand_after,
                quantity=quantity,
                is_return=is_return,
            )
        )
