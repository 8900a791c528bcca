"""The catalogue consumer: pricing's ItemChanged events kept as inventory's local item projection.

Each item described also becomes known to inventory (its ``item``), and the sale lines that
waited for that SKU are applied in the same transaction: a sale of an item the catalogue
had not announced yet moves stock as soon as it is announced, exactly once.
"""

from __future__ import annotations

import logging
from datetime import UTC

from retail.pricing.v1 import events_pb2 as pricing_events_pb2
from retail.pricing.v1 import pricing_service_pb2 as pricing_pb2

from servicekit.consumer import EventHandlers, InboundEvent, PoisonMessage
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec
from services.inventory.adapters.catalogue_store import CatalogueItem, apply_catalogue_item
from services.inventory.service_layer.handlers import InventoryService

log = logging.getLogger("inventory.catalogue")

PRICING_STREAM = "PRICING"
ITEM_CHANGED_SUBJECT = "retail.pricing.v1.item_changed"
UNITS = {pricing_pb2.UNIT_PIECE: "piece", pricing_pb2.UNIT_KG: "kg", pricing_pb2.UNIT_BOX: "box"}


def catalogue_consumer(durable: str) -> ConsumerSpec:
    """The durable consumer of pricing's item changes (the PRICING stream may appear after inventory starts)."""
    return ConsumerSpec(
        stream=PRICING_STREAM,
        durable=durable,
        filter_subjects=[ITEM_CHANGED_SUBJECT],
        description="inventory keeps its projection of the catalogue items",
    )


def map_catalogue_item(message: pricing_events_pb2.ItemChanged) -> CatalogueItem:
    item = message.item
    if item.HasField("updated_at"):
        updated_at = item.updated_at.ToDatetime(tzinfo=UTC)
    elif message.HasField("occurred_at"):
        updated_at = message.occurred_at.ToDatetime(tzinfo=UTC)
    else:
        updated_at = None
    return CatalogueItem(
        sku=item.sku,
        name=item.name,
        category=item.category,
        barcode=item.barcode,
        unit=UNITS.get(item.unit, ""),
        supplier_id=item.supplier_id,
        active=item.active,
        version=item.version,
        updated_at=updated_at,
    )


def catalogue_handlers(service: InventoryService) -> EventHandlers[UnitOfWork]:
    async def on_item_changed(event: InboundEvent[pricing_events_pb2.ItemChanged], uow: UnitOfWork) -> None:
        if not event.message.item.sku:
            raise PoisonMessage("ItemChanged without a SKU")  # can never mean anything: dead-lettered at once
        item = map_catalogue_item(event.message)
        if not await apply_catalogue_item(uow.session, item):
            log.debug(
                "stale item version ignored",
                extra={"sku": item.sku, "version": item.version, "event_id": event.event_id},
            )
        applied = await service.register_item(
            uow,
            sku=item.sku,
            name=item.name,
            category=item.category,
            unit=item.unit,
            supplier_id=item.supplier_id,
            active=item.active,
        )
        if applied:
            log.info("waiting sale lines applied", extra={"sku": item.sku, "lines": applied})

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(pricing_events_pb2.ItemChanged, on_item_changed)
    return handlers
