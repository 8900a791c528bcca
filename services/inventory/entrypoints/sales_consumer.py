"""The SALES journal consumer: each sale or return becomes stock movements, once.

A journal entry is a fact, so this handler never fails on its content: lines inventory
cannot apply yet are recorded as discrepancies by the service (see ``apply_sale``), and a
quantity it cannot read is one of them. It raises only for what a retry can cure.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.consumer import EventHandlers, InboundEvent
from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from servicekit.messaging import ConsumerSpec, StreamSpec
from services.inventory.domain.model import parse_quantity
from services.inventory.service_layer.handlers import InventoryService

SALES_STREAM = "SALES"
INVENTORY_STREAM = StreamSpec(
    name="INVENTORY", subjects=["retail.inventory.v1.>"], description="Facts of the inventory context"
)
SALES_CONSUMER = ConsumerSpec(
    stream=SALES_STREAM,
    durable="inventory-sales",
    filter_subjects=["retail.sales.v1.sale_recorded.>"],
    description="inventory applies every sale and return to stock",
)


def map_sale_lines(sale: sales_pb2.SaleRecorded) -> tuple[list[tuple[str, Decimal]], list[tuple[str, str]]]:
    """The quantity per SKU (lines of one SKU summed), and the SKUs whose quantity cannot move stock."""
    totals: dict[str, Decimal] = {}
    unreadable: dict[str, list[str]] = {}
    for line in sale.lines:
        try:
            quantity = parse_quantity(line.quantity.value)
        except InvalidArgument:
            unreadable.setdefault(line.sku, []).append(line.quantity.value)
            continue
        totals[line.sku] = totals.get(line.sku, Decimal(0)) + quantity
    return sorted(totals.items()), [(sku, ", ".join(texts)) for sku, texts in sorted(unreadable.items())]


def sales_handlers(service: InventoryService) -> EventHandlers[UnitOfWork]:
    async def on_sale(event: InboundEvent[sales_pb2.SaleRecorded], uow: UnitOfWork) -> None:
        sale = event.message
        lines, unreadable = map_sale_lines(sale)
        await service.apply_sale(
            uow,
            sale_id=sale.sale_id,
            location_id=sale.location_id,
            is_return=sale.kind == sales_pb2.SALE_KIND_RETURN,
            lines=lines,
            reservation_id=sale.reservation_id,
            occurred_at=sale.occurred_at.ToDatetime(tzinfo=UTC) if sale.HasField("occurred_at") else None,
            unreadable=unreadable,
        )

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(sales_pb2.SaleRecorded, on_sale)
    return handlers
