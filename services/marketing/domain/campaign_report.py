"""What a campaign brought that would not have come anyway, with how sure we are.

Every member of the campaign's frozen audience is in exactly one group, treatment or
control (:mod:`control_groups`), and has an outcome over the **attribution window** — from
the launch to ``window_days`` after the campaign ends — whether or not they bought, used
the coupon or even opened it (intention to treat: comparing only redeemers with everyone
else would credit the coupon with what its keenest members would have bought anyway).

Per member the outcome is their gross revenue (before coupon discounts) and gross margin
(revenue − item cost) in the window, and the number of purchases. Per group the report gives
conversion (bought at least once), revenue and margin per member, average basket and
repurchase rate (bought at least twice). The effect is the difference of the per-member
means, treatment − control; over the treated members it is the **incremental revenue and
margin**, each with a 95% confidence interval by Welch's t (unequal variances, Welch–
Satterthwaite degrees of freedom). The coupon **cost** is the discount actually redeemed;
**ROI** = (incremental margin − cost) ÷ cost, its interval that of the margin moved the same
way (the cost is known, not estimated).

Amounts are integer fen in, floats (fen) out: a per-member mean is not a whole number of fen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class GroupOutcomes:
    """Per member of one group: gross revenue and margin in fen, and purchases, in the window."""

    revenue_fen: NDArray[np.int64]
    margin_fen: NDArray[np.int64]
    purchases: NDArray[np.int64]

    @property
    def members(self) -> int:
        return len(self.revenue_fen)


@dataclass(frozen=True, slots=True)
class GroupSummary:
    members: int
    conversion_rate: float
    revenue_per_member_fen: float
    margin_per_member_fen: float
    average_basket_fen: float
    repurchase_rate: float


@dataclass(frozen=True, slots=True)
class Estimate:
    value: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class CampaignResult:
    treatment: GroupSummary
    control: GroupSummary
    incremental_revenue_fen: Estimate
    incremental_margin_fen: Estimate
    coupon_cost_fen: int
    roi: Estimate | None  # None while nothing was redeemed (no cost to divide by)


def summarise(outcomes: GroupOutcomes) -> GroupSummary:
    members = outcomes.members
    if members == 0:
        return GroupSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    purchases = int(outcomes.purchases.sum())
    revenue = int(outcomes.revenue_fen.sum())
    return GroupSummary(
        members=members,
        conversion_rate=float((outcomes.purchases > 0).mean()),
        revenue_per_member_fen=revenue / members,
        margin_per_member_fen=int(outcomes.margin_fen.sum()) / members,
        average_basket_fen=revenue / purchases if purchases else 0.0,
        repurchase_rate=float((outcomes.purchases > 1).mean()),
    )


def difference_of_means(treated: NDArray[np.int64], control: NDArray[np.int64]) -> Estimate:
    """Mean of ``treated`` − mean of ``control`` with its Welch 95% interval (NaN bounds when unmeasurable)."""
    n_t, n_c = len(treated), len(control)
    if n_t == 0 or n_c == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    difference = float(treated.mean() - control.mean())
    if n_t < 2 or n_c < 2:
        return Estimate(difference, float("-inf"), float("inf"))
    var_t = float(treated.var(ddof=1)) / n_t
    var_c = float(control.var(ddof=1)) / n_c
    standard_error = (var_t + var_c) ** 0.5
    if standard_error == 0.0:
        return Estimate(difference, difference, difference)
    degrees = (var_t + var_c) ** 2 / (var_t**2 / (n_t - 1) + var_c**2 / (n_c - 1))
    margin = float(stats.t.ppf((1 + CONFIDENCE) / 2, degrees)) * standard_error
    return Estimate(difference, difference - margin, difference + margin)


def _scaled(estimate: Estimate, factor: float) -> Estimate:
    return Estimate(estimate.value * factor, estimate.low * factor, estimate.high * factor)


def campaign_result(treatment: GroupOutcomes, control: GroupOutcomes, coupon_cost_fen: int) -> CampaignResult:
    treated = treatment.members
    incremental_revenue = _scaled(difference_of_means(treatment.revenue_fen, control.revenue_fen), treated)
    incremental_margin = _scaled(difference_of_means(treatment.margin_fen, control.margin_fen), treated)
    roi = None
    if coupon_cost_fen > 0:
        roi = Estimate(
            (incremental_margin.value - coupon_cost_fen) / coupon_cost_fen,
            (incremental_margin.low - coupon_cost_fen) / coupon_cost_fen,
            (incremental_margin.high - coupon_cost_fen) / coupon_cost_fen,
        )
    return CampaignResult(
        treatment=summarise(treatment),
        control=summarise(control),
        incremental_revenue_fen=incremental_revenue,
        incremental_margin_fen=incremental_margin,
        coupon_cost_fen=coupon_cost_fen,
        roi=roi,
    )
