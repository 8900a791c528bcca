"""Tiers and lifecycle as sales arrive and time passes: upgrade at once, downgrade only at review
after the grace period, stages from new to repeat to churned, each change an event and history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from retail.member.v1 import events_pb2
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc

from services.member.bootstrap import MemberApp
from tests.integration.member.conftest import (
    by_member_id,
    journal_sale,
    outbox_messages,
    publish_sales,
    random_phone,
    register,
    settled,
)
from tests.support.clock import HandClock

if TYPE_CHECKING:
    Stub = pb_grpc.MemberServiceAsyncStub


@pytest.fixture
def durable(unique: str) -> str:
    return f"member-sales-{unique}"


async def test_a_tier_rises_with_the_sale_that_qualifies_and_falls_only_at_review_after_grace(
    app: MemberApp, stub: Stub, clock: HandClock, member_url: str, nats_url: str, durable: str, unique: str
) -> None:
    member_id = (await register(stub, "phone", random_phone())).member_id
    store = f"T{unique}"
    await publish_sales(
        nats_url,
        [journal_sale(store_id=store, lines=[("A", 250_000)], member=by_member_id(member_id), occurred_at=clock.now)],
    )
    await settled(nats_url, durable)
    assert (await stub.GetMember(pb.GetMemberRequest(member_id=member_id))).member.tier.tier == pb.MEMBER_TIER_SILVER
    await publish_sales(
        nats_url,
        [journal_sale(store_id=store, lines=[("A", 600_000)], member=by_member_id(member_id), occurred_at=clock.now)],
    )
    await settled(nats_url, durable)
    member = (await stub.GetMember(pb.GetMemberRequest(member_id=member_id))).member
    assert (member.tier.tier, member.tier.next_tier) == (pb.MEMBER_TIER_GOLD, pb.MEMBER_TIER_PLATINUM)
    assert member.tier.spend_to_next_tier.minor_units == 2_000_000 - 850_000
    assert member.lifecycle_stage == pb.LIFECYCLE_STAGE_REPEAT

    clock.advance(days=60)
    await app.services.tiers.review()  # within the grace period nothing falls
    assert (await stub.GetMember(pb.GetMemberRequest(member_id=member_id))).member.tier.tier == pb.MEMBER_TIER_GOLD
    clock.advance(days=340)  # the spend left the 365-day window; the grace period is long over
    member = (await stub.GetMember(pb.GetMemberRequest(member_id=member_id))).member
    assert (member.tier.tier, member.tier.qualifying_spend.minor_units) == (pb.MEMBER_TIER_GOLD, 0)
    assert member.tier.HasField("grace_until")
    await app.services.tiers.review()

    member = (await stub.GetMember(pb.GetMemberRequest(member_id=member_id))).member
    assert (member.tier.tier, member.lifecycle_stage) == (pb.MEMBER_TIER_BASIC, pb.LIFECYCLE_STAGE_CHURNED)
    history = await stub.ListTierChanges(pb.ListTierChangesRequest(member_id=member_id))
    assert [(c.from_tier, c.to_tier, c.reason) for c in history.changes] == [
        (pb.MEMBER_TIER_GOLD, pb.MEMBER_TIER_BASIC, pb.TIER_CHANGE_REASON_DOWNGRADE),
        (pb.MEMBER_TIER_SILVER, pb.MEMBER_TIER_GOLD, pb.TIER_CHANGE_REASON_UPGRADE),
        (pb.MEMBER_TIER_BASIC, pb.MEMBER_TIER_SILVER, pb.TIER_CHANGE_REASON_UPGRADE),
    ]
    tiers = await outbox_messages(member_url, events_pb2.TierChanged)
    assert [event.to_tier for event in tiers] == [pb.MEMBER_TIER_SILVER, pb.MEMBER_TIER_GOLD, pb.MEMBER_TIER_BASIC]
    stages = await outbox_messages(member_url, events_pb2.LifecycleChanged)
    assert [(event.from_stage, event.to_stage) for event in stages] == [
        (pb.LIFECYCLE_STAGE_NEW, pb.LIFECYCLE_STAGE_REPEAT),
        (pb.LIFECYCLE_STAGE_REPEAT, pb.LIFECYCLE_STAGE_CHURNED),
    ]
    profile = member.purchases
    assert (profile.lifetime_purchases, profile.lifetime_spend.minor_units) == (2, 850_000)
    assert (profile.frequency, profile.recency_score) == (0, 1)
    assert list(profile.favourite_store_ids) == [store]
