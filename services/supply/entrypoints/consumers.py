"""Supply's consumers: pricing's item changes (whose SKU it is) and inventory's replenishment suggestions.

Each handler maps the message and hands it to the service layer in the consumer's unit of work;
the servicekit consumer's inbox makes each event count once.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from retail.inventory.v1 import events_pb2 as inventory_events_pb2
from retail.pricing.v1 import events_pb2 as pricing_events_pb2

from servicekit.consumer import EventHandlers, InboundEvent, PoisonMessage
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec
from servicekit.protowire import moment
from services.supply.adapters.purchase_store import Suggestion
from services.supply.service_layer.purchase_orders import PurchaseOrders, business_day
from services.supply.service_layer.suppliers import Suppliers

MAX_QUANTITY = Decimal(10) ** 9


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


def replenishment_consumer(durable: str = "supply-replenishment") -> ConsumerSpec:
    return ConsumerSpec(
        stream="INVENTORY",
        durable=durable,
        filter_subjects=["retail.inventory.v1.replenishment_suggested.>"],
        description="supply drafts purchase orders from replenishment suggestions",
    )


def replenishment_handlers(purchase_orders: PurchaseOrders) -> EventHandlers[UnitOfWork]:
    async def on_suggested(event: InboundEvent[inventory_events_pb2.ReplenishmentSuggested], uow: UnitOfWork) -> None:
        message = event.message
        suggestion = message.suggestion
        if not message.suggestion_id or not message.location_id or not suggestion.sku:
            raise PoisonMessage("ReplenishmentSuggested without its id, location or SKU")
        try:
            quantity = Decimal(suggestion.suggested_quantity.value or "0")
        except InvalidOperation:
            raise PoisonMessage("ReplenishmentSuggested with an unreadable quantity") from None
        if not quantity.is_finite() or quantity < 0 or quantity >= MAX_QUANTITY:
            raise PoisonMessage("ReplenishmentSuggested with a quantity out of range")
        at = moment(message.occurred_at) if message.HasField("occurred_at") else event.occurred_at
        if at is None:
            raise PoisonMessage("ReplenishmentSuggested without a time")
        try:
            day = date.fromisoformat(suggestion.as_of_date) if suggestion.as_of_date else business_day(at)
        except ValueError:
            raise PoisonMessage("ReplenishmentSuggested with an unreadable as_of_date") from None
        await purchase_orders.suggested(
            uow,
            Suggestion(
                suggestion_id=message.suggestion_id,
                location_id=message.location_id,
                sku=suggestion.sku,
                supplier_id=suggestion.supplier_id or None,
                # Quantities are kept to three decimals (numeric(14, 3)), rounded up: never order less.
                suggested=quantity.quantize(Decimal("0.001"), rounding=ROUND_CEILING),
                business_day=day,
                suggested_at=at,
            ),
            due=suggestion.reorder_due,
        )

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(inventory_events_pb2.ReplenishmentSuggested, on_suggested)
    return handlers
