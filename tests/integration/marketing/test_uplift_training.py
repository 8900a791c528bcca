"""The uplift model learns from ended campaigns' control groups who the offer persuades, judges itself on
campaigns it never saw, and a campaign targeted by uplift offers the coupon to the persuadable — or, with
nothing to learn from, targeting by uplift is refused."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import asyncpg
import numpy as np
import pytest

from servicekit.db import UnitOfWork
from servicekit.settings import to_plain_url
from services.marketing.adapters.offer_json import offer_to_json, terms_to_json
from services.marketing.domain.campaigns import Target, UpliftModelUnavailable
from services.marketing.domain.offers import CouponTerms, DiscountKind, Offer
from services.marketing.domain.segments import LIFECYCLE_STAGES
from services.marketing.domain.uplift import HOLDOUT_CAMPAIGNS, HOLDOUT_RANDOM_MEMBERS, qini_coefficient
from services.marketing.service_layer.campaigns import ApproveCampaign, Campaigns, CreateCampaign, LaunchCampaign
from services.marketing.service_layer.uplift import TrainUpliftModel, UpliftModels
from tests.integration.marketing.conftest import fetch, request
from tests.integration.marketing.test_campaign_launch import draft, launched, snapshot
from tests.support.clock import HandClock

MEMBERS = 5_000
LAUNCHES_AGO = (240, 180, 120, 60)  # days before now; validity 14 days and attribution 14 more
CONTROL_SHARE = 0.3
PURCHASE_COLUMNS = ["sale_id", "member_id", "made_by", "store_id", "occurred_at", "gross_fen", "net_fen", "cost_fen"]


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def kind_of(index: int) -> str:
    """Persuadable members shop every few weeks (they bought lately whenever an offer goes out); sure
    things buy in a campaign's window whether offered or not; the lapsed bought once, long ago."""
    return ("persuadable", "sure_thing", "lapsed", "lapsed", "persuadable", "lapsed", "sure_thing")[index % 7]


async def past_campaigns(
    url: str,
    now: datetime,
    *,
    effect: bool = True,
    launches: tuple[int, ...] = LAUNCHES_AGO,
    status: str = "ended",
    seed: int = 3,
) -> dict[str, str]:
    """Members with purchase histories and campaigns launched ``launches`` days ago to all of them, with a
    random control group. The offer raises the chance to buy in the window by 0.35 for members who last bought
    within 30 days of the launch — and for nobody else (``effect`` False: for nobody). Member id → kind."""
    rng = np.random.default_rng(seed)
    kinds = {f"M{index:05d}": kind_of(index) for index in range(MEMBERS)}
    purchases: list[tuple[object, ...]] = []
    last: dict[str, datetime] = {}

    def buy(member_id: str, at: datetime, tag: str) -> None:
        purchases.append((f"{member_id}-{tag}", member_id, member_id, "S1", at, 8_000, 8_000, 5_000))
        last[member_id] = max(last.get(member_id, at), at)

    for member_id, kind in kinds.items():
        if kind == "lapsed":
            buy(member_id, now - timedelta(days=int(rng.integers(300, 600))), "first")
        else:
            buy(member_id, now - timedelta(days=400), "first")
        if kind == "sure_thing":
            buy(member_id, now - timedelta(days=max(launches) + 50), "second")
    campaign_rows, audience = [], []
    for number, ago in enumerate(sorted(launches, reverse=True)):
        launch = now - timedelta(days=ago)
        campaign_id = f"PAST{number}"
        terms = CouponTerms(valid_from=launch, valid_until=launch + timedelta(days=14))
        campaign_rows.append((campaign_id, terms))
        for member_id, kind in kinds.items():
            if kind == "persuadable":  # a visit a few days before every launch
                buy(member_id, launch - timedelta(days=int(rng.integers(3, 26)), hours=2), f"visit{number}")
            treated = rng.random() >= CONTROL_SHARE
            recent = (launch - last[member_id]).days <= 30
            chance = (0.55 if kind == "sure_thing" else 0.10) + (0.35 if effect and treated and recent else 0.0)
            if rng.random() < chance:
                buy(member_id, launch + timedelta(days=int(rng.integers(0, 27)), hours=3), f"won{number}")
            stage = LIFECYCLE_STAGES[int(rng.integers(0, len(LIFECYCLE_STAGES)))]
            audience.append((campaign_id, member_id, stage, "treatment" if treated else "control"))
    for member_id, kind in kinds.items():  # and the persuadable visited again lately
        if kind == "persuadable":
            buy(member_id, now - timedelta(days=int(rng.integers(3, 26)), hours=2), "lately")
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        async with connection.transaction():
            await connection.copy_records_to_table(
                "member",
                records=[
                    (member_id, "gold", LIFECYCLE_STAGES[index % 5], ["app_push"], now - timedelta(days=500), now)
                    for index, member_id in enumerate(kinds)
                ],
                columns=["member_id", "tier", "lifecycle_stage", "consent", "registered_at", "updated_at"],
            )
            await connection.copy_records_to_table("purchase", records=purchases, columns=PURCHASE_COLUMNS)
            for campaign_id, terms in campaign_rows:
                await connection.execute(
                    "INSERT INTO campaign (campaign_id, name, status, offer, terms, valid_from, valid_until, "
                    "per_member_limit, control_fraction_bp, created_by, created_at, launched_at) "
                    "VALUES ($1, $1, $2, $3, $4, $5, $6, 1, 3000, 'hq', $5, $5)",
                    campaign_id,
                    status,
                    json.dumps(offer_to_json(Offer(DiscountKind.AMOUNT_OFF, 1_000))),
                    json.dumps(terms_to_json(terms)),
                    terms.valid_from,
                    terms.valid_until,
                )
            await connection.copy_records_to_table(
                "campaign_member", records=audience, columns=["campaign_id", "member_id", "stratum", "grp"]
            )
    finally:
        await connection.close()
    return kinds


async def test_the_uplift_model_finds_the_persuadable_and_a_campaign_targeted_by_uplift_offers_them_the_coupon(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock, executor: ThreadPoolExecutor
) -> None:
    kinds = await past_campaigns(marketing_url, clock.now)
    models = UpliftModels(unit_of_work, executor, clock=clock)
    asked = TrainUpliftModel(request(), "hq")
    queued = await models.request_training(asked)
    assert queued.status == "queued"
    assert (await models.request_training(asked)).model_version == queued.model_version
    started = time.perf_counter()
    assert await models.train_next()
    took = time.perf_counter() - started
    assert not await models.train_next()

    status = await models.status()
    assert status.serving is not None
    assert status.latest is not None
    assert status.serving.model_version == status.latest.model_version == queued.model_version
    assert status.serving.training_members == MEMBERS * len(LAUNCHES_AGO)
    backtest = status.serving.backtest
    assert backtest is not None
    print(f"\nuplift backtest: {json.dumps(backtest, sort_keys=True)}; trained and scored in {took:.1f} s")
    assert backtest["holdout"] == HOLDOUT_CAMPAIGNS
    assert backtest["holdout_campaigns"] == ["PAST3"]  # the most recent, never trained on
    assert backtest["training_campaigns"] == ["PAST0", "PAST1", "PAST2"]
    assert backtest["learner"] == status.serving.served_model != "random"
    assert backtest["qini_random"] == 0.0
    # Clearly above random targeting (0) on the campaign it never saw, and near ranking by the true effect
    # (which no model can know; the Qini is scaled by the ranking that knows every member's outcome).
    held_out = await fetch(
        marketing_url,
        "SELECT cm.member_id, cm.grp = 'treatment' AS treated, EXISTS (SELECT 1 FROM purchase p WHERE "
        "p.member_id = cm.member_id AND p.occurred_at >= c.launched_at AND p.occurred_at < c.valid_until + "
        "interval '14 days') AS bought FROM campaign_member cm JOIN campaign c USING (campaign_id) "
        "WHERE campaign_id = 'PAST3'",
    )
    oracle = qini_coefficient(
        np.array([kinds[row["member_id"]] == "persuadable" for row in held_out], dtype=np.float64),
        np.array([row["treated"] for row in held_out], dtype=np.int64),
        np.array([row["bought"] for row in held_out], dtype=np.float64),
    )
    print(f"Qini of ranking by the true effect on PAST3: {oracle:.3f}")
    assert backtest["qini"] > 0.1
    assert backtest["qini"] > 0.8 * oracle
    assert backtest["uplift_at_10pct"] > 0.2  # the offer's true effect on the persuadable is 0.35

    scored = await fetch(
        marketing_url, "SELECT member_id, uplift FROM member_uplift WHERE model_version = $1", queued.model_version
    )
    assert len(scored) == MEMBERS
    uplift = {row["member_id"]: row["uplift"] for row in scored}
    by_kind = {kind: np.mean([uplift[m] for m, k in kinds.items() if k == kind]) for kind in set(kinds.values())}
    assert by_kind["persuadable"] > by_kind["sure_thing"] + 0.2
    assert by_kind["persuadable"] > by_kind["lapsed"] + 0.2

    # A new campaign to the 30% with the highest uplift: mostly persuadable members, in both of its groups.
    await snapshot(unit_of_work, clock)
    campaigns = Campaigns(unit_of_work, clock=clock, issue_batch=500)
    campaign = await campaigns.create(
        CreateCampaign(request(), draft(clock, target=Target.UPLIFT, target_percent=30), created_by="hq-anna")
    )
    await campaigns.approve(ApproveCampaign(request(), campaign.campaign_id, approver="hq-bo"))
    await campaigns.launch(LaunchCampaign(request(), campaign.campaign_id))
    issued = await launched(campaigns, campaign.campaign_id)
    placed = await fetch(
        marketing_url,
        "SELECT cm.member_id, cm.grp, cm.excluded_reason, cm.code, "
        "(SELECT count(*) FROM coupon c WHERE c.campaign_id = cm.campaign_id AND c.issued_to = cm.member_id) "
        "AS coupons "
        "FROM campaign_member cm WHERE cm.campaign_id = $1",
        campaign.campaign_id,
    )
    targeted = [row for row in placed if row["grp"] in ("treatment", "control")]
    assert len(targeted) == math.ceil(MEMBERS * 30 / 100)
    assert sum(row["excluded_reason"] == "not_targeted" for row in placed) == MEMBERS - len(targeted)
    persuadable = [kinds[row["member_id"]] == "persuadable" for row in targeted]
    assert np.mean(persuadable) > 0.9  # 2 in 7 members are persuadable; targeting at random would give 0.29
    # The targeted members are the top 30% by uplift; the control group is drawn from them, never offered.
    threshold = min(uplift[row["member_id"]] for row in targeted)
    assert sum(score > threshold for score in uplift.values()) < len(targeted)
    control = [row for row in targeted if row["grp"] == "control"]
    treatment = [row for row in targeted if row["grp"] == "treatment"]
    assert 0.1 < len(control) / len(targeted) < 0.2  # the draft's 15%, stratified by stage
    assert all(row["code"] is None and row["coupons"] == 0 for row in control)
    assert np.mean([kinds[row["member_id"]] == "persuadable" for row in control]) > 0.85
    assert all(row["coupons"] == 1 for row in treatment)
    assert issued == len(treatment)

    # The past groups reassigned by a hash (so the offer's effect no longer follows them): the next run finds
    # nothing that beats random targeting, fails with its backtest, and the model that served goes on serving.
    await fetch(
        marketing_url,
        "UPDATE campaign_member SET grp = CASE WHEN substring(md5(member_id || campaign_id), 1, 1) < '5' "
        "THEN 'control' ELSE 'treatment' END WHERE campaign_id LIKE 'PAST%'",
    )
    clock.advance(hours=1)
    second = await models.request_training(TrainUpliftModel(request(), "hq"))
    assert await models.train_next()
    after = await models.status()
    assert after.latest is not None
    assert after.latest.model_version == second.model_version
    assert after.latest.status == "failed"
    assert after.latest.error is not None
    assert "no learner beat random targeting" in after.latest.error
    assert after.latest.backtest is not None
    assert after.latest.backtest["learner"] == "random"
    print(f"after reassigning the groups: {after.latest.backtest['qini_by_learner']}")
    assert after.serving is not None
    assert after.serving.model_version == queued.model_version
    assert (await fetch(marketing_url, "SELECT DISTINCT model_version FROM member_uplift"))[0][
        0
    ] == queued.model_version


async def test_without_ended_campaigns_there_is_no_uplift_model_and_targeting_by_uplift_is_refused(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock, executor: ThreadPoolExecutor
) -> None:
    # Campaigns still running (their attribution windows open) are not learned from.
    await past_campaigns(marketing_url, clock.now, launches=(10, 5), status="running")
    models = UpliftModels(unit_of_work, executor, clock=clock)
    run = await models.request_training(TrainUpliftModel(request(), "hq"))
    assert await models.train_next()
    status = await models.status()
    assert status.serving is None
    assert status.latest is not None
    assert (status.latest.model_version, status.latest.status) == (run.model_version, "failed")
    assert status.latest.error is not None
    assert "no ended campaign" in status.latest.error
    assert (await fetch(marketing_url, "SELECT count(*) AS n FROM member_uplift"))[0]["n"] == 0

    await snapshot(unit_of_work, clock)
    campaigns = Campaigns(unit_of_work, clock=clock)
    with pytest.raises(UpliftModelUnavailable) as refused:
        await campaigns.create(CreateCampaign(request(), draft(clock, target=Target.UPLIFT, target_percent=20), "hq"))
    assert refused.value.reason == "uplift-model-unavailable"
    # Targeting by propensity is not affected.
    await campaigns.create(CreateCampaign(request(), draft(clock, target=Target.PROPENSITY, target_percent=20), "hq"))


async def test_a_run_that_does_not_beat_random_targeting_fails_with_its_backtest_and_serves_nothing(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock, executor: ThreadPoolExecutor
) -> None:
    await past_campaigns(marketing_url, clock.now, launches=(100,), effect=False)
    models = UpliftModels(unit_of_work, executor, clock=clock)
    run = await models.request_training(TrainUpliftModel(request(), "hq"))
    assert await models.train_next()
    status = await models.status()
    assert status.serving is None
    assert status.latest is not None
    assert status.latest.status == "failed"
    assert status.latest.error is not None
    assert "no learner beat random targeting" in status.latest.error
    backtest = status.latest.backtest
    assert backtest is not None
    assert backtest["learner"] == "random"
    assert backtest["holdout"] == HOLDOUT_RANDOM_MEMBERS  # one campaign: its members split at random, said so
    assert backtest["notes"]
    assert "fewer than 2 ended campaigns" in backtest["notes"][0]
    assert run.model_version == status.latest.model_version
