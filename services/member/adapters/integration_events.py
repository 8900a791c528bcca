"""The member context's integration events: facts mapped to outbox rows on the MEMBER stream.

Subjects are ``retail.member.v1.<event>``. A member's events share one aggregate
(``member:<id>``), so the relay publishes them in the order they were written; a merge and
its undo are events of the survivor. No event carries personal data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from google.protobuf.message import Message
from retail.common.v1 import money_pb2
from retail.member.v1 import events_pb2
from retail.member.v1 import member_service_pb2 as pb

from servicekit.outbox import OutboxEvent
from servicekit.protowire import timestamp, to_wire
from services.member.domain.model import Consent

SUBJECT_PREFIX = "retail.member.v1"
CURRENCY = "CNY"


@dataclass(frozen=True)
class ImportedPurchaseFact:
    """One imported purchase as the PurchasesImported event carries it (lines: sku, quantity, amount)."""

    purchase_id: str
    occurred_at: datetime
    amount_minor: int
    store_id: str
    lines: Sequence[tuple[str, Decimal, int]]


def money(minor_units: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code=CURRENCY, minor_units=minor_units)


def _event(name: str, member_id: str, message: Message, occurred_at: datetime) -> OutboxEvent:
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.{name}", message, aggregate_id=f"member:{member_id}", occurred_at=occurred_at
    )


def member_registered(member_id: str, channel: str, identity_type: str, store_id: str, at: datetime) -> OutboxEvent:
    message = events_pb2.MemberRegistered(
        member_id=member_id,
        channel=to_wire(pb.Channel, "CHANNEL", channel),
        identity_type=to_wire(pb.IdentityType, "IDENTITY_TYPE", identity_type),
        store_id=store_id,
        occurred_at=timestamp(at),
    )
    return _event("member_registered", member_id, message, at)


def identity_linked(member_id: str, identity_type: str, at: datetime) -> OutboxEvent:
    message = events_pb2.IdentityLinked(
        member_id=member_id,
        identity_type=to_wire(pb.IdentityType, "IDENTITY_TYPE", identity_type),
        occurred_at=timestamp(at),
    )
    return _event("identity_linked", member_id, message, at)


def member_merged(merge_id: str, survivor_id: str, absorbed_id: str, rule: str, at: datetime) -> OutboxEvent:
    message = events_pb2.MemberMerged(
        merge_id=merge_id,
        survivor_member_id=survivor_id,
        absorbed_member_id=absorbed_id,
        rule=to_wire(pb.SurvivorRule, "SURVIVOR_RULE", rule),
        occurred_at=timestamp(at),
    )
    return _event("member_merged", survivor_id, message, at)


def merge_undone(merge_id: str, survivor_id: str, restored_id: str, at: datetime) -> OutboxEvent:
    message = events_pb2.MergeUndone(
        merge_id=merge_id, survivor_member_id=survivor_id, restored_member_id=restored_id, occurred_at=timestamp(at)
    )
    return _event("merge_undone", survivor_id, message, at)


def points_earned(
    member_id: str, points: int, sale_id: str, balance: int, expires_at: datetime, at: datetime
) -> OutboxEvent:
    message = events_pb2.PointsEarned(
        member_id=member_id,
        points=points,
        sale_id=sale_id,
        balance=balance,
        expires_at=timestamp(expires_at),
        occurred_at=timestamp(at),
    )
    return _event("points_earned", member_id, message, at)


def points_redeemed(member_id: str, points: int, reference: str, balance: int, at: datetime) -> OutboxEvent:
    message = events_pb2.PointsRedeemed(
        member_id=member_id, points=points, reference=reference, balance=balance, occurred_at=timestamp(at)
    )
    return _event("points_redeemed", member_id, message, at)


def points_expired(member_id: str, points: int, balance: int, at: datetime) -> OutboxEvent:
    message = events_pb2.PointsExpired(member_id=member_id, points=points, balance=balance, occurred_at=timestamp(at))
    return _event("points_expired", member_id, message, at)


def points_reversed(
    member_id: str, points: int, sale_id: str, original_sale_id: str, balance: int, at: datetime
) -> OutboxEvent:
    message = events_pb2.PointsReversed(
        member_id=member_id,
        points=points,
        sale_id=sale_id,
        original_sale_id=original_sale_id,
        balance=balance,
        occurred_at=timestamp(at),
    )
    return _event("points_reversed", member_id, message, at)


def points_adjusted(member_id: str, points: int, balance: int, at: datetime) -> OutboxEvent:
    message = events_pb2.PointsAdjusted(member_id=member_id, points=points, balance=balance, occurred_at=timestamp(at))
    return _event("points_adjusted", member_id, message, at)


def tier_changed(
    member_id: str, from_tier: str, to_tier: str, reason: str, spend_minor: int, at: datetime
) -> OutboxEvent:
    message = events_pb2.TierChanged(
        member_id=member_id,
        from_tier=to_wire(pb.MemberTier, "MEMBER_TIER", from_tier),
        to_tier=to_wire(pb.MemberTier, "MEMBER_TIER", to_tier),
        reason=to_wire(pb.TierChangeReason, "TIER_CHANGE_REASON", reason),
        qualifying_spend=money(spend_minor),
        occurred_at=timestamp(at),
    )
    return _event("tier_changed", member_id, message, at)


def lifecycle_changed(member_id: str, from_stage: str, to_stage: str, at: datetime) -> OutboxEvent:
    message = events_pb2.LifecycleChanged(
        member_id=member_id,
        from_stage=to_wire(pb.LifecycleStage, "LIFECYCLE_STAGE", from_stage),
        to_stage=to_wire(pb.LifecycleStage, "LIFECYCLE_STAGE", to_stage),
        occurred_at=timestamp(at),
    )
    return _event("lifecycle_changed", member_id, message, at)


def member_erased(member_id: str, at: datetime) -> OutboxEvent:
    return _event(
        "member_erased", member_id, events_pb2.MemberErased(member_id=member_id, occurred_at=timestamp(at)), at
    )


def consent_changed(member_id: str, channel: str, granted: bool, at: datetime) -> OutboxEvent:
    message = events_pb2.ConsentChanged(
        member_id=member_id,
        channel=to_wire(pb.ConsentChannel, "CONSENT_CHANNEL", channel),
        granted=granted,
        occurred_at=timestamp(at),
    )
    return _event("consent_changed", member_id, message, at)


def consents_changed(
    member_id: str, before: Iterable[Consent], after: Iterable[Consent], at: datetime
) -> list[OutboxEvent]:
    """One ConsentChanged per channel whose decision is not what it was (no decision counts as not granted)."""
    was = {consent.channel: consent.granted for consent in before}
    now = {consent.channel: consent.granted for consent in after}
    return [
        consent_changed(member_id, channel.value, now.get(channel, False), at)
        for channel in sorted(set(was) | set(now), key=lambda channel: channel.value)
        if was.get(channel, False) != now.get(channel, False)
    ]


def purchases_imported(member_id: str, purchases: Iterable[ImportedPurchaseFact], at: datetime) -> OutboxEvent:
    """A member's legacy purchases, for the contexts that keep purchase facts (never points, never stock)."""
    message = events_pb2.PurchasesImported(
        member_id=member_id,
        purchases=[
            events_pb2.ImportedPurchaseFact(
                purchase_id=purchase.purchase_id,
                occurred_at=timestamp(purchase.occurred_at),
                amount=money(purchase.amount_minor),
                store_id=purchase.store_id,
                lines=[
                    events_pb2.ImportedPurchaseFactLine(
                        sku=sku, quantity=money_pb2.Decimal(value=str(quantity)), amount=money(amount)
                    )
                    for sku, quantity, amount in purchase.lines
                ],
            )
            for purchase in purchases
        ],
        occurred_at=timestamp(at),
    )
    return _event("purchases_imported", member_id, message, at)
