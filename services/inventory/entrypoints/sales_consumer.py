"""The SALES journal consumer: each sale or return becomes stock movements, once."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

from retail.inventory.v1 import events_pb2
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.consumer import EventHandlers, InboundEvent
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec, StreamSpec
from servicekit.outbox import OutboxEvent
from services.inventory.domain.model import StockPosition, parse_quantity
from services.inventory.entrypoints.grpc_api import map_decimal
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


def discrepancy_event(discrepancy_id: str, position: StockPosition, sale_id: str) -> OutboxEvent:
    message = events_pb2.StockDiscrepancyRecorded(
        discrepancy_id=discrepancy_id,
        sku=position.sku,
        location_id=position.location_id,
        sale_id=sale_id,
        on_hand_after=map_decimal(position.on_hand),
    )
    message.occurred_at.GetCurrentTime()
    return OutboxEvent.of(
        f"retail.inventory.v1.stock_discrepancy_recorded.{position.location_id}",
        message,
        aggregate_id=f"{position.sku}@{position.location_id}",
    )


def sales_handlers(service: InventoryService) -> EventHandlers[UnitOfWork]:
    async def on_sale(event: InboundEvent[sales_pb2.SaleRecorded], uow: UnitOfWork) -> None:
        sale = event.message
        totals: dict[str, Decimal] = {}
        for line in sale.lines:
            totals[line.sku] = totals.get(line.sku, Decimal(0)) + parse_quantity(line.quantity.value)
        await service.apply_sale(
            uow,
            sale_id=sale.sale_id,
            location_id=sale.location_id,
            is_return=sale.kind == sales_pb2.SALE_KIND_RETURN,
            lines=sorted(totals.items()),
            reservation_id=sale.reservation_id,
            occurred_at=sale.occurred_at.ToDatetime(tzinfo=UTC) if sale.HasField("occurred_at") else None,
            discrepancy_event=discrepancy_event,
        )

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(sales_pb2.SaleRecorded, on_sale)
    return handlers
