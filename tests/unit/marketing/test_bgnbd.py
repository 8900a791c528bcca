"""BG/NBD against its paper and against its own generative process.

The parameters are CDNOW's as Fader, Hardie & Lee (2005) published them (time in weeks):
r = 0.243, α = 4.414, a = 0.793, b = 2.426. Simulated customers drawn from that process
must give those parameters back, and the model's conditional expectations must match
what the simulated customers then really did.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import hyp2f1

from services.marketing.domain import bgnbd
from services.marketing.domain.bgnbd import (
    BgNbdParameters,
    expected_purchases,
    fit_bgnbd,
    log_likelihood,
    probability_alive,
    probability_of_purchase,
)
from tests.unit.marketing.populations import SimulatedCustomers, bgnbd_customers

CDNOW = BgNbdParameters(r=0.243, alpha=4.414, a=0.793, b=2.426)
HORIZON_WEEKS = 39.0


def cdnow_like(customers: int, seed: int) -> SimulatedCustomers:
    """Customers acquired over 12 weeks and observed until week 39, as CDNOW's cohort was."""
    rng = np.random.default_rng(seed)
    return bgnbd_customers(CDNOW, rng.uniform(27.0, 39.0, customers), HORIZON_WEEKS, rng)


@pytest.fixture(scope="module")
def simulated() -> SimulatedCustomers:
    return cdnow_like(200_000, seed=20261206)


def test_the_papers_example_customer_expects_the_published_purchases() -> None:
    # FHL 2005, section 5: x = 2, t_x = 30.43, T = 38.86 weeks expects 1.226 purchases in the next 39 weeks.
    expected = expected_purchases(CDNOW, HORIZON_WEEKS, [2], [30.43], [38.86])

    assert expected[0] == pytest.approx(1.226, abs=0.0005)


def test_the_fit_recovers_the_parameters_of_20_000_simulated_customers() -> None:
    customers = cdnow_like(20_000, seed=11)

    fit = fit_bgnbd(customers.frequency, customers.recency, customers.age)

    assert fit.converged
    found = fit.parameters
    # Tolerances are about three standard errors at this size (measured over eight seeds).
    assert found.r == pytest.approx(CDNOW.r, rel=0.12)
    assert found.alpha == pytest.approx(CDNOW.alpha, rel=0.15)
    assert found.a == pytest.approx(CDNOW.a, rel=0.3)
    assert found.b == pytest.approx(CDNOW.b, rel=0.3)
    truth = log_likelihood(CDNOW, customers.frequency, customers.recency, customers.age).sum()
    assert fit.log_likelihood >= truth


def test_the_gradient_is_the_likelihoods() -> None:
    customers = cdnow_like(2_000, seed=3)
    data = (customers.frequency, customers.recency, customers.age)

    def value(log_params: np.ndarray) -> float:
        return bgnbd._negative_mean_log_likelihood(log_params, *data)[0]

    def gradient(log_params: np.ndarray) -> np.ndarray:
        return bgnbd._negative_mean_log_likelihood(log_params, *data)[1]

    for point in ([0.0, 0.0, 0.0, 0.0], np.log([0.3, 5.0, 0.7, 2.5]), np.log([2.0, 40.0, 1.6, 0.4])):
        assert check_grad(value, gradient, np.asarray(point, dtype=np.float64)) < 1e-5


@pytest.mark.parametrize(("low", "high"), [(0, 0), (1, 1), (2, 3), (4, 7), (8, 10_000)])
def test_expected_purchases_add_up_to_what_simulated_customers_then_bought(
    simulated: SimulatedCustomers, low: int, high: int
) -> None:
    # E[Y | data] summed over customers chosen by their data estimates the sum of their Y.
    chosen = (simulated.frequency >= low) & (simulated.frequency <= high)
    x, t_x, age = simulated.frequency[chosen], simulated.recency[chosen], simulated.age[chosen]

    expected = expected_purchases(CDNOW, HORIZON_WEEKS, x, t_x, age).sum()
    bought = simulated.future_purchases[chosen].sum()

    assert expected == pytest.approx(bought, rel=0.04)


@pytest.mark.parametrize(("low", "high"), [(1, 1), (2, 3), (4, 10_000)])
def test_p_alive_adds_up_to_the_simulated_customers_still_alive(
    simulated: SimulatedCustomers, low: int, high: int
) -> None:
    chosen = (simulated.frequency >= low) & (simulated.frequency <= high)

    alive = probability_alive(CDNOW, simulated.frequency[chosen], simulated.recency[chosen], simulated.age[chosen])

    assert alive.sum() == pytest.approx(simulated.alive[chosen].sum(), rel=0.02)


def test_the_probability_of_a_purchase_adds_up_to_the_customers_who_bought(simulated: SimulatedCustomers) -> None:
    buys = probability_of_purchase(CDNOW, HORIZON_WEEKS, simulated.frequency, simulated.recency, simulated.age)

    assert buys.sum() == pytest.approx((simulated.future_purchases > 0).sum(), rel=0.02)


def test_a_new_customers_expectation_matches_a_simulated_cohort() -> None:
    rng = np.random.default_rng(5)
    cohort = bgnbd_customers(CDNOW, np.zeros(200_000), HORIZON_WEEKS, rng)

    expected = expected_purchases(CDNOW, HORIZON_WEEKS, [0.0], [0.0], [0.0])[0]

    assert expected == pytest.approx(cohort.future_purchases.mean(), rel=0.03)


def test_a_customer_without_a_repeat_purchase_is_alive_and_one_who_went_quiet_is_fading() -> None:
    alive = probability_alive(CDNOW, [0, 5, 5], [0, 10, 38], [38, 38, 38])

    assert alive[0] == 1.0
    assert alive[1] < alive[2] < 1.0


def test_heavy_buyers_get_a_finite_expectation_a_little_below_their_own_rate() -> None:
    # The untransformed 2F1(r+x, b+x; a+b+x−1; z) overflows here; the transformed one does not.
    x, age, horizon = 3_000.0, 100.0, HORIZON_WEEKS
    direct = hyp2f1(CDNOW.r + x, CDNOW.b + x, CDNOW.a + CDNOW.b + x - 1, horizon / (CDNOW.alpha + age + horizon))
    assert not np.isfinite(direct)

    expected = expected_purchases(CDNOW, horizon, [x], [age], [age])[0]

    # Alive for sure at T (bought that week) with rate (r+x)/(α+T); only dropping out in the horizon lowers it.
    rate = (CDNOW.r + x) / (CDNOW.alpha + age)
    assert 0.8 * rate * horizon < expected < rate * horizon


def test_the_transformed_expectation_equals_the_papers_formula_where_that_one_is_finite() -> None:
    x, t_x, age = np.array([0.0, 1.0, 3.0, 12.0]), np.array([0.0, 5.0, 20.0, 30.0]), np.array([10.0, 20.0, 30.0, 35.0])
    r, alpha, a, b = CDNOW.r, CDNOW.alpha, CDNOW.a, CDNOW.b
    z = HORIZON_WEEKS / (alpha + age + HORIZON_WEEKS)
    lifetime = 1.0 - ((alpha + age) / (alpha + age + HORIZON_WEEKS)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    papers = (a + b + x - 1) / (a - 1) * lifetime * probability_alive(CDNOW, x, t_x, age)

    assert expected_purchases(CDNOW, HORIZON_WEEKS, x, t_x, age) == pytest.approx(papers, rel=1e-9)


def test_the_series_fallback_agrees_with_scipys_2f1() -> None:
    a, b, c, z = (
        np.array(values) for values in ([0.4, 1.5, -0.2], [-0.2, 0.7, 0.3], [3.0, 10.5, 40.0], [0.3, 0.8, 0.6])
    )

    assert bgnbd._hyp2f1_series(a, b, c, z) == pytest.approx(hyp2f1(a, b, c, z), rel=1e-10)


def test_the_expectation_is_continuous_through_a_equal_to_one() -> None:
    x, t_x, age = [0.0, 4.0], [0.0, 20.0], [30.0, 30.0]

    def at(a: float) -> np.ndarray:
        return expected_purchases(BgNbdParameters(0.5, 5.0, a, 2.0), 20.0, x, t_x, age)

    assert at(1.0) == pytest.approx((at(0.999) + at(1.001)) / 2, rel=1e-4)


def test_data_that_cannot_come_from_any_customer_is_refused() -> None:
    with pytest.raises(ValueError, match="t_x ≤ T"):
        fit_bgnbd([1.0], [10.0], [5.0])
    with pytest.raises(ValueError, match="t_x = 0 where x = 0"):
        fit_bgnbd([0.0], [3.0], [5.0])
    with pytest.raises(ValueError, match="whole numbers"):
        fit_bgnbd([0.5], [3.0], [5.0])
    with pytest.raises(ValueError, match="no customers"):
        fit_bgnbd([], [], [])


def test_a_fit_that_found_no_dropout_still_gives_finite_expectations() -> None:
    # Few young customers: the fit drives a and b up together (dropout p ≈ a/(a+b), nearly certain).
    params = BgNbdParameters(r=0.1, alpha=17.0, a=2_100.0, b=46_600.0)

    expected = expected_purchases(params, 30.0, [0.0, 0.0], [0.0, 0.0], [50.0, 150.0])

    # No repeat purchase yet, so no dropout yet either; until the next purchase λ ~ Gamma(r, α+T).
    assert expected == pytest.approx([0.1 / 67.0 * 30.0, 0.1 / 167.0 * 30.0], rel=0.02)
