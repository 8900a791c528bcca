"""The SALES journal consumer: each sale or return becomes stock movements, once.

A journal entry is a fact, so this handler never fails on its content: lines inventory
cannot apply yet are recorded as discrepancies by the service (see ``apply_sale``), and a
quantity it cannot read is one of them. It raises only for what a retry can cure.

A fetched batch of sales is applied at once (``InventoryService.apply_sales``: every level the
batch touches locked once, saved once, announced once); when that fails, the consumer applies
the batch again one sale at a time (``apply_sale``), with the same rules and the same results.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from decimal import Decimal

from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.consumer import EventHandlers, InboundEvent
from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from servicekit.messaging import ConsumerSpec, StreamSpec
from services.inventory.domain.journal import JournalSale
from services.inventory.domain.model import parse_quantity
from services.inventory.service_layer.handlers import InventoryService

SALES_STREAM = "SALES"
INVENTORY_STREAM = StreamSpec(
    name="INVENTORY", subjects=["retail.inventory.v1.>"], description="Facts of the inventory context"
)
# Sales applied per transaction (set-based). python -m bench --only pos, inventory applying a backlog alone:
# 50 → 7.6k, 100 → 12.1k, 200 → 11.2k sale lines/s; 100, as the larger batch only holds hot levels longer.
SALES_FETCH_BATCH = 100
SALES_CONSUMER = ConsumerSpec(
    stream=SALES_STREAM,
    durable="inventory-sales",
    filter_subjects=["retail.sales.v1.sale_recorded.>"],
    description="inventory applies every sale and return to stock",
    fetch_batch=SALES_FETCH_BATCH,
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


def map_sale(sale: sales_pb2.SaleRecorded) -> JournalSale:
    """A journal entry as inventory applies it."""
    lines, unreadable = map_sale_lines(sale)
    return JournalSale(
        sale_id=sale.sale_id,
        location_id=sale.location_id,
        is_return=sale.kind == sales_pb2.SALE_KIND_RETURN,
        lines=lines,
        reservation_id=sale.reservation_id,
        occurred_at=sale.occurred_at.ToDatetime(tzinfo=UTC) if sale.HasField("occurred_at") else None,
        unreadable=unreadable,
    )


def sales_handlers(service: InventoryService) -> EventHandlers[UnitOfWork]:
    async def on_sale(event: InboundEvent[sales_pb2.SaleRecorded], uow: UnitOfWork) -> None:
        """One sale (the one-by-one fallback when a batch failed)."""
        await service.apply_sales(uow, [map_sale(event.message)])

    async def on_sales(batch: Sequence[InboundEvent[sales_pb2.SaleRecorded]], uow: UnitOfWork) -> None:
        """The fresh sales of one fetch, in delivery order, at once: the same effects as ``on_sale`` for
        each in turn, with every stock level the batch touches locked, saved and announced once."""
        await service.apply_sales(uow, [map_sale(event.message) for event in batch])

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(sales_pb2.SaleRecorded, on_sale, batch=on_sales)
    return handlers
