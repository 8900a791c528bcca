"""The campaign report recovers a known uplift inside its interval, and finds none where there is none."""

import math

import numpy as np
import pytest

from services.marketing.domain.campaign_report import (
    GroupOutcomes,
    campaign_result,
    difference_of_means,
    summarise,
)

BASKET_MU, BASKET_SIGMA = math.log(8_000), 0.9  # a typical basket around 80 yuan, heavy right tail
MARGIN_SHARE = 0.25
MEAN_BASKET = math.exp(BASKET_MU + BASKET_SIGMA**2 / 2)


def population(rng: np.random.Generator, members: int, conversion: float) -> GroupOutcomes:
    """Mostly members who buy nothing in the window; buyers buy one to a few lognormal baskets."""
    purchases = rng.binomial(1, conversion, members) * (1 + rng.poisson(0.4, members))
    buyer_of_basket = np.repeat(np.arange(members), purchases)
    baskets = rng.lognormal(BASKET_MU, BASKET_SIGMA, len(buyer_of_basket))
    revenue = np.bincount(buyer_of_basket, weights=baskets, minlength=members)
    revenue_fen = np.rint(revenue).astype(np.int64)
    margin_fen = np.rint(revenue * MARGIN_SHARE).astype(np.int64)
    return GroupOutcomes(revenue_fen, margin_fen, purchases.astype(np.int64))


def true_revenue_per_member(conversion: float) -> float:
    return conversion * 1.4 * MEAN_BASKET


def test_a_known_uplift_is_recovered_inside_the_interval_and_the_interval_excludes_zero() -> None:
    rng = np.random.default_rng(20261206)
    treated = population(rng, 40_000, conversion=0.12)
    control = population(rng, 4_000, conversion=0.09)
    result = campaign_result(treated, control, coupon_cost_fen=2_000_000)
    truth = (true_revenue_per_member(0.12) - true_revenue_per_member(0.09)) * 40_000
    assert result.incremental_revenue_fen.covers(truth)
    assert result.incremental_revenue_fen.low > 0
    assert result.incremental_margin_fen.covers(truth * MARGIN_SHARE)
    assert result.roi is not None
    assert result.roi.value == pytest.approx((result.incremental_margin_fen.value - 2_000_000) / 2_000_000)
    assert result.treatment.members == 40_000
    assert result.control.members == 4_000


def test_no_uplift_gives_an_interval_that_covers_zero() -> None:
    rng = np.random.default_rng(7)
    result = campaign_result(population(rng, 30_000, 0.1), population(rng, 3_000, 0.1), coupon_cost_fen=0)
    assert result.incremental_revenue_fen.covers(0.0)
    assert result.incremental_margin_fen.covers(0.0)
    assert result.roi is None


def test_the_95_percent_interval_covers_the_truth_about_95_times_in_100() -> None:
    rng = np.random.default_rng(11)
    truth = true_revenue_per_member(0.15) - true_revenue_per_member(0.12)
    covered = sum(
        difference_of_means(population(rng, 6_000, 0.15).revenue_fen, population(rng, 1_500, 0.12).revenue_fen).covers(
            truth
        )
        for _ in range(300)
    )
    # Binomial(300, 0.95): 99.9% of runs fall within 270..297.
    assert 270 <= covered <= 297


def test_group_summaries_count_conversion_baskets_and_repeat_buyers() -> None:
    outcomes = GroupOutcomes(
        revenue_fen=np.array([0, 1_000, 5_000, 0], dtype=np.int64),
        margin_fen=np.array([0, 300, 1_000, 0], dtype=np.int64),
        purchases=np.array([0, 1, 3, 0], dtype=np.int64),
    )
    summary = summarise(outcomes)
    assert summary.conversion_rate == 0.5
    assert summary.repurchase_rate == 0.25
    assert summary.revenue_per_member_fen == 1_500
    assert summary.margin_per_member_fen == 325
    assert summary.average_basket_fen == 1_500


def test_an_empty_group_reports_no_effect_rather_than_a_made_up_one() -> None:
    empty = GroupOutcomes(*(np.array([], dtype=np.int64) for _ in range(3)))
    one = GroupOutcomes(*(np.array([100], dtype=np.int64) for _ in range(3)))
    assert math.isnan(campaign_result(one, empty, 0).incremental_revenue_fen.value)
    assert difference_of_means(np.array([5], dtype=np.int64), np.array([1, 2], dtype=np.int64)).low == -math.inf
