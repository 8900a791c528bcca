"""Replenishment planning on the wire: suggestions and alerts as gRPC messages and as outbox events.

Events go to ``retail.inventory.v1.replenishment_suggested.<location_id>`` and
``retail.inventory.v1.stock_alert_raised.<location_id>``; both belong to the stock level's
aggregate (``sku@location``), so the relay keeps each level's events in order.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from retail.inventory.v1 import events_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb

from servicekit.outbox import OutboxEvent
from services.inventory.domain.replenishment import (
    AlertKind,
    ReplenishmentSuggestion,
    StockAlert,
    StockPosition,
)
from services.inventory.entrypoints.wire import map_decimal

SUGGESTED_SUBJECT = "retail.inventory.v1.replenishment_suggested"
ALERT_SUBJECT = "retail.inventory.v1.stock_alert_raised"
ALERT_KINDS = {AlertKind.LOW_STOCK: pb.STOCK_ALERT_KIND_LOW_STOCK, AlertKind.OVERSTOCK: pb.STOCK_ALERT_KIND_OVERSTOCK}


def map_suggestion(
    suggestion: ReplenishmentSuggestion, position: StockPosition, supplier_id: str, days_of_cover: Decimal | None
) -> pb.ReplenishmentSuggestion:
    return pb.ReplenishmentSuggestion(
        sku=suggestion.sku,
        supplier_id=supplier_id,
        as_of_date=suggestion.as_of.isoformat(),
        lead_time_days=suggestion.lead_time_days,
        review_period_days=suggestion.review_period_days,
        service_level=map_decimal(suggestion.service_level),
        on_hand=map_decimal(position.on_hand),
        reserved=map_decimal(position.reserved),
        in_transit=map_decimal(position.in_transit),
        available_to_promise=map_decimal(position.available_to_promise),
        inventory_position=map_decimal(suggestion.inventory_position),
        lead_time_forecast=map_decimal(suggestion.lead_time_demand),
        protection_forecast=map_decimal(suggestion.protection_demand),
        daily_error_std=map_decimal(suggestion.daily_error_std),
        safety_stock=map_decimal(suggestion.safety_stock),
        reorder_point=map_decimal(suggestion.reorder_point),
        order_up_to=map_decimal(suggestion.order_up_to),
        suggested_quantity=map_decimal(suggestion.suggested_quantity),
        reorder_due=suggestion.reorder_due,
        days_of_cover=map_decimal(days_of_cover),
    )


def map_alert(alert: StockAlert) -> pb.StockAlert:
    return pb.StockAlert(
        sku=alert.sku,
        kind=ALERT_KINDS[alert.kind],
        available_to_promise=map_decimal(alert.available_to_promise),
        reorder_point=map_decimal(alert.reorder_point),
        days_of_cover=map_decimal(alert.days_of_cover),
        overstock_cover_days=map_decimal(alert.overstock_cover_days),
    )


def suggestion_event(suggestion: pb.ReplenishmentSuggestion, location_id: str, occurred_at: datetime) -> OutboxEvent:
    """``ReplenishmentSuggested`` for the supply side."""
    message = events_pb2.ReplenishmentSuggested(
        suggestion_id=str(uuid.uuid4()), location_id=location_id, suggestion=suggestion
    )
    message.occurred_at.FromDatetime(occurred_at)
    return OutboxEvent.of(
        f"{SUGGESTED_SUBJECT}.{location_id}",
        message,
        aggregate_id=f"{suggestion.sku}@{location_id}",
        occurred_at=occurred_at,
    )


def alert_event(alert: StockAlert, occurred_at: datetime) -> OutboxEvent:
    """``StockAlertRaised`` for the store and the buyers."""
    message = events_pb2.StockAlertRaised(
        alert_id=str(uuid.uuid4()),
        location_id=alert.location_id,
        alert=map_alert(alert),
        as_of_date=alert.as_of.isoformat(),
    )
    message.occurred_at.FromDatetime(occurred_at)
    return OutboxEvent.of(
        f"{ALERT_SUBJECT}.{alert.location_id}",
        message,
        aggregate_id=f"{alert.sku}@{alert.location_id}",
        occurred_at=occurred_at,
    )
