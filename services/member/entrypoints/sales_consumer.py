"""The SALES journal consumer: each sale earns its member's points once, each return reverses them.

A journal entry is a fact, so nothing it says makes this handler fail: a sale naming a member
the service does not know (an unknown or malformed id, a phone or card nobody registered) is
kept as an anonymous purchase, a return that overtakes its sale waits for it. What still
raises (a fault, a bug) is retried until it succeeds, never dead-lettered (servicekit.consumer).
"""

from __future__ import annotations

from datetime import UTC

from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.consumer import EventHandlers, InboundEvent
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec, StreamSpec
from services.member.service_layer.loyalty import JournalMember, JournalSale, Loyalty

SALES_STREAM = "SALES"
MEMBER_STREAM = StreamSpec(name="MEMBER", subjects=["retail.member.v1.>"], description="Facts of the member context")
SALES_DURABLE = "member-sales"


def sales_consumer(durable: str = SALES_DURABLE) -> ConsumerSpec:
    """The durable consumer of the journal (another name replays the whole journal, harmlessly)."""
    return ConsumerSpec(
        stream=SALES_STREAM,
        durable=durable,
        filter_subjects=["retail.sales.v1.sale_recorded.>"],
        description="member earns and reverses points and keeps purchase facts for every sale and return",
    )


def map_member_reference(reference: sales_pb2.MemberReference) -> JournalMember | None:
    if reference.type == sales_pb2.MEMBER_IDENTIFIER_TYPE_MEMBER_ID and reference.member_id:
        return JournalMember(member_id=reference.member_id)
    if reference.type in (sales_pb2.MEMBER_IDENTIFIER_TYPE_PHONE, sales_pb2.MEMBER_IDENTIFIER_TYPE_POS_CARD):
        return JournalMember(identity_hash=bytes(reference.identity_hash)) if reference.identity_hash else None
    return None


def map_sale(event: InboundEvent[sales_pb2.SaleRecorded]) -> JournalSale:
    sale = event.message
    if sale.HasField("occurred_at"):
        occurred_at = sale.occurred_at.ToDatetime(tzinfo=UTC)
    elif sale.HasField("recorded_at"):
        occurred_at = sale.recorded_at.ToDatetime(tzinfo=UTC)
    else:
        occurred_at = event.occurred_at or sale.recorded_at.ToDatetime(tzinfo=UTC)
    return JournalSale(
        sale_id=sale.sale_id,
        is_return=sale.kind == sales_pb2.SALE_KIND_RETURN,
        store_id=sale.location_id,
        occurred_at=occurred_at,
        lines=[(line.sku, line.line_total.minor_units) for line in sale.lines],
        total_minor=sale.total.minor_units,
        points_paid_minor=sum(
            payment.amount.minor_units for payment in sale.payments if payment.method == sales_pb2.PAYMENT_METHOD_POINTS
        ),
        member=map_member_reference(sale.member) if sale.HasField("member") else None,
        original_sale_id=sale.original_sale_id,
    )


def sales_handlers(loyalty: Loyalty) -> EventHandlers[UnitOfWork]:
    async def on_sale(event: InboundEvent[sales_pb2.SaleRecorded], uow: UnitOfWork) -> None:
        await loyalty.apply_sale(uow, map_sale(event))

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(sales_pb2.SaleRecorded, on_sale)
    return handlers
