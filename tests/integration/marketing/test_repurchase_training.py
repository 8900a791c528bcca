"""Repurchase models trained by the background job: one run at a time, scores for every buyer, a failed
run leaving the serving one in place, propensity read for any horizon without fitting."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import asyncpg
import pytest

from servicekit.db import UnitOfWork
from servicekit.settings import to_plain_url
from services.marketing.service_layer.models import (
    MemberNotScored,
    NoModel,
    RepurchaseModels,
    TrainModel,
    UnknownMember,
)
from tests.integration.marketing.conftest import fetch, request
from tests.support.clock import HandClock


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


async def shoppers(url: str, clock: HandClock, members: int) -> None:
    """Two years of purchases: most members buy once, some every few weeks, a few every week."""
    rng = random.Random(5)
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        purchases = []
        for index in range(members):
            member_id = f"M{index:05d}"
            await connection.execute(
                "INSERT INTO member (member_id, registered_at, updated_at) VALUES ($1, $2, $2)",
                member_id,
                clock.now - timedelta(days=800),
            )
            gap = rng.choice([None, None, None, 30, 60, 7])
            day = rng.randint(0, 700)
            for number in range(40):
                purchases.append(
                    (
                        f"{member_id}-{number}",
                        member_id,
                        member_id,
                        "S1",
                        clock.now - timedelta(days=730 - day),
                        5000,
                        5000,
                        0,
                        0,
                    )
                )
                if gap is None or rng.random() < 0.03:
                    break
                day += max(1, int(rng.expovariate(1 / gap)))
                if day >= 730:
                    break
        await connection.copy_records_to_table(
            "purchase",
            records=purchases,
            columns=[
                "sale_id",
                "member_id",
                "made_by",
                "store_id",
                "occurred_at",
                "gross_fen",
                "net_fen",
                "cost_fen",
                "returned_fen",
            ],
        )
        # Each purchase buys one of the member's favourites (a taste of their own) or a best seller.
        favourites = {f"M{i:05d}": [f"SKU{(i * 7 + k) % 120:03d}" for k in range(3)] for i in range(members)}
        lines = [
            (sale_id, 1, rng.choice(favourites[member_id] + ["SKU000", "SKU001"]), "", 1, 5000, 0)
            for sale_id, member_id, *_ in purchases
        ]
        await connection.copy_records_to_table(
            "purchase_line",
            records=lines,
            columns=["sale_id", "line_number", "sku", "category", "quantity", "net_fen", "cost_fen"],
        )
        await connection.execute(
            "INSERT INTO member (member_id, registered_at, updated_at) VALUES ('NEWBIE', $1, $1)", clock.now
        )
    finally:
        await connection.close()


async def test_a_requested_training_scores_every_buyer_and_serves_what_won_its_backtest(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock, executor: ThreadPoolExecutor
) -> None:
    await shoppers(marketing_url, clock, 2_500)
    models = RepurchaseModels(unit_of_work, executor, clock=clock)
    with pytest.raises(NoModel):
        await models.propensity("M00001", 90)
    asked = TrainModel(request(), "hq")
    queued = await models.request_training(asked)
    assert queued.status == "queued"
    assert (await models.request_training(asked)).model_version == queued.model_version
    assert (await models.request_training(TrainModel(request(), "hq2"))).model_version == queued.model_version
    assert await models.train_next()
    assert not await models.train_next()

    status = await models.status()
    assert status.serving is not None
    assert status.serving.model_version == queued.model_version
    assert status.serving.status == "succeeded"
    assert status.serving.backtest is not None
    assert status.serving.backtest["winner"] == status.serving.served_model
    buyers = await fetch(marketing_url, "SELECT count(DISTINCT member_id) AS n FROM purchase")
    scored = await fetch(
        marketing_url, "SELECT count(*) AS n FROM member_score WHERE model_version = $1", queued.model_version
    )
    assert scored[0]["n"] == buyers[0]["n"] == status.serving.training_members

    stored = await models.propensity("M00001", 90)
    assert stored.model == status.serving.served_model
    assert 0.0 <= stored.p_active <= 1.0
    assert stored.churn_risk == pytest.approx(1 - stored.p_active)
    shorter = await models.propensity("M00001", 30)
    longer = await models.propensity("M00001", 365)
    assert (shorter.model, longer.model) == ("bgnbd", "bgnbd")
    assert shorter.expected_purchases <= longer.expected_purchases
    with pytest.raises(MemberNotScored):
        await models.propensity("NEWBIE", 30)
    recommended, version = await models.recommendations("M00001", 10)
    assert version == queued.model_version
    assert 0 < len(recommended) <= 10
    assert len(set(recommended)) == len(recommended)
    assert status.serving.model_version == version
    backtest = json.loads(
        (await fetch(marketing_url, "SELECT recommendations FROM model_run WHERE serving"))[0]["recommendations"]
    )
    assert backtest["baseline"] == "store_popular"
    assert backtest["served"] in backtest["hit_rate_at_10"]
    with pytest.raises(UnknownMember):
        await models.propensity("NOBODY", 30)


async def test_a_failed_training_keeps_the_model_that_was_serving(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock, executor: ThreadPoolExecutor
) -> None:
    await shoppers(marketing_url, clock, 800)
    models = RepurchaseModels(unit_of_work, executor, clock=clock)
    first = await models.request_training(TrainModel(request(), "hq"))
    await models.train_next()
    # Every purchase returned in full: nothing left to learn from, the next run fails.
    await fetch(marketing_url, "UPDATE purchase SET returned_fen = net_fen")
    clock.advance(days=1)
    second = await models.request_training(TrainModel(request(), "hq"))
    assert await models.train_next()
    status = await models.status()
    assert status.latest is not None
    assert (status.latest.model_version, status.latest.status) == (second.model_version, "failed")
    assert status.latest.error
    assert status.serving is not None
    assert status.serving.model_version == first.model_version
