"""BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"), the published baseline.

The story the model tells about each customer:

- while alive, they buy at a Poisson rate λ; across customers λ ~ Gamma(r, α)
  (shape r, rate α);
- after every *repeat* purchase they drop out for good with probability p; across
  customers p ~ Beta(a, b). (A customer is alive at their first purchase: BG/NBD cannot
  say that a one-time buyer left straight away — one of the reasons it is the baseline
  here and not the production model.)

What it needs per customer is three numbers at the end of the calibration period:
``x`` repeat purchases, ``t_x`` the time of the last one (from the first purchase),
``T`` the customer's age (from the first purchase to the cut-off). Any time unit works,
as long as all three and the horizon use the same one (α is in that unit).

The four parameters are fitted by maximum likelihood on log-parameters (so they stay
positive) with L-BFGS-B and the analytic gradient; the log-likelihood is written with
``gammaln``/``betaln`` and ``logaddexp`` so that heavy buyers (large ``x``) never
overflow. The conditional expectation needs the Gaussian hypergeometric function
2F1(r+x, b+x; a+b+x−1; z): its parameters grow with ``x`` and its value with them while
the factor in front of it vanishes, so it is evaluated after Euler's transformation,
which turns the product into (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z) — parameters
that no longer grow with ``x``, and a value near 1. When a fit puts a and b themselves
very high (the data show no dropout) the paper's own form is the tame one and serves
instead; where ``scipy.special.hyp2f1`` fails on both, its power series is summed.

Nothing here does I/O; everything is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

FloatArray = npt.NDArray[np.float64]

# Log-parameters stay within e^±12: far beyond any fitted value, but a flat likelihood
# (e.g. no repeat buyer at all) cannot walk the optimiser off to infinity.
_LOG_BOUND = 12.0
# Within this of a = 1 the expectation's 0/0 is evaluated on both sides and averaged.
_NEAR_ONE = 1e-4
_SERIES_TERMS = 4000


@dataclass(frozen=True, slots=True)
class BgNbdParameters:
    """Gamma(r, α) purchase rates and Beta(a, b) dropout probabilities, α in the time unit of the data."""

    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        if min(self.r, self.alpha, self.a, self.b) <= 0.0:
            raise ValueError(f"BG/NBD parameters must be positive: {self}")

    def as_log_array(self) -> FloatArray:
        return np.log(np.array([self.r, self.alpha, self.a, self.b], dtype=np.float64))

    @classmethod
    def from_log_array(cls, values: FloatArray) -> BgNbdParameters:
        r, alpha, a, b = (float(value) for value in np.exp(values))
        return cls(r, alpha, a, b)


@dataclass(frozen=True, slots=True)
class BgNbdFit:
    """The fitted parameters and how the fit went (total log-likelihood over the customers)."""

    parameters: BgNbdParameters
    log_likelihood: float
    customers: int
    converged: bool
    iterations: int


def _as_arrays(*values: npt.ArrayLike) -> list[FloatArray]:
    return [np.asarray(value, dtype=np.float64) for value in values]


def _check_data(x: FloatArray, t_x: FloatArray, age: FloatArray) -> None:
    if not x.shape == t_x.shape == age.shape:
        raise ValueError("x, t_x and T must have one shape")
    if x.size and (x.min() < 0 or t_x.min() < 0 or np.any(t_x > age) or np.any((x == 0) & (t_x != 0))):
        raise ValueError("need x ≥ 0, 0 ≤ t_x ≤ T, and t_x = 0 where x = 0")
    if np.any(x != np.floor(x)):
        raise ValueError("x counts repeat purchases: whole numbers only")


def _likelihood_terms(
    params: BgNbdParameters, x: FloatArray, t_x: FloatArray, age: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """The common part of each customer's log-likelihood, and its two branches (alive at T; dropped at t_x)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive = -(r + x) * np.log(alpha + age)
    # B(a+1, b+x−1) / B(a, b+x) = a / (b+x−1); only customers with a repeat purchase can have dropped out.
    safe_b = np.where(repeat, b + x - 1.0, 1.0)
    dropped = np.where(repeat, np.log(a) - np.log(safe_b) - (r + x) * np.log(alpha + t_x), -np.inf)
    return common, alive, dropped, repeat


def log_likelihood(params: BgNbdParameters, x: npt.ArrayLike, t_x: npt.ArrayLike, age: npt.ArrayLike) -> FloatArray:
    """Each customer's log-likelihood of (x, t_x, T) under ``params`` (FHL 2005, equation 6)."""
    xs, recency, ages = _as_arrays(x, t_x, age)
    _check_data(xs, recency, ages)
    common, alive, dropped, _ = _likelihood_terms(params, xs, recency, ages)
    return np.asarray(common + np.logaddexp(alive, dropped), dtype=np.float64)


def _negative_mean_log_likelihood(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood and its gradient with respect to the log-parameters."""
    params = BgNbdParameters.from_log_array(log_params)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common, alive, dropped, repeat = _likelihood_terms(params, x, t_x, age)
    total = np.logaddexp(alive, dropped)
    value = common + total
    # Share of each customer's likelihood from the "dropped out at t_x" branch.
    w_dropped = np.where(repeat, np.exp(dropped - total), 0.0)
    w_alive = 1.0 - w_dropped
    log_age, log_last = np.log(alpha + age), np.log(alpha + t_x)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w_alive * log_age - w_dropped * log_last
    d_alpha = r / alpha - (r + x) * (w_alive / (alpha + age) + w_dropped / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a + b + x) + w_dropped / a
    d_b = (
        digamma(b + x)
        - digamma(a + b + x)
        - digamma(b)
        + digamma(a + b)
        - w_dropped / np.where(repeat, b + x - 1.0, 1.0)
    )
    gradient = np.array([d_r.mean() * r, d_alpha.mean() * alpha, d_a.mean() * a, d_b.mean() * b])
    return -float(value.mean()), -gradient


def fit_bgnbd(x: npt.ArrayLike, t_x: npt.ArrayLike, age: npt.ArrayLike) -> BgNbdFit:
    """Maximum-likelihood (r, α, a, b) for these customers.

    Started from r = a = b = 1 and α = the mean age (a rate of about one purchase per
    lifetime so far); a few million customers fit in seconds because every step is one
    vectorised pass with its analytic gradient.
    """
    xs, recency, ages = _as_arrays(x, t_x, age)
    _check_data(xs, recency, ages)
    if xs.size == 0:
        raise ValueError("no customers to fit BG/NBD on")
    start = np.log(np.array([1.0, max(float(ages.mean()), 1.0), 1.0, 1.0]))
    result = minimize(
        _negative_mean_log_likelihood,
        start,
        args=(xs, recency, ages),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 4,
        options={"maxiter": 500},
    )
    params = BgNbdParameters.from_log_array(np.asarray(result.x, dtype=np.float64))
    return BgNbdFit(
        parameters=params,
        log_likelihood=-float(result.fun) * xs.size,
        customers=int(xs.size),
        converged=bool(result.success),
        iterations=int(result.nit),
    )


def probability_alive(params: BgNbdParameters, x: npt.ArrayLike, t_x: npt.ArrayLike, age: npt.ArrayLike) -> FloatArray:
    """P(still alive at T | x, t_x, T) (FHL 2005, equation 11); 1 for a customer without a repeat purchase."""
    xs, recency, ages = _as_arrays(x, t_x, age)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = xs > 0
    # Odds of having dropped out after the last purchase against still being alive, in logs.
    log_odds = np.where(
        repeat,
        np.log(a)
        - np.log(np.where(repeat, b + xs - 1.0, 1.0))
        + (r + xs) * (np.log(alpha + ages) - np.log(alpha + recency)),
        -np.inf,
    )
    return np.asarray(expit(-log_odds), dtype=np.float64)


def _hyp2f1_series(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """2F1(a, b; c; z) by summing its power series (0 ≤ z < 1), for where scipy's evaluation fails."""
    term = np.ones_like(z)
    total = np.ones_like(z)
    for k in range(_SERIES_TERMS):
        term = term * (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z
        total = total + term
        if np.all(np.abs(term) <= 1e-15 * np.abs(total)):
            break
    return total


def _remaining_share(params: BgNbdParameters, a: float, horizon: float, x: FloatArray, age: FloatArray) -> FloatArray:
    """((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; t/(α+T+t)), elementwise, for one value of a.

    Euler's form (1−z)^(a−1) · 2F1(a+b−1−r, a−1; c; z) first: its parameters do not grow
    with x. When the fit put a and b themselves very high (no sign of dropout in the
    data) that form overflows instead, and the paper's own form is the tame one; the
    power series is the last resort.
    """
    r, alpha, b = params.r, params.alpha, params.b
    z = horizon / (alpha + age + horizon)
    c = a + b + x - 1.0
    with np.errstate(all="ignore"):
        share = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        failed = ~np.isfinite(share)
        if failed.any():
            direct_z, direct_x, direct_c = z[failed], x[failed], c[failed]
            front = np.exp((r + direct_x) * np.log1p(-direct_z))
            direct = front * hyp2f1(r + direct_x, b + direct_x, direct_c, direct_z)
            still = ~np.isfinite(direct)
            if still.any():
                direct[still] = front[still] * _hyp2f1_series(
                    r + direct_x[still], b + direct_x[still], direct_c[still], direct_z[still]
                )
            share[failed] = direct
    return np.asarray(share, dtype=np.float64)


def _lifetime_factor(params: BgNbdParameters, a: float, horizon: float, x: FloatArray, age: FloatArray) -> FloatArray:
    """(a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; t/(α+T+t))], for one value of a."""
    c = a + params.b + x - 1.0
    return np.asarray(c / (a - 1.0) * (1.0 - _remaining_share(params, a, horizon, x, age)), dtype=np.float64)


def expected_purchases(
    params: BgNbdParameters, horizon: float, x: npt.ArrayLike, t_x: npt.ArrayLike, age: npt.ArrayLike
) -> FloatArray:
    """E[purchases in (T, T+horizon] | x, t_x, T] (FHL 2005, equation 10).

    With x = t_x = T = 0 it is the expected purchases of a customer just acquired, E[X(t)].
    """
    xs, recency, ages = _as_arrays(x, t_x, age)
    if horizon < 0:
        raise ValueError("the horizon must not be negative")
    if horizon == 0:
        return np.zeros(xs.shape)
    a = params.a
    if abs(a - 1.0) < _NEAR_ONE:
        # a = 1 is a removable singularity (0/0); the expectation is smooth in a around it.
        factor = 0.5 * (
            _lifetime_factor(params, 1.0 - _NEAR_ONE, horizon, xs, ages)
            + _lifetime_factor(params, 1.0 + _NEAR_ONE, horizon, xs, ages)
        )
    else:
        factor = _lifetime_factor(params, a, horizon, xs, ages)
    return np.asarray(np.maximum(factor, 0.0) * probability_alive(params, xs, recency, ages), dtype=np.float64)


def probability_of_purchase(
    params: BgNbdParameters, horizon: float, x: npt.ArrayLike, t_x: npt.ArrayLike, age: npt.ArrayLike
) -> FloatArray:
    """P(at least one purchase in (T, T+horizon] | x, t_x, T).

    A customer alive at T makes no purchase in the next t with probability e^(−λt) (a
    dropout only follows a purchase), and given alive at T their λ is
    Gamma(r+x, α+T); averaged over λ that is ((α+T)/(α+T+t))^(r+x). So the answer is
    P(alive) · (1 − ((α+T)/(α+T+t))^(r+x)).
    """
    xs, recency, ages = _as_arrays(x, t_x, age)
    r, alpha = params.r, params.alpha
    quiet = np.exp(-(r + xs) * np.log1p(horizon / (alpha + ages)))
    return np.asarray(probability_alive(params, xs, recency, ages) * (1.0 - quiet), dtype=np.float64)
