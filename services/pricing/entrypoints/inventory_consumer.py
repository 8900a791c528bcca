"""Pricing's consumer of inventory facts: overstock alerts become markdown suggestions."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb

from servicekit.consumer import EventHandlers, InboundEvent
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec
from services.pricing.service_layer.markdowns import Markdowns, OverstockAlert

INVENTORY_STREAM = "INVENTORY"


def inventory_consumer(durable: str) -> ConsumerSpec:
    return ConsumerSpec(
        stream=INVENTORY_STREAM,
        durable=durable,
        filter_subjects=["retail.inventory.v1.stock_alert_raised.>"],
        description="pricing suggests markdowns for overstocked SKUs of its stores",
    )


def _decimal(text: str, default: Decimal) -> Decimal:
    try:
        value = Decimal(text) if text else default
    except InvalidOperation:
        return default
    return value if not value.is_nan() else default


def inventory_handlers(markdowns: Markdowns) -> EventHandlers[UnitOfWork]:
    async def on_alert(event: InboundEvent[inventory_events.StockAlertRaised], uow: UnitOfWork) -> None:
        alert = event.message.alert
        if alert.kind != inventory_pb.STOCK_ALERT_KIND_OVERSTOCK:
            return
        # No forecast demand at all: nothing is expected to sell, the cover is infinite.
        cover = (
            _decimal(alert.days_of_cover.value, Decimal("Infinity"))
            if alert.HasField("days_of_cover")
            else (Decimal("Infinity"))
        )
        await markdowns.on_overstock(
            uow,
            OverstockAlert(
                store_id=event.message.location_id,
                sku=alert.sku,
                days_of_cover=cover,
                overstock_cover_days=_decimal(alert.overstock_cover_days.value, Decimal(60)),
            ),
        )

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(inventory_events.StockAlertRaised, on_alert)
    return handlers
