"""Marketing's consumers: the SALES journal, the member context's events and pricing's item changes.

Each handler maps the message (``wire``) and hands it to the projections in the consumer's unit
of work; the servicekit consumer's inbox makes each event count once. A journal entry's member
is resolved here: a member id travels as it is; a phone or card travels as the lookup hash,
which the member context resolves (:class:`MemberDirectory`). An unknown hash means the buyer is
not a member (the sale still counts for coupons); a failure to ask is retried, never dropped.
"""

from __future__ import annotations

from typing import Protocol

from retail.member.v1 import events_pb2 as member_events_pb2
from retail.pricing.v1 import events_pb2 as pricing_events_pb2
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.consumer import EventHandlers, InboundEvent, PoisonMessage
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec
from servicekit.protowire import moment
from services.marketing.entrypoints.wire import (
    map_consent_channel,
    map_imported_purchases,
    map_journal_sale,
    map_stage,
    map_tier,
)
from services.marketing.service_layer.projections import Projections


def sales_consumer(durable: str = "marketing-sales") -> ConsumerSpec:
    return ConsumerSpec(
        stream="SALES",
        durable=durable,
        filter_subjects=["retail.sales.v1.sale_recorded.>"],
        description="marketing keeps members' purchases and redeems coupons from every sale and return",
    )


def member_consumer(durable: str = "marketing-members") -> ConsumerSpec:
    return ConsumerSpec(
        stream="MEMBER",
        durable=durable,
        filter_subjects=["retail.member.v1.>"],
        description="marketing keeps its projection of members (no personal data)",
    )


def catalogue_consumer(durable: str = "marketing-catalogue") -> ConsumerSpec:
    return ConsumerSpec(
        stream="PRICING",
        durable=durable,
        filter_subjects=["retail.pricing.v1.item_changed"],
        description="marketing keeps items' categories and costs",
    )


class MemberDirectory(Protocol):
    """Resolves a journal's member lookup hash to a member id (None: no such member)."""

    async def member_of(self, identity_hash: bytes) -> str | None: ...


async def journal_member(reference: sales_pb2.MemberReference, directory: MemberDirectory) -> str | None:
    if reference.type == sales_pb2.MEMBER_IDENTIFIER_TYPE_MEMBER_ID:
        return reference.member_id or None
    if reference.identity_hash:
        return await directory.member_of(bytes(reference.identity_hash))
    return None


def sales_handlers(projections: Projections, directory: MemberDirectory) -> EventHandlers[UnitOfWork]:
    async def on_sale(event: InboundEvent[sales_pb2.SaleRecorded], uow: UnitOfWork) -> None:
        member_id = await journal_member(event.message.member, directory) if event.message.HasField("member") else None
        await projections.apply_sale(uow, map_journal_sale(event.message, member_id))

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(sales_pb2.SaleRecorded, on_sale)
    return handlers


def member_handlers(projections: Projections) -> EventHandlers[UnitOfWork]:
    async def on_registered(event: InboundEvent[member_events_pb2.MemberRegistered], uow: UnitOfWork) -> None:
        m = event.message
        await projections.member_registered(uow, m.member_id, m.store_id or None, moment(m.occurred_at))

    async def on_tier(event: InboundEvent[member_events_pb2.TierChanged], uow: UnitOfWork) -> None:
        m = event.message
        await projections.tier_changed(uow, m.member_id, map_tier(m.to_tier), moment(m.occurred_at))

    async def on_stage(event: InboundEvent[member_events_pb2.LifecycleChanged], uow: UnitOfWork) -> None:
        m = event.message
        await projections.lifecycle_changed(uow, m.member_id, map_stage(m.to_stage), moment(m.occurred_at))

    async def on_consent(event: InboundEvent[member_events_pb2.ConsentChanged], uow: UnitOfWork) -> None:
        m = event.message
        channel = map_consent_channel(m.channel)
        if not channel:
            raise PoisonMessage("ConsentChanged without a channel")
        await projections.consent_changed(uow, m.member_id, channel, m.granted, moment(m.occurred_at))

    async def on_erased(event: InboundEvent[member_events_pb2.MemberErased], uow: UnitOfWork) -> None:
        await projections.member_erased(uow, event.message.member_id, moment(event.message.occurred_at))

    async def on_merged(event: InboundEvent[member_events_pb2.MemberMerged], uow: UnitOfWork) -> None:
        m = event.message
        await projections.members_merged(uow, m.survivor_member_id, m.absorbed_member_id, moment(m.occurred_at))

    async def on_undone(event: InboundEvent[member_events_pb2.MergeUndone], uow: UnitOfWork) -> None:
        m = event.message
        await projections.merge_undone(uow, m.survivor_member_id, m.restored_member_id, moment(m.occurred_at))

    async def on_imported(event: InboundEvent[member_events_pb2.PurchasesImported], uow: UnitOfWork) -> None:
        m = event.message
        if not m.member_id:
            raise PoisonMessage("PurchasesImported without a member")
        await projections.purchases_imported(uow, m.member_id, map_imported_purchases(m), moment(m.occurred_at))

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(member_events_pb2.MemberRegistered, on_registered)
    handlers.on(member_events_pb2.PurchasesImported, on_imported)
    handlers.on(member_events_pb2.TierChanged, on_tier)
    handlers.on(member_events_pb2.LifecycleChanged, on_stage)
    handlers.on(member_events_pb2.ConsentChanged, on_consent)
    handlers.on(member_events_pb2.MemberErased, on_erased)
    handlers.on(member_events_pb2.MemberMerged, on_merged)
    handlers.on(member_events_pb2.MergeUndone, on_undone)
    return handlers


def catalogue_handlers(projections: Projections) -> EventHandlers[UnitOfWork]:
    async def on_item(event: InboundEvent[pricing_events_pb2.ItemChanged], uow: UnitOfWork) -> None:
        item = event.message.item
        if not item.sku:
            raise PoisonMessage("ItemChanged without a SKU")
        at = moment(event.message.occurred_at)
        await projections.item_changed(
            uow,
            sku=item.sku,
            category=item.category,
            cost_fen=max(item.cost.minor_units, 0),
            version=item.version,
            at=at,
        )

    handlers: EventHandlers[UnitOfWork] = EventHandlers()
    handlers.on(pricing_events_pb2.ItemChanged, on_item)
    return handlers
