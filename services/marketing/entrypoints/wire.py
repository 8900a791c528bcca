"""Protobuf ↔ marketing's domain: the journal entries and events it reads (named ``map_*`` functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from retail.member.v1 import member_service_pb2 as member_pb2
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.protowire import from_wire
from services.marketing.domain.offers import Channel
from services.marketing.domain.sales import JournalSale, SaleLine

SALES_CHANNELS = {
    sales_pb2.SALES_CHANNEL_STORE: Channel.STORE,
    sales_pb2.SALES_CHANNEL_APP: Channel.APP,
    sales_pb2.SALES_CHANNEL_MINI_PROGRAM: Channel.MINI_PROGRAM,
}


def map_moment(message: sales_pb2.SaleRecorded) -> datetime:
    if message.HasField("occurred_at"):
        return message.occurred_at.ToDatetime(tzinfo=UTC)
    return message.recorded_at.ToDatetime(tzinfo=UTC)


def map_quantity(text: str) -> Decimal:
    """A line's quantity; one a till sent unreadable counts as zero (its money still counts)."""
    try:
        quantity = Decimal(text)
    except InvalidOperation:
        return Decimal(0)
    return quantity if quantity.is_finite() and quantity >= 0 else Decimal(0)


def map_journal_sale(message: sales_pb2.SaleRecorded, member_id: str | None) -> JournalSale:
    """A journal entry as marketing reads it; gross = what the line cost before its discounts."""
    return JournalSale(
        sale_id=message.sale_id,
        is_return=message.kind == sales_pb2.SALE_KIND_RETURN,
        store_id=message.location_id,
        channel=SALES_CHANNELS.get(message.channel, Channel.STORE),
        member_id=member_id,
        occurred_at=map_moment(message),
        lines=tuple(
            SaleLine(
                sku=line.sku,
                quantity=map_quantity(line.quantity.value),
                gross_fen=line.line_total.minor_units + line.discount.minor_units,
                net_fen=line.line_total.minor_units,
            )
            for line in message.lines
        ),
        coupon_codes=tuple(message.coupon_codes),
        original_sale_id=message.original_sale_id,
    )


def map_tier(tier: int) -> str:
    return from_wire(member_pb2.MemberTier, "MEMBER_TIER", tier)


def map_stage(stage: int) -> str:
    return from_wire(member_pb2.LifecycleStage, "LIFECYCLE_STAGE", stage)


def map_consent_channel(channel: int) -> str:
    return from_wire(member_pb2.ConsentChannel, "CONSENT_CHANNEL", channel)
