"""Goods received from suppliers and returned to them: supply's facts, applied as stock movements once.

A goods receipt's accepted units enter stock at its location as ``receipt`` movements; a
return to vendor's units leave it as ``vendor_return`` movements; one movement per line,
referenced ``receipt:<receipt_id>#<line>`` / ``vendor-return:<return_id>#<line>``. Each line
is kept in ``supply_line`` before it moves anything, and only the transaction that kept it
applies it, so the same event redelivered, republished under another message id, or handled
by two replicas at once applies each line exactly once. Rejected units never enter stock.

Like a journaled sale, such an event is never refused: a line of a SKU or at a location
inventory does not know waits as a discrepancy and is applied once both exist (by the
SKU's registration or headquarters' reconciliation, ``InventoryService.apply_waiting_lines``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from servicekit.db import UnitOfWork
from services.inventory.adapters import stock_store, supply_store
from services.inventory.adapters.integration_events import StockChangeCause, stock_level_changes
from services.inventory.domain.model import ZERO, DiscrepancyKind, LineSource, SupplyLine
from services.inventory.service_layer.discrepancies import lock_known_positions, record_discrepancy


class SupplyIntake:
    """What the supply consumer calls: one goods receipt or return to vendor per call, in its unit of work."""

    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock

    async def apply_lines(
        self,
        uow: UnitOfWork,
        *,
        source: LineSource,
        location_id: str,
        lines: Sequence[SupplyLine],
        po_id: str = "",
        supplier_id: str = "",
        occurred_at: datetime | None,
        unreadable: Sequence[tuple[SupplyLine, str]] = (),
    ) -> None:
        """Apply a goods receipt's accepted units (``RECEIPT``) or a return to vendor's units
        (``VENDOR_RETURN``) at ``location_id``: one movement per line, each line exactly once.

        Every line is kept first (with its lot, expiry and rejected units, the movement's
        metadata); only lines this transaction kept move stock, so a redelivered or republished
        event, or two replicas handling it at once, apply nothing twice. Rejected units never
        enter stock. Like a sale's, a line of a SKU or at a location inventory does not know
        waits as a discrepancy and is applied once both exist; a line whose quantity cannot
        move stock (``unreadable``: the line and the quantity as sent) is recorded for people.
        """
        if source not in (LineSource.RECEIPT, LineSource.VENDOR_RETURN):
            raise ValueError(f"{source} is not a supply line source")
        session = uow.session
        fresh = await supply_store.claim_supply_lines(
            session, lines, location_id=location_id, po_id=po_id, supplier_id=supplier_id, occurred_at=occurred_at
        )
        moving = [line for line in lines if line.line_index in fresh and line.quantity > ZERO]
        positions, unknown, unknown_locations = await lock_known_positions(
            session, {(line.sku, location_id) for line in moving}, [location_id]
        )
        location_known = location_id not in unknown_locations
        waiting: list[tuple[SupplyLine, DiscrepancyKind]] = []
        last_line: dict[str, SupplyLine] = {}
        for line in moving:
            if line.sku in unknown:
                waiting.append((line, DiscrepancyKind.UNKNOWN_SKU))
            elif not location_known:
                waiting.append((line, DiscrepancyKind.UNKNOWN_LOCATION))
            elif source is LineSource.RECEIPT:
                positions[(line.sku, location_id)].receive(line.quantity, line.reference)
            else:
                positions[(line.sku, location_id)].return_to_vendor(line.quantity, line.reference)
                last_line[line.sku] = line
        changed = await stock_store.save_positions(session, positions.values())
        now = self._clock()
        cause = StockChangeCause.RECEIPT if source is LineSource.RECEIPT else StockChangeCause.VENDOR_RETURN
        uow.publish(*stock_level_changes(changed, cause, now))
        for position in changed:
            if position.is_short and position.sku in last_line:  # more went back than the books held
                await record_discrepancy(
                    uow,
                    now,
                    DiscrepancyKind.NEGATIVE_STOCK,
                    sku=position.sku,
                    location_id=location_id,
                    sale_id=last_line[position.sku].reference,
                    occurred_at=occurred_at,
                    on_hand_after=position.on_hand,
                    source=source,
                )
        for line, kind in waiting:
            await record_discrepancy(
                uow,
                now,
                kind,
                sku=line.sku,
                location_id=location_id,
                sale_id=line.reference,
                occurred_at=occurred_at,
                quantity=line.quantity,
                source=source,
            )
        for line, quantity_text in unreadable:
            await record_discrepancy(
                uow,
                now,
                DiscrepancyKind.UNREADABLE_QUANTITY,
                sku=line.sku,
                location_id=location_id,
                sale_id=line.reference,
                occurred_at=occurred_at,
                detail=f"quantity {quantity_text!r} cannot move stock",
                source=source,
            )
