"""The repurchase models on a time split: BG/NBD, the recency-frequency heuristic, and the boosted trees.

The populations come from ``populations``: BG/NBD's own process, where nothing should beat
BG/NBD by much and nothing worse may serve, and a retail chain's members (mostly one-time
buyers, lumpy, seasonal, drifting, still joining), written from how members behave, not
from how the models work.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import numpy as np
import pytest

from services.marketing.domain.bgnbd import BgNbdParameters
from services.marketing.domain.purchase_history import PurchaseHistory, PurchaseLog
from services.marketing.domain.repurchase import (
    BGNBD,
    COMBINED,
    GRADIENT_BOOSTING,
    MODELS,
    RECENCY_FREQUENCY,
    ChainSeasonality,
    backtest_repurchase,
    bgnbd_prediction,
    fit_bgnbd_on,
    recency_frequency_prediction,
    train_repurchase,
)
from tests.unit.marketing.populations import bgnbd_population, retail_population

START = date(2023, 1, 2)
DAYS = 3 * 365
END = START + timedelta(days=DAYS - 1)
HORIZON = 90
MEMBERS = 15_000


@pytest.fixture(scope="module")
def retail() -> PurchaseLog:
    return retail_population(MEMBERS, start=START, days=DAYS, seed=20261206)


@pytest.fixture(scope="module")
def stationary() -> PurchaseLog:
    return bgnbd_population(BgNbdParameters(0.6, 60.0, 0.8, 2.5), MEMBERS, start=START, days=DAYS, seed=20261206)


def test_the_retail_population_is_mostly_one_time_buyers_with_a_heavy_tail(retail: PurchaseLog) -> None:
    # The shape the models are meant for; if the generator drifted from it, the figures below would mean less.
    summary = retail.summary(END)
    one_time = float((summary.frequency == 0).mean())
    joined_last_year = float((summary.age < 365).mean())

    assert 0.6 <= one_time <= 0.8
    assert joined_last_year >= 0.25
    assert np.quantile(summary.frequency, 0.99) >= 10 * max(float(summary.frequency.mean()), 1.0)


def test_the_heuristic_is_the_recent_repeat_rate_over_the_horizon_and_zero_after_a_silent_year() -> None:
    as_of = date(2026, 6, 30)

    def on(*offsets: int) -> tuple[date, ...]:
        return tuple(as_of - timedelta(days=offset) for offset in offsets)

    log = PurchaseLog.of(
        [
            PurchaseHistory("once", on(10), (1_000,)),
            PurchaseHistory("regular", on(700, 300, 200, 100, 5), (1_000,) * 5),
            PurchaseHistory("gone", on(900, 800, 400), (1_000,) * 3),
            PurchaseHistory("new", on(100, 50, 20), (1_000,) * 3),
        ]
    )
    summary = log.summary(as_of)

    expected = recency_frequency_prediction(summary, HORIZON).expected_purchases

    by_member = dict(zip((log.member_ids[member] for member in summary.members), expected.tolist(), strict=True))
    assert by_member["once"] == 0.0
    assert by_member["regular"] == pytest.approx(4 / 365 * HORIZON)
    assert by_member["gone"] == 0.0
    # Two repeats in the 101 days since joining (the first purchase is how they joined).
    assert by_member["new"] == pytest.approx(2 / 101 * HORIZON)


def test_the_backtest_scores_every_model_and_the_winner_has_the_lowest_mae(retail: PurchaseLog) -> None:
    cutoff = END - timedelta(days=HORIZON)

    backtest = backtest_repurchase(retail, cutoff, HORIZON)

    assert [error.model for error in backtest.errors] == list(MODELS)
    actual = retail.purchase_days_between(cutoff, END)[retail.summary(cutoff).members]
    assert backtest.actual_total == int(actual.sum())
    assert backtest.error(backtest.winner).mae == min(error.mae for error in backtest.errors)
    for error in backtest.errors:
        assert 0.5 <= error.churn_auc <= 1.0
        assert 0.0 <= error.churn_brier <= 0.25


def test_a_year_of_quarters_served_by_the_previous_backtests_winner_beats_bgnbd_alone(retail: PurchaseLog) -> None:
    # Each quarter is served by what won the backtest a quarter earlier, and scored on what members then did.
    cutoffs = [END - timedelta(days=HORIZON * back) for back in range(5, 0, -1)]
    backtests = [backtest_repurchase(retail, cutoff, HORIZON) for cutoff in cutoffs]

    served = sum(now.error(before.winner).mae for before, now in pairwise(backtests))
    baseline = sum(now.error(BGNBD).mae for now in backtests[1:])

    figures = "; ".join(
        f"{backtest.cutoff}: "
        + ", ".join(f"{error.model} {error.mae:.4f} ({error.total_error:+.2f})" for error in backtest.errors)
        for backtest in backtests
    )
    assert served < baseline, figures
    assert {backtest.winner for backtest in backtests[:-1]} & {GRADIENT_BOOSTING, COMBINED}, figures
    for backtest in backtests:
        # An average's absolute error is never above the mean of its parts'.
        parts = (backtest.error(BGNBD).mae + backtest.error(GRADIENT_BOOSTING).mae) / 2
        assert backtest.error(COMBINED).mae <= parts + 1e-12


def test_on_bgnbds_own_data_nothing_worse_than_bgnbd_serves(stationary: PurchaseLog) -> None:
    as_of = END - timedelta(days=HORIZON)

    scores = train_repurchase(stationary, as_of, HORIZON)

    summary = stationary.summary(as_of)
    actual = stationary.purchase_days_between(as_of, END)[summary.members]
    baseline = bgnbd_prediction(summary, fit_bgnbd_on(summary), HORIZON).expected_purchases
    served_mae = float(np.abs(actual - scores.expected_purchases).mean())
    baseline_mae = float(np.abs(actual - baseline).mean())
    assert scores.model != RECENCY_FREQUENCY
    assert served_mae <= 1.01 * baseline_mae, f"served {scores.model}: {served_mae:.4f}, BG/NBD {baseline_mae:.4f}"


def test_bgnbd_recovers_its_parameters_from_a_purchase_log(stationary: PurchaseLog) -> None:
    # Daily rounding merges a few same-day purchases; the parameters still come back.
    found = fit_bgnbd_on(stationary.summary(END))

    assert found.r == pytest.approx(0.6, rel=0.15)
    assert found.alpha == pytest.approx(60.0, rel=0.2)
    assert found.a == pytest.approx(0.8, rel=0.3)
    assert found.b == pytest.approx(2.5, rel=0.3)


def test_training_scores_every_member_who_had_bought_with_probabilities(retail: PurchaseLog) -> None:
    scores = train_repurchase(retail, END, HORIZON)

    summary = retail.summary(END)
    assert scores.member_ids == tuple(retail.member_ids[member] for member in summary.members)
    assert scores.backtest is not None
    assert scores.model == scores.backtest.winner
    assert scores.backtest.cutoff == END - timedelta(days=HORIZON)
    assert np.all(scores.expected_purchases >= 0)
    assert np.all((scores.p_active >= 0) & (scores.p_active <= 1))
    assert np.allclose(scores.churn_risk, 1 - scores.p_active)
    # Members who bought last week are likelier to buy again than members silent for two years.
    silent = summary.days_since_last_purchase > 730
    recent = summary.days_since_last_purchase < 7
    assert scores.p_active[recent].mean() > 3 * scores.p_active[silent].mean()


def test_without_an_earlier_window_to_learn_from_only_the_baselines_compete() -> None:
    young = retail_population(300, start=START, days=200, seed=1)

    backtest = backtest_repurchase(young, START + timedelta(days=199 - 30), 30)

    assert [error.model for error in backtest.errors] == [BGNBD, RECENCY_FREQUENCY]


def test_a_chain_younger_than_the_horizon_is_served_by_bgnbd_without_a_backtest() -> None:
    young = retail_population(300, start=START, days=60, seed=2)

    scores = train_repurchase(young, START + timedelta(days=59), HORIZON)

    assert scores.backtest is None
    assert scores.model == BGNBD
    assert len(scores.member_ids) == len(young.summary(START + timedelta(days=59)).members)


def test_the_chains_seasonal_level_follows_the_generators_calendar(retail: PurchaseLog) -> None:
    # The generator's Spring Festival peak (and weekends) give the late-year quarter ~1.43× the summer's.
    cutoff = date(2025, 10, 2)
    seasonality = ChainSeasonality.of(retail, cutoff)

    ratio = seasonality.level(cutoff, cutoff + timedelta(days=HORIZON)) / seasonality.level(
        cutoff - timedelta(days=HORIZON), cutoff
    )

    assert ratio == pytest.approx(1.43, rel=0.1)
    # Less than a year and a half of history: no adjustment.
    assert ChainSeasonality.of(retail, START + timedelta(days=400)).level(
        START + timedelta(days=400), START + timedelta(days=490)
    ) == pytest.approx(1.0)


@pytest.mark.parametrize("horizon", [0, 6, 366])
def test_a_horizon_outside_a_week_to_a_year_is_refused(retail: PurchaseLog, horizon: int) -> None:
    with pytest.raises(ValueError, match="horizon_days"):
        backtest_repurchase(retail, END - timedelta(days=HORIZON), horizon)
