"""Supply's consumers: pricing's item changes (whose SKU it is) and inventory's replenishment suggestions.

Each handler maps the message and hands it to the service layer in the consumer's unit of work;
the servicekit consumer's inbox makes each event count once.
"""

from __future__ import annotations

from retail.pricing.v1 import events_pb2 as pricing_events_pb2

from servicekit.consumer import EventHandlers, InboundEvent, PoisonMessage
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec
from servicekit.protowire import moment
from services.supply.service_layer.suppliers import Suppliers


def catalogue_consumer(durable: str = "supply-catalogue") -> ConsumerSpec:
    return ConsumerSpec(
        stream="PRICING",
        durable=durable,
        filter_subjects=["retail.pricing.v1.item_changed"],
        description="supply keeps which supplier each SKU belongs to",
    )


def catalogue_handlers(suppliers: Suppliers) -> EventHandlers[UnitOfWork]:
    async def on_item(event: InboundEvent[pricing_events_pb2.ItemChanged], uow: UnitOfWork) -> None:
        item = event.message.item
        if not item.sku:
            raise PoisonMessage("ItemChanged without a SKU")
        await suppliers.item_changed(
            uow,
            sku=item.sku,
            supplier_id=item.supplier_id or None,
            category=item.category,
            name=item.name,
            version=item.version,
            at=moment(event.message.occurred_at),
        )

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(pricing_events_pb2.ItemChanged, on_item)
    return handlers
