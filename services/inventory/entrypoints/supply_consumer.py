"""The supply consumer: goods received from suppliers and returned to them become stock movements, once.

Supply publishes GoodsReceived and GoodsReturnedToVendor through its outbox to its SUPPLY
stream, which may appear after inventory starts: until then this consumer retries, and
nothing else waits for it. Each line is applied once by (receipt or return id, line index)
— see ``SupplyIntake.apply_lines`` — so an event redelivered, or published again
under another message id, moves nothing twice.

Both events are facts: the handler never fails on their content. Lines inventory cannot
apply yet wait as discrepancies, and a quantity it cannot read is one of them. Only an event
without its document id, which no line could ever be keyed by, is dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from retail.supply.v1 import events_pb2 as supply_events_pb2
from retail.supply.v1 import supply_service_pb2 as supply_pb2

from servicekit.consumer import EventHandlers, InboundEvent, PoisonMessage
from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from servicekit.messaging import ConsumerSpec
from servicekit.protowire import optional_moment
from services.inventory.domain.model import ZERO, LineSource, SupplyLine, parse_quantity
from services.inventory.service_layer.supply import SupplyIntake

SUPPLY_STREAM = "SUPPLY"
SUPPLY_SUBJECTS = "retail.supply.v1.>"  # the stream's subjects, as supply declares them
GOODS_RECEIVED_SUBJECT = "retail.supply.v1.goods_received"
GOODS_RETURNED_TO_VENDOR_SUBJECT = "retail.supply.v1.goods_returned_to_vendor"


def supply_consumer(durable: str) -> ConsumerSpec:
    """The durable consumer of supply's goods receipts and returns to vendor."""
    return ConsumerSpec(
        stream=SUPPLY_STREAM,
        durable=durable,
        filter_subjects=[GOODS_RECEIVED_SUBJECT, GOODS_RETURNED_TO_VENDOR_SUBJECT],
        description="inventory applies goods received from suppliers and returned to them",
    )


def map_supply_lines(
    source: LineSource, document_id: str, lines: Sequence[supply_pb2.ReceiptLine]
) -> tuple[list[SupplyLine], list[tuple[SupplyLine, str]]]:
    """The lines as inventory keeps them (``accepted`` is the quantity that moves), and the ones
    whose quantity cannot move stock with that quantity's text. An unset quantity is zero."""
    readable: list[SupplyLine] = []
    unreadable: list[tuple[SupplyLine, str]] = []
    for index, line in enumerate(lines):
        kept = SupplyLine(
            source=source,
            document_id=document_id,
            line_index=index,
            sku=line.sku,
            quantity=ZERO,
            rejected=_lenient_quantity(line.rejected.value),
            reject_reason=line.reject_reason,
            po_line_number=line.po_line_number,
            lot=line.lot,
            expiry_date=line.expiry_date,
        )
        try:
            quantity = parse_quantity(line.accepted.value or "0", allow_zero=True)
        except InvalidArgument:
            unreadable.append((kept, line.accepted.value))
            continue
        readable.append(replace(kept, quantity=quantity))
    return readable, unreadable


def supply_handlers(intake: SupplyIntake) -> EventHandlers[UnitOfWork]:
    async def on_goods_received(event: InboundEvent[supply_events_pb2.GoodsReceived], uow: UnitOfWork) -> None:
        receipt = event.message
        if not receipt.receipt_id:
            raise PoisonMessage("GoodsReceived without a receipt_id")  # its lines could never be keyed
        lines, unreadable = map_supply_lines(LineSource.RECEIPT, receipt.receipt_id, receipt.lines)
        await intake.apply_lines(
            uow,
            source=LineSource.RECEIPT,
            location_id=receipt.location_id,
            lines=lines,
            po_id=receipt.po_id,
            supplier_id=receipt.supplier_id,
            occurred_at=optional_moment(receipt, "occurred_at") or event.occurred_at,
            unreadable=unreadable,
        )

    async def on_goods_returned(event: InboundEvent[supply_events_pb2.GoodsReturnedToVendor], uow: UnitOfWork) -> None:
        returned = event.message
        if not returned.return_id:
            raise PoisonMessage("GoodsReturnedToVendor without a return_id")
        lines, unreadable = map_supply_lines(LineSource.VENDOR_RETURN, returned.return_id, returned.lines)
        await intake.apply_lines(
            uow,
            source=LineSource.VENDOR_RETURN,
            location_id=returned.location_id,
            lines=lines,
            po_id=returned.po_id,
            supplier_id=returned.supplier_id,
            occurred_at=optional_moment(returned, "occurred_at") or event.occurred_at,
            unreadable=unreadable,
        )

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(supply_events_pb2.GoodsReceived, on_goods_received)
    handlers.on(supply_events_pb2.GoodsReturnedToVendor, on_goods_returned)
    return handlers


def _lenient_quantity(text: str) -> Decimal | None:
    """A rejected quantity is kept as information only: zero when unset, None when unreadable."""
    try:
        return parse_quantity(text or "0", allow_zero=True)
    except InvalidArgument:
        return None
