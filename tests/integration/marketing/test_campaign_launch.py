"""A campaign's launch: exclusions counted, the control group reproducible and never offered, each coupon once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, timedelta
from typing import Any

import asyncpg
import pytest
from retail.marketing.v1 import events_pb2, marketing_service_pb2
from sqlalchemy import text

from servicekit.db import UnitOfWork
from servicekit.settings import to_plain_url
from services.marketing.adapters import segment_store
from services.marketing.adapters.segment_store import StoredSegment
from services.marketing.domain.campaigns import CampaignDraft, CampaignNotApproved, CampaignStatus, OwnApproval, Target
from services.marketing.domain.control_groups import Group, split
from services.marketing.domain.offers import Channel, CouponTerms, DiscountKind, Offer
from services.marketing.domain.segments import LIFECYCLE_STAGES, parse_rule
from services.marketing.service_layer.campaigns import ApproveCampaign, Campaigns, CreateCampaign, LaunchCampaign
from tests.integration.marketing.conftest import fetch, request
from tests.support.clock import HandClock


@dataclass(frozen=True)
class Person:
    stage: str
    consent: list[str]
    erased: bool
    merged: bool
    recent_offers: int  # coupons of earlier campaigns in the last 7 days


async def members(url: str, clock: HandClock, count: int, seed: int = 1) -> dict[str, Person]:
    """Members with a stage and consents; a few erased or merged; some offered by other campaigns lately."""
    rng = random.Random(seed)
    population: dict[str, Person] = {}
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        async with connection.transaction():
            for old in ("OLD0", "OLD1"):
                await connection.execute(
                    "INSERT INTO campaign (campaign_id, name, status, offer, terms, valid_from, valid_until, "
                    "per_member_limit, control_fraction_bp, created_by, created_at) VALUES ($1, 'old', 'running', "
                    "'{}', '{}', $2, $3, 1, 1000, 'test', $2)",
                    old,
                    clock.now - timedelta(days=10),
                    clock.now + timedelta(days=10),
                )
            for index in range(count):
                person = Person(
                    stage=rng.choice(LIFECYCLE_STAGES),
                    consent=rng.choice([["app_push"], ["sms"], [], ["app_push", "sms"]]),
                    erased=rng.random() < 0.03,
                    merged=rng.random() < 0.03,
                    recent_offers=rng.choice([0, 0, 0, 1, 2]),
                )
                member_id = f"M{index:05d}"
                population[member_id] = person
                await connection.execute(
                    "INSERT INTO member (member_id, tier, lifecycle_stage, consent, erased, merged_into, "
                    "registered_at, updated_at) VALUES ($1, 'gold', $2, $3, $4, $5, $6, $6)",
                    member_id,
                    person.stage,
                    person.consent,
                    person.erased,
                    "M99999" if person.merged else None,
                    clock.now - timedelta(days=100),
                )
                for offer in range(person.recent_offers):
                    await connection.execute(
                        "INSERT INTO coupon (code, campaign_id, member_id, issued_to, use_limit, issued_at) "
                        "VALUES ($1, $2, $3, $3, 1, $4)",
                        f"OLD{index}X{offer}",
                        f"OLD{offer}",
                        member_id,
                        clock.now - timedelta(days=offer * 3 + 1),
                    )
    finally:
        await connection.close()
    return population


async def snapshot(unit_of_work: Callable[[], UnitOfWork], clock: HandClock) -> str:
    """Every gold member, frozen now. (Erased and merged members are left out of segments by the audience
    rule; they are put back in the snapshot here to check that the launch excludes them too.)"""
    segment = StoredSegment(
        "SEG", "gold", "", parse_rule({"attribute": "tier", "op": "in", "value": ["gold"]}), "hq", clock.now
    )
    async with unit_of_work() as uow:
        await segment_store.insert_segment(uow.session, segment)
        await segment_store.snapshot(uow.session, segment, "SNAP", clock.now, clock.now)
        await uow.session.execute(
            text(
                "INSERT INTO snapshot_member (snapshot_id, member_id, lifecycle_stage) "
                "SELECT 'SNAP', member_id, lifecycle_stage FROM member WHERE erased OR merged_into IS NOT NULL"
            )
        )
        await uow.commit()
    return "SNAP"


def draft(clock: HandClock, **changes: Any) -> CampaignDraft:
    usual = CampaignDraft(
        name="Winter dairy",
        snapshot_id="SNAP",
        offer=Offer(DiscountKind.AMOUNT_OFF, 1_000, min_spend_fen=5_000),
        terms=CouponTerms(valid_from=clock.now, valid_until=clock.now + timedelta(days=14)),
        control_fraction_bp=1_500,
        contact_channels=frozenset({"app_push"}),
        frequency_cap=2,
    )
    return replace(usual, **changes)


async def launched(campaigns: Campaigns, campaign_id: str) -> int:
    """Run the background launch until it has nothing left to do; the coupons it issued."""
    issued = 0
    for _ in range(1_000):
        step = await campaigns.run_launches()
        issued += step
        if step == 0 and (await campaigns.get(campaign_id)).status is CampaignStatus.RUNNING:
            return issued
    raise AssertionError("the launch did not finish")


async def test_the_launch_excludes_with_reasons_holds_out_a_reproducible_control_group_and_issues_once(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    population = await members(marketing_url, clock, 1_200)
    await snapshot(unit_of_work, clock)
    campaigns = Campaigns(unit_of_work, clock=clock, issue_batch=97)
    terms = CouponTerms(
        valid_from=clock.now,
        valid_until=clock.now + timedelta(days=14),
        stores=frozenset({"S001"}),
        channels=frozenset({Channel.STORE}),
        per_member_limit=2,
    )
    creation = CreateCampaign(
        request(), draft(clock, max_coupons=300, store_id="S001", terms=terms), created_by="hq-anna"
    )
    campaign = await campaigns.create(creation)
    assert (await campaigns.create(creation)).campaign_id == campaign.campaign_id  # a retry creates nothing
    with pytest.raises(OwnApproval):
        await campaigns.approve(ApproveCampaign(request(), campaign.campaign_id, approver="hq-anna"))
    with pytest.raises(CampaignNotApproved):
        await campaigns.launch(LaunchCampaign(request(), campaign.campaign_id))
    await campaigns.approve(ApproveCampaign(request(), campaign.campaign_id, approver="hq-bo"))
    await campaigns.launch(LaunchCampaign(request(), campaign.campaign_id))
    issued = await launched(campaigns, campaign.campaign_id)

    placed = {
        row["member_id"]: (row["grp"], row["excluded_reason"], row["code"])
        for row in await fetch(
            marketing_url,
            "SELECT member_id, grp, excluded_reason, code FROM campaign_member WHERE campaign_id = $1",
            campaign.campaign_id,
        )
    }
    assert set(placed) == set(population)

    def expected_reason(person: Person) -> str | None:
        if person.erased or person.merged:
            return "erased"
        if "app_push" not in person.consent:
            return "no_consent"
        if person.recent_offers >= 2:
            return "frequency_cap"
        return None

    eligible = [(m, p.stage) for m, p in population.items() if expected_reason(p) is None]
    for member_id, member in population.items():
        reason = expected_reason(member)
        if reason is not None:
            assert placed[member_id][:2] == ("excluded", reason)
    reference = {a.member_id: a.group for a in split(campaign.campaign_id, eligible, 1_500)}
    control = {m for m, (grp, _, _) in placed.items() if grp == "control"}
    assert control == {m for m, group in reference.items() if group is Group.CONTROL}
    treated = {m for m, (grp, _, _) in placed.items() if grp == "treatment"}
    budget_cut = {m for m, (grp, reason, _) in placed.items() if reason == "budget"}
    assert len(treated) == 300
    assert treated | budget_cut == {m for m, group in reference.items() if group is Group.TREATMENT}

    coupons = await fetch(marketing_url, "SELECT member_id FROM coupon WHERE campaign_id = $1", campaign.campaign_id)
    assert Counter(row["member_id"] for row in coupons) == Counter(treated)
    assert issued == 300
    assert all(placed[m][2] is not None for m in treated)
    assert all(placed[m][2] is None for m in control)
    events = await fetch(marketing_url, "SELECT event_type FROM outbox")
    assert Counter(row["event_type"] for row in events) == {
        "retail.marketing.v1.CouponIssued": 300,
        "retail.marketing.v1.CampaignLaunched": 1,
    }
    [launch_row] = await fetch(
        marketing_url,
        "SELECT subject, payload FROM outbox WHERE event_type = 'retail.marketing.v1.CampaignLaunched'",
    )
    launch = events_pb2.CampaignLaunched.FromString(launch_row["payload"])
    assert launch_row["subject"] == "retail.marketing.v1.campaign_launched"
    assert (launch.campaign_id, launch.name, launch.store_id) == (campaign.campaign_id, "Winter dairy", "S001")
    assert launch.progress.issued == 300
    assert launch.terms.valid_from.ToDatetime(UTC) == terms.valid_from
    assert launch.terms.valid_until.ToDatetime(UTC) == terms.valid_until  # when it ends: the feed's cause
    assert list(launch.terms.store_ids) == ["S001"]
    assert list(launch.terms.channels) == [marketing_service_pb2.SALES_CHANNEL_STORE]
    assert launch.terms.per_member_limit == 2
    running = await campaigns.get(campaign.campaign_id)
    assert (running.status, running.issued) == (CampaignStatus.RUNNING, 300)
    assert await campaigns.end_due() == 0
    clock.advance(days=14)
    assert await campaigns.end_due() == 3  # this one and the two earlier campaigns of the setup
    assert (await campaigns.get(campaign.campaign_id)).status is CampaignStatus.ENDED


async def test_two_replicas_and_a_restart_mid_launch_still_issue_each_coupon_once(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    await members(marketing_url, clock, 900, seed=2)
    await snapshot(unit_of_work, clock)
    first = Campaigns(unit_of_work, clock=clock, issue_batch=50)
    campaign = await first.create(
        CreateCampaign(request(), draft(clock, frequency_cap=0, contact_channels=frozenset({"app_push", "sms"})), "a")
    )
    await first.approve(ApproveCampaign(request(), campaign.campaign_id, approver="b"))
    await first.launch(LaunchCampaign(request(), campaign.campaign_id))
    await first.run_launches()  # placed and one batch issued, then the process "dies"
    replica_a = Campaigns(unit_of_work, clock=clock, issue_batch=50)
    replica_b = Campaigns(unit_of_work, clock=clock, issue_batch=50)
    await asyncio.gather(launched(replica_a, campaign.campaign_id), launched(replica_b, campaign.campaign_id))
    treated = await fetch(
        marketing_url,
        "SELECT count(*) AS n FROM campaign_member WHERE campaign_id = $1 AND grp = 'treatment'",
        campaign.campaign_id,
    )
    coupons = await fetch(
        marketing_url,
        "SELECT count(*) AS n, count(DISTINCT member_id) AS members FROM coupon WHERE campaign_id = $1",
        campaign.campaign_id,
    )
    assert coupons[0]["n"] == coupons[0]["members"] == treated[0]["n"] > 0
    issued_events = await fetch(
        marketing_url, "SELECT count(*) AS n FROM outbox WHERE event_type = 'retail.marketing.v1.CouponIssued'"
    )
    assert issued_events[0]["n"] == treated[0]["n"]
    assert (await first.get(campaign.campaign_id)).issued == treated[0]["n"]


async def test_a_campaign_aimed_at_the_likeliest_buyers_holds_out_its_control_group_among_them(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    population = await members(marketing_url, clock, 500, seed=3)
    await snapshot(unit_of_work, clock)
    connection = await asyncpg.connect(to_plain_url(marketing_url))
    try:
        # Every member scored but one in ten (unscored members come last).
        await connection.execute(
            "INSERT INTO member_score (member_id, p_active, scored_at) SELECT member_id, "
            "(abs(hashtext(member_id)) % 1000) / 1000.0, now() FROM member WHERE right(member_id, 1) <> '7'"
        )
        scores = {
            row["member_id"]: row["p_active"]
            for row in await connection.fetch("SELECT member_id, p_active FROM member_score")
        }
    finally:
        await connection.close()
    campaigns = Campaigns(unit_of_work, clock=clock)
    aimed = draft(
        clock,
        frequency_cap=0,
        contact_channels=frozenset({"app_push", "sms"}),
        target=Target.PROPENSITY,
        target_percent=30,
    )
    campaign = await campaigns.create(CreateCampaign(request(), aimed, "a"))
    await campaigns.approve(ApproveCampaign(request(), campaign.campaign_id, approver="b"))
    await campaigns.launch(LaunchCampaign(request(), campaign.campaign_id))
    await launched(campaigns, campaign.campaign_id)
    placed = {
        row["member_id"]: (row["grp"], row["excluded_reason"])
        for row in await fetch(marketing_url, "SELECT member_id, grp, excluded_reason FROM campaign_member")
    }
    eligible = [m for m, p in population.items() if not (p.erased or p.merged) and p.consent]
    cut = (len(eligible) * 30 + 99) // 100
    targeted = {m for m, (grp, _) in placed.items() if grp in ("treatment", "control")}
    assert len(targeted) == cut
    assert min(scores.get(m, -1.0) for m in targeted) >= max(
        scores.get(m, -1.0) for m, (grp, reason) in placed.items() if reason == "not_targeted"
    )
    assert sum(1 for grp, _ in placed.values() if grp == "control") > 0
    assert {reason for _, reason in placed.values()} >= {"not_targeted"}
