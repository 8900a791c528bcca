"""The alerts service's consumers: one durable per stream it reads, each with the servicekit inbox.

* INVENTORY: ``StockAlertRaised`` (LOW_STOCK / OVERSTOCK), ``SalesAnomalyDetected`` (SALES_ANOMALY
  with its ranked causes) and ``StockLevelChanged`` (the stock-out spells).
* PRICING: ``ItemChanged`` (SKU → category), ``PriceChanged`` (till-price history) and
  ``LabelSyncGivenUp`` (LABEL_SYNC_GIVEN_UP and the label projection).
* MARKETING: ``RedemptionConflictRecorded`` (REDEMPTION_CONFLICT) and ``CampaignLaunched`` (campaigns).
* SUPPLY: ``StatementStatusChanged`` to DISPUTED (STATEMENT_DISPUTED).
* SALES: ``SaleRecorded`` (each terminal's and store's last journal entry).

Each handler maps the message and hands it to the service layer in the consumer's unit of work,
so the inbox row and its effect commit together: a redelivered event counts once.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from retail.common.v1 import money_pb2
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.marketing.v1 import events_pb2 as marketing_events
from retail.pricing.v1 import events_pb2 as pricing_events
from retail.sales.v1 import events_pb2 as sales_events
from retail.supply.v1 import events_pb2 as supply_events
from retail.supply.v1 import supply_service_pb2 as supply_pb

from servicekit.consumer import EventHandlers, InboundEvent, PoisonMessage
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec
from servicekit.protowire import moment
from services.alerts.domain.causes import Anomaly, Direction
from services.alerts.service_layer.findings import Findings, StockFinding
from services.alerts.service_layer.projections import Projections


def inventory_consumer(durable: str = "alerts-inventory") -> ConsumerSpec:
    return ConsumerSpec(
        stream="INVENTORY",
        durable=durable,
        filter_subjects=[
            "retail.inventory.v1.stock_alert_raised.>",
            "retail.inventory.v1.sales_anomaly_detected.>",
            "retail.inventory.v1.stock_level_changed.>",
        ],
        description="alerts raises stock alerts and sales anomalies and keeps stock-outs",
    )


def pricing_consumer(durable: str = "alerts-pricing") -> ConsumerSpec:
    return ConsumerSpec(
        stream="PRICING",
        durable=durable,
        filter_subjects=[
            "retail.pricing.v1.item_changed",
            "retail.pricing.v1.price_changed.>",
            "retail.pricing.v1.label_sync_given_up.>",
        ],
        description="alerts keeps categories, till-price history and labels given up",
    )


def marketing_consumer(durable: str = "alerts-marketing") -> ConsumerSpec:
    return ConsumerSpec(
        stream="MARKETING",
        durable=durable,
        filter_subjects=["retail.marketing.v1.redemption_conflict_recorded", "retail.marketing.v1.campaign_launched"],
        description="alerts raises redemption conflicts and keeps campaigns",
    )


def supply_consumer(durable: str = "alerts-supply") -> ConsumerSpec:
    return ConsumerSpec(
        stream="SUPPLY",
        durable=durable,
        filter_subjects=["retail.supply.v1.statement_status_changed"],
        description="alerts raises disputed statements",
    )


def sales_consumer(durable: str = "alerts-sales") -> ConsumerSpec:
    return ConsumerSpec(
        stream="SALES",
        durable=durable,
        filter_subjects=["retail.sales.v1.sale_recorded.>"],
        description="alerts keeps each POS terminal's and store's last journal entry",
    )


def _decimal(message: money_pb2.Decimal, what: str) -> Decimal:
    try:
        value = Decimal(message.value or "0")
    except InvalidOperation:
        raise PoisonMessage(f"{what} is not a decimal") from None
    if not value.is_finite():
        raise PoisonMessage(f"{what} is not a finite decimal")
    return value


def _text(message: money_pb2.Decimal) -> str:
    return message.value or ""


def _fen(message: money_pb2.Money, present: bool) -> int | None:
    return message.minor_units if present else None


def inventory_handlers(findings: Findings, projections: Projections) -> EventHandlers[UnitOfWork]:
    async def on_stock_alert(event: InboundEvent[inventory_events.StockAlertRaised], uow: UnitOfWork) -> None:
        message = event.message
        if not message.location_id or not message.alert.sku:
            raise PoisonMessage("StockAlertRaised without its location or SKU")
        at = moment(message.occurred_at) if message.HasField("occurred_at") else event.occurred_at
        if at is None:
            raise PoisonMessage("StockAlertRaised without a time")
        finding = message.alert
        await findings.stock_alert(
            uow,
            StockFinding(
                alert_id=message.alert_id,
                location_id=message.location_id,
                sku=finding.sku,
                overstock=finding.kind == inventory_pb.STOCK_ALERT_KIND_OVERSTOCK,
                available=_text(finding.available_to_promise),
                reorder_point=_text(finding.reorder_point),
                days_of_cover=_text(finding.days_of_cover),
                as_of_date=message.as_of_date,
                at=at,
            ),
        )

    async def on_anomaly(event: InboundEvent[inventory_events.SalesAnomalyDetected], uow: UnitOfWork) -> None:
        message = event.message
        if not message.location_id or not message.category:
            raise PoisonMessage("SalesAnomalyDetected without its location or category")
        try:
            day = date.fromisoformat(message.business_date)
        except ValueError:
            raise PoisonMessage("SalesAnomalyDetected with an unreadable business_date") from None
        if message.direction == inventory_events.SALES_ANOMALY_DIRECTION_UNSPECIFIED:
            raise PoisonMessage("SalesAnomalyDetected without a direction")
        at = moment(message.occurred_at) if message.HasField("occurred_at") else event.occurred_at
        if at is None:
            raise PoisonMessage("SalesAnomalyDetected without a time")
        anomaly = Anomaly(
            anomaly_id=message.anomaly_id,
            location_id=message.location_id,
            category=message.category,
            business_date=day,
            direction=Direction.BELOW
            if message.direction == inventory_events.SALES_ANOMALY_DIRECTION_BELOW
            else Direction.ABOVE,
            actual=_decimal(message.actual_units, "actual_units"),
            expected=_decimal(message.expected_units, "expected_units"),
            lower=_decimal(message.lower_units, "lower_units"),
            upper=_decimal(message.upper_units, "upper_units"),
            method=message.method,
            skus=tuple(message.skus),
        )
        await findings.sales_anomaly(uow, anomaly, at)

    async def on_level(event: InboundEvent[inventory_events.StockLevelChanged], uow: UnitOfWork) -> None:
        message = event.message
        if not message.location_id or not message.sku:
            raise PoisonMessage("StockLevelChanged without its location or SKU")
        at = moment(message.occurred_at) if message.HasField("occurred_at") else event.occurred_at
        if at is None:
            raise PoisonMessage("StockLevelChanged without a time")
        available = _decimal(message.available_to_promise, "available_to_promise")
        on_hand = _decimal(message.on_hand, "on_hand")
        await projections.stock_level(uow, message.location_id, message.sku, available <= 0 or on_hand <= 0, at)

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(inventory_events.StockAlertRaised, on_stock_alert)
    handlers.on(inventory_events.SalesAnomalyDetected, on_anomaly)
    handlers.on(inventory_events.StockLevelChanged, on_level)
    return handlers


def pricing_handlers(findings: Findings, projections: Projections) -> EventHandlers[UnitOfWork]:
    async def on_item(event: InboundEvent[pricing_events.ItemChanged], uow: UnitOfWork) -> None:
        item = event.message.item
        if not item.sku:
            raise PoisonMessage("ItemChanged without a SKU")
        await projections.item_changed(uow, item.sku, item.category, item.version)

    async def on_price(event: InboundEvent[pricing_events.PriceChanged], uow: UnitOfWork) -> None:
        message = event.message
        if not message.store_id or not message.sku:
            raise PoisonMessage("PriceChanged without its store or SKU")
        effective = message.effective_at if message.HasField("effective_at") else message.occurred_at
        await projections.price_changed(
            uow,
            store_id=message.store_id,
            sku=message.sku,
            book_version=message.price_book_version,
            old_fen=_fen(message.old_unit_price, message.HasField("old_unit_price")),
            new_fen=_fen(message.new_unit_price, message.HasField("new_unit_price")),
            promoted=message.HasField("promotion"),
            change_id=message.change_id,
            effective_at=moment(effective),
        )

    async def on_label(event: InboundEvent[pricing_events.LabelSyncGivenUp], uow: UnitOfWork) -> None:
        message = event.message
        if not message.store_id or not message.label_id:
            raise PoisonMessage("LabelSyncGivenUp without its store or label")
        at = moment(message.occurred_at) if message.HasField("occurred_at") else event.occurred_at
        if at is None:
            raise PoisonMessage("LabelSyncGivenUp without a time")
        await findings.label_given_up(
            uow, message.store_id, message.label_id, message.sku, message.attempts, message.last_error, at
        )

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(pricing_events.ItemChanged, on_item)
    handlers.on(pricing_events.PriceChanged, on_price)
    handlers.on(pricing_events.LabelSyncGivenUp, on_label)
    return handlers


def marketing_handlers(findings: Findings, projections: Projections) -> EventHandlers[UnitOfWork]:
    async def on_conflict(event: InboundEvent[marketing_events.RedemptionConflictRecorded], uow: UnitOfWork) -> None:
        conflict = event.message.conflict
        if not conflict.code:
            raise PoisonMessage("RedemptionConflictRecorded without a coupon code")
        at = moment(conflict.occurred_at) if conflict.HasField("occurred_at") else event.occurred_at
        if at is None:
            raise PoisonMessage("RedemptionConflictRecorded without a time")
        await findings.redemption_conflict(
            uow,
            code=conflict.code,
            sale_id=conflict.sale_id,
            store_id=conflict.store_id,
            campaign_id=conflict.campaign_id,
            reason=conflict.reason,
            at=at,
        )

    async def on_launched(event: InboundEvent[marketing_events.CampaignLaunched], uow: UnitOfWork) -> None:
        message = event.message
        if not message.campaign_id:
            raise PoisonMessage("CampaignLaunched without a campaign_id")
        at = moment(message.occurred_at) if message.HasField("occurred_at") else event.occurred_at
        if at is None:
            raise PoisonMessage("CampaignLaunched without a time")
        ends_at = (
            moment(message.terms.valid_until)
            if message.HasField("terms") and message.terms.HasField("valid_until")
            else None
        )
        await projections.campaign_launched(uow, message.campaign_id, message.name, message.store_id, ends_at, at)

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(marketing_events.RedemptionConflictRecorded, on_conflict)
    handlers.on(marketing_events.CampaignLaunched, on_launched)
    return handlers


def supply_handlers(findings: Findings) -> EventHandlers[UnitOfWork]:
    async def on_statement(event: InboundEvent[supply_events.StatementStatusChanged], uow: UnitOfWork) -> None:
        message = event.message
        if not message.statement_id:
            raise PoisonMessage("StatementStatusChanged without a statement_id")
        if message.to_status != supply_pb.STATEMENT_STATUS_DISPUTED:
            return
        at = moment(message.occurred_at) if message.HasField("occurred_at") else event.occurred_at
        if at is None:
            raise PoisonMessage("StatementStatusChanged without a time")
        await findings.statement_disputed(
            uow,
            statement_id=message.statement_id,
            supplier_id=message.supplier_id,
            period_start=message.period_start,
            actor_id=message.actor_id,
            at=at,
        )

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(supply_events.StatementStatusChanged, on_statement)
    return handlers


def sales_handlers(projections: Projections) -> EventHandlers[UnitOfWork]:
    async def on_sale(event: InboundEvent[sales_events.SaleRecorded], uow: UnitOfWork) -> None:
        message = event.message
        if not message.sale_id:
            raise PoisonMessage("SaleRecorded without a sale_id")
        if not message.location_id or not message.terminal_id:
            return  # an online order: no POS terminal to keep track of
        stamp = message.recorded_at if message.HasField("recorded_at") else message.occurred_at
        await projections.journal_entry(uow, message.location_id, message.terminal_id, message.sale_id, moment(stamp))

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(sales_events.SaleRecorded, on_sale)
    return handlers
