"""The uplift model finds persuadable members on held-out campaigns, and admits it when there are none."""

import numpy as np
import pytest

from services.marketing.domain.uplift import (
    HOLDOUT_CAMPAIGNS,
    HOLDOUT_RANDOM_MEMBERS,
    RANDOM,
    TRANSFORMED_OUTCOME,
    TWO_MODEL,
    CampaignOutcomes,
    FloatArray,
    IntArray,
    NothingToLearn,
    fit_uplift,
    holdout_split,
    qini_coefficient,
    train_uplift,
    uplift_at_k,
)


def campaign(
    rng: np.random.Generator, members: int, *, effect: bool, treated_share: float = 0.8
) -> tuple[FloatArray, IntArray, FloatArray, FloatArray]:
    """Members with a baseline chance to buy; where ``effect``, the offer moves only some of them.

    Persuadables (feature 1 high) respond to the offer; sure things (feature 0 high) buy anyway;
    sleeping dogs (feature 2 very high) buy less when contacted.
    """
    x = rng.normal(size=(members, 5))
    baseline = 1 / (1 + np.exp(-(-2.2 + 1.2 * x[:, 0])))
    effect_size = (0.18 * (x[:, 1] > 0.6) - 0.06 * (x[:, 2] > 1.2)) if effect else np.zeros(members)
    treated = (rng.random(members) < treated_share).astype(np.int64)
    p = np.clip(baseline + treated * effect_size, 0, 1)
    outcome = (rng.random(members) < p).astype(np.float64)
    return x, treated, outcome, effect_size


def test_the_served_learner_ranks_persuadables_first_on_campaigns_it_never_saw() -> None:
    rng = np.random.default_rng(42)
    x, w, y, _ = campaign(rng, 40_000, effect=True)
    x_h, w_h, y_h, true_effect = campaign(rng, 20_000, effect=True)
    fitted = fit_uplift((x, w, y), (x_h, w_h, y_h))
    assert fitted.backtest.served != RANDOM
    # Within a fifth of the Qini of ranking by the true (never observable) effect.
    oracle = qini_coefficient(true_effect.astype(np.float64), w_h, y_h)
    assert fitted.backtest.qini[fitted.backtest.served] > 0.8 * oracle
    assert fitted.model is not None
    predicted = fitted.model.predict(x_h)
    # The top decile by predicted uplift responds to the offer far more than the average member.
    top = np.argsort(-predicted)[: len(predicted) // 10]
    assert true_effect[top].mean() > 2 * true_effect.mean()
    assert uplift_at_k(predicted, w_h, y_h, 0.1) > 0.08
    # Ranking by the baseline chance to buy (propensity) is a worse way to spend the offer.
    propensity = 1 / (1 + np.exp(-(-2.2 + 1.2 * x_h[:, 0])))
    assert qini_coefficient(predicted, w_h, y_h) > qini_coefficient(propensity, w_h, y_h) + 0.05


def test_without_any_effect_no_model_serves() -> None:
    rng = np.random.default_rng(5)
    x, w, y, _ = campaign(rng, 30_000, effect=False)
    held_out = campaign(rng, 15_000, effect=False)[:3]
    fitted = fit_uplift((x, w, y), held_out)
    assert fitted.backtest.served == RANDOM
    assert fitted.model is None
    assert all(abs(q) < 0.15 for q in fitted.backtest.qini.values())


def test_the_qini_coefficient_is_one_for_the_perfect_ranking_and_near_zero_for_a_random_one() -> None:
    rng = np.random.default_rng(9)
    treated = (rng.random(10_000) < 0.5).astype(np.int64)
    outcome = (rng.random(10_000) < 0.3).astype(np.float64)
    perfect = outcome * np.where(treated == 1, 1.0, -1.0)
    assert qini_coefficient(perfect, treated, outcome) == pytest.approx(1.0)
    random_scores = np.mean([qini_coefficient(rng.random(10_000), treated, outcome) for _ in range(20)])
    assert abs(random_scores) < 0.05


def outcomes(rng: np.random.Generator, sizes: list[int], *, effect: bool = True) -> CampaignOutcomes:
    """Campaigns (oldest first) of ``sizes`` members each, the offer moving the members of feature 1 > 0.6."""
    parts = [campaign(rng, size, effect=effect) for size in sizes]
    return CampaignOutcomes(
        campaign_ids=tuple(f"C{index}" for index in range(len(sizes))),
        campaign=np.repeat(np.arange(len(sizes), dtype=np.int64), sizes),
        features=np.concatenate([part[0] for part in parts]),
        treated=np.concatenate([part[1] for part in parts]),
        outcome=np.concatenate([part[2] for part in parts]),
    )


def test_the_most_recent_campaigns_are_held_out_until_they_hold_a_quarter_of_the_members() -> None:
    rng = np.random.default_rng(1)
    split = holdout_split(outcomes(rng, [100, 100, 100, 30, 40]))
    assert split.method == HOLDOUT_CAMPAIGNS
    assert split.holdout_campaigns == ("C2", "C3", "C4")  # 170 of 370 members: C3 and C4 alone hold 19%
    assert split.training_campaigns == ("C0", "C1")
    assert split.held_out.sum() == 170
    assert not (split.train & split.held_out).any()
    # However small the older campaigns, one is always left to train on.
    assert holdout_split(outcomes(rng, [10, 500])).training_campaigns == ("C0",)


def test_a_single_campaign_is_split_by_member_and_the_backtest_says_so() -> None:
    rng = np.random.default_rng(2)
    training = train_uplift(outcomes(rng, [40_000]))
    assert training.split.method == HOLDOUT_RANDOM_MEMBERS
    assert 0.2 < training.holdout_members / 40_000 < 0.3
    report = training.report()
    assert report["holdout"] == HOLDOUT_RANDOM_MEMBERS
    assert "fewer than 2 ended campaigns" in str(report["notes"])
    assert report["qini_random"] == 0.0
    assert training.model is not None


def test_training_on_held_out_campaigns_reports_the_winner_and_refuses_without_both_groups() -> None:
    rng = np.random.default_rng(3)
    training = train_uplift(outcomes(rng, [20_000, 20_000, 20_000]))
    report = training.report()
    assert report["learner"] in (TWO_MODEL, TRANSFORMED_OUTCOME)
    assert report["holdout_campaigns"] == ["C2"]
    assert report["qini"] == max(training.backtest.qini.values()) > 0.1
    nothing = np.zeros(0, dtype=np.int64)
    with pytest.raises(NothingToLearn):
        train_uplift(CampaignOutcomes((), nothing, np.zeros((0, 5)), nothing, np.zeros(0)))
    everyone_treated = outcomes(rng, [1_000, 1_000])
    with pytest.raises(NothingToLearn):
        train_uplift(
            CampaignOutcomes(
                everyone_treated.campaign_ids,
                everyone_treated.campaign,
                everyone_treated.features,
                np.ones_like(everyone_treated.treated),
                everyone_treated.outcome,
            )
        )
