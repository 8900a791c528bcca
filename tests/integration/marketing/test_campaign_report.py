"""The campaign report computed by PostgreSQL equals the statistics of the members' outcomes, and
recovers an uplift injected into a synthetic campaign."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import asyncpg
import numpy as np
import pytest

from servicekit.db import UnitOfWork
from servicekit.settings import to_plain_url
from services.marketing.adapters.offer_json import offer_to_json, terms_to_json
from services.marketing.domain.campaign_report import GroupOutcomes, campaign_result
from services.marketing.domain.offers import CouponTerms, DiscountKind, Offer
from services.marketing.service_layer.reports import Reports
from tests.support.clock import HandClock

TREATED, CONTROL = 6_000, 1_500
BASKET_MEAN_FEN = 9_000


def half_up(numerator: int, denominator: int) -> int:
    """numerator ÷ denominator rounded half up (PostgreSQL's round() of a positive numeric); 0 over 0."""
    return (2 * numerator + denominator) // (2 * denominator) if denominator else 0


async def synthetic_campaign(url: str, clock: HandClock, uplift: float, seed: int) -> dict[str, GroupOutcomes]:
    """A campaign launched 20 days ago; treated members buy with probability 0.10 + uplift, control 0.10.
    Some purchases fall outside the window, some are returned in part or in full."""
    rng = np.random.default_rng(seed)
    launched = clock.now - timedelta(days=20)
    terms = CouponTerms(valid_from=launched, valid_until=launched + timedelta(days=14))
    members = [(f"T{i:05d}", "treatment") for i in range(TREATED)] + [(f"C{i:05d}", "control") for i in range(CONTROL)]
    purchases = []
    outcomes: dict[str, dict[str, list[int]]] = {
        grp: {"revenue": [], "margin": [], "purchases": []} for grp in ("treatment", "control")
    }
    for member_id, grp in members:
        chance = 0.10 + (uplift if grp == "treatment" else 0.0)
        count = int(rng.binomial(1, chance) * (1 + rng.poisson(0.5)))
        revenue = margin = kept = 0
        for number in range(count):
            gross = int(rng.gamma(2.0, BASKET_MEAN_FEN / 2))
            net = gross - int(rng.integers(0, gross // 10 + 1))
            cost = int(gross * 0.7)
            returned = int(rng.choice([0, 0, 0, net // 2, net]))
            purchases.append(
                (
                    f"{member_id}-{number}",
                    member_id,
                    launched + timedelta(days=int(rng.integers(0, 20))),
                    gross,
                    net,
                    cost,
                    returned,
                )
            )
            if not (net > 0 and returned >= net):
                kept += 1
            back = half_up(gross * returned, net)
            back_cost = half_up(cost * returned, net)
            revenue += gross - back
            margin += (gross - back) - (cost - back_cost)
        # A purchase before the launch never counts.
        purchases.append((f"{member_id}-old", member_id, launched - timedelta(days=3), 50_000, 50_000, 10_000, 0))
        outcomes[grp]["revenue"].append(revenue)
        outcomes[grp]["margin"].append(margin)
        outcomes[grp]["purchases"].append(kept)
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO campaign (campaign_id, name, status, offer, terms, valid_from, valid_until, "
                "per_member_limit, control_fraction_bp, created_by, created_at, launched_at) "
                "VALUES ('CMP', 'x', 'running', $1, $2, $3, $4, 1, 2000, 'hq', $3, $3)",
                json.dumps(offer_to_json(Offer(DiscountKind.AMOUNT_OFF, 1_000))),
                json.dumps(terms_to_json(terms)),
                launched,
                terms.valid_until,
            )
            await connection.copy_records_to_table(
                "campaign_member",
                records=[("CMP", member_id, "active", grp, None, None) for member_id, grp in members],
                columns=["campaign_id", "member_id", "stratum", "grp", "excluded_reason", "code"],
            )
            await connection.copy_records_to_table(
                "purchase",
                records=[
                    (sale, member, member, "S1", at, gross, net, cost, returned, False)
                    for sale, member, at, gross, net, cost, returned in purchases
                ],
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
                    "imported",
                ],
            )
    finally:
        await connection.close()
    return {
        grp: GroupOutcomes(*(np.array(values[key], dtype=np.int64) for key in ("revenue", "margin", "purchases")))
        for grp, values in outcomes.items()
    }


async def test_the_report_is_exactly_the_statistics_of_every_members_outcome_in_the_window(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    outcomes = await synthetic_campaign(marketing_url, clock, uplift=0.05, seed=3)
    report = await Reports(unit_of_work, clock=clock).campaign_report("CMP")
    expected = campaign_result(outcomes["treatment"], outcomes["control"], 0)
    assert report.result.treatment == expected.treatment
    assert report.result.control == expected.control
    assert report.result.incremental_revenue_fen.value == pytest.approx(expected.incremental_revenue_fen.value)
    assert report.result.incremental_revenue_fen.low == pytest.approx(expected.incremental_revenue_fen.low)
    assert report.result.incremental_margin_fen.high == pytest.approx(expected.incremental_margin_fen.high)
    assert not report.final
    clock.advance(days=30)
    assert (await Reports(unit_of_work, clock=clock).campaign_report("CMP")).final


@pytest.mark.parametrize(("uplift", "seed"), [(0.06, 11), (0.0, 12)])
async def test_the_report_recovers_an_injected_uplift_and_finds_none_where_there_is_none(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock, uplift: float, seed: int
) -> None:
    await synthetic_campaign(marketing_url, clock, uplift=uplift, seed=seed)
    report = await Reports(unit_of_work, clock=clock).campaign_report("CMP")
    # The true effect per treated member: the extra buyers' expected revenue — 1.5 baskets each (1 + Poisson(0.5)),
    # of which returns take back on average a half of a quarter and all of another quarter (kept: 0.625).
    true_effect = uplift * 1.5 * BASKET_MEAN_FEN * 0.625 * TREATED
    interval = report.result.incremental_revenue_fen
    assert interval.covers(true_effect)
    if uplift == 0:
        assert interval.covers(0.0)
    else:
        assert interval.low > 0
