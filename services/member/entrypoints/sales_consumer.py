"""The SALES journal consumer: each sale earns its member's points once, each return reverses them.

A journal entry is a fact, so nothing it says makes this handler fail: a sale naming a member
the service does not know (an unknown or malformed id, a phone or card nobody registered) is
kept as an anonymous purchase, a return that overtakes its sale waits for it. What still
raises (a fault, a bug) is retried until it succeeds, never dead-lettered (servicekit.consumer).
A fetched batch of sales is applied at once (SalesJournal.apply_sales, set-based); when that
fails, the consumer applies the batch again one sale at a time (SalesJournal.apply_sale).
"""

from __future__ import annotations

from collections.abc import Sequence

from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.consumer import EventHandlers, InboundEvent
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec, StreamSpec
from services.member.entrypoints.wire import map_sale
from services.member.service_layer.journal_sales import SalesJournal

SALES_STREAM = "SALES"
MEMBER_STREAM = StreamSpec(name="MEMBER", subjects=["retail.member.v1.>"], description="Facts of the member context")
SALES_DURABLE = "member-sales"
SALES_FETCH_BATCH = 200  # sales applied per transaction (set-based); see bench/members.py for the measurement


def sales_consumer(durable: str = SALES_DURABLE) -> ConsumerSpec:
    """The durable consumer of the journal (another name replays the whole journal, harmlessly)."""
    return ConsumerSpec(
        stream=SALES_STREAM,
        durable=durable,
        filter_subjects=["retail.sales.v1.sale_recorded.>"],
        description="member earns and reverses points and keeps purchase facts for every sale and return",
        fetch_batch=SALES_FETCH_BATCH,
    )


def sales_handlers(sales: SalesJournal) -> EventHandlers[UnitOfWork]:
    async def on_sale(event: InboundEvent[sales_pb2.SaleRecorded], uow: UnitOfWork) -> None:
        await sales.apply_sale(uow, map_sale(event))

    async def on_sales(batch: Sequence[InboundEvent[sales_pb2.SaleRecorded]], uow: UnitOfWork) -> None:
        await sales.apply_sales(uow, [map_sale(event) for event in batch])

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(sales_pb2.SaleRecorded, on_sale, batch=on_sales)
    return handlers
