"""Settlement's consumers: the SALES journal, and supply's own receipts and returns to vendor.

Each handler maps the message and hands it to :class:`~services.supply.service_layer.accruals.Accruals`
in the consumer's unit of work, so the inbox row and the accruals commit together: a redelivered
journal entry or receipt accrues nothing twice. Receipts are accrued from the SUPPLY stream
rather than inside purchasing's transaction, so settlement never slows or fails a receipt.
A journal entry is a fact: what cannot accrue is kept (see the service layer), never raised.
"""

from __future__ import annotations

from retail.sales.v1 import events_pb2 as sales_pb2
from retail.supply.v1 import events_pb2 as supply_events_pb2

from servicekit.consumer import EventHandlers, InboundEvent, PoisonMessage
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec
from servicekit.protowire import moment
from services.supply.entrypoints.settlement_wire import map_journal_entry
from services.supply.service_layer.accruals import Accruals


def sales_consumer(durable: str = "supply-sales") -> ConsumerSpec:
    return ConsumerSpec(
        stream="SALES",
        durable=durable,
        filter_subjects=["retail.sales.v1.sale_recorded.>"],
        description="supply accrues consignment and concession sales and returns, and keeps sales per store",
    )


def settlement_consumer(durable: str = "supply-settlement") -> ConsumerSpec:
    return ConsumerSpec(
        stream="SUPPLY",
        durable=durable,
        filter_subjects=["retail.supply.v1.goods_received", "retail.supply.v1.goods_returned_to_vendor"],
        description="supply accrues receipts and returns to vendor under purchase contracts",
    )


def sales_handlers(accruals: Accruals) -> EventHandlers[UnitOfWork]:
    async def on_sale(event: InboundEvent[sales_pb2.SaleRecorded], uow: UnitOfWork) -> None:
        if not event.message.sale_id:
            raise PoisonMessage("SaleRecorded without a sale_id")
        await accruals.apply_journal_entry(uow, map_journal_entry(event.message))

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(sales_pb2.SaleRecorded, on_sale)
    return handlers


def settlement_handlers(accruals: Accruals) -> EventHandlers[UnitOfWork]:
    async def on_received(event: InboundEvent[supply_events_pb2.GoodsReceived], uow: UnitOfWork) -> None:
        if not event.message.receipt_id:
            raise PoisonMessage("GoodsReceived without a receipt_id")
        await accruals.apply_goods_received(uow, event.message.receipt_id, moment(event.message.occurred_at))

    async def on_returned(event: InboundEvent[supply_events_pb2.GoodsReturnedToVendor], uow: UnitOfWork) -> None:
        if not event.message.return_id:
            raise PoisonMessage("GoodsReturnedToVendor without a return_id")
        await accruals.apply_vendor_return(uow, event.message.return_id, moment(event.message.occurred_at))

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(supply_events_pb2.GoodsReceived, on_received)
    handlers.on(supply_events_pb2.GoodsReturnedToVendor, on_returned)
    return handlers
