"""The uplift model finds persuadable members on held-out campaigns, and admits it when there are none."""

import numpy as np
import pytest

from services.marketing.domain.uplift import (
    RANDOM,
    FloatArray,
    IntArray,
    fit_uplift,
    qini_coefficient,
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
