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


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, sum and sum of squares of whole fen: exact (Python integers), so a variance over a
    million members loses nothing to cancellation, and summable in SQL (``sum(x::numeric * x)``)."""

    n: int
    total: int
    total_sq: int

    @classmethod
    def of(cls, values: NDArray[np.int64]) -> Moments:
        as_ints = [int(value) for value in values]
        return cls(len(as_ints), sum(as_ints), sum(value * value for value in as_ints))

    @property
    def mean(self) -> float:
        return self.total / self.n

    @property
    def variance(self) -> float:
        """The sample variance (n − 1 in the denominator)."""
        return (self.n * self.total_sq - self.total * self.total) / (self.n * (self.n - 1))


@dataclass(frozen=True, slots=True)
class GroupStats:
    """What the report needs of one group, as a database can sum it."""

    members: int
    buyers: int  # bought at least once in the window
    repeat_buyers: int  # at least twice
    purchases: int
    revenue: Moments
    margin: Moments

    @classmethod
    def of(cls, outcomes: GroupOutcomes) -> GroupStats:
        return cls(
            members=outcomes.members,
            buyers=int((outcomes.purchases > 0).sum()),
            repeat_buyers=int((outcomes.purchases > 1).sum()),
            purchases=int(outcomes.purchases.sum()),
            revenue=Moments.of(outcomes.revenue_fen),
            margin=Moments.of(outcomes.margin_fen),
        )


def summarise(group: GroupOutcomes | GroupStats) -> GroupSummary:
    stats_ = GroupStats.of(group) if isinstance(group, GroupOutcomes) else group
    members = stats_.members
    if members == 0:
        return GroupSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return GroupSummary(
        members=members,
        conversion_rate=stats_.buyers / members,
        revenue_per_member_fen=stats_.revenue.total / members,
        margin_per_member_fen=stats_.margin.total / members,
        average_basket_fen=stats_.revenue.total / stats_.purchases if stats_.purchases else 0.0,
        repurchase_rate=stats_.repeat_buyers / members,
    )


def difference_of_means(treated: NDArray[np.int64] | Moments, control: NDArray[np.int64] | Moments) -> Estimate:
    """Mean of ``treated`` − mean of ``control`` with its Welch 95% interval (NaN bounds when unmeasurable)."""
    t = treated if isinstance(treated, Moments) else Moments.of(treated)
    c = control if isinstance(control, Moments) else Moments.of(control)
    if t.n == 0 or c.n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    difference = t.mean - c.mean
    if t.n < 2 or c.n < 2:
        return Estimate(difference, float("-inf"), float("inf"))
    var_t = t.variance / t.n
    var_c = c.variance / c.n
    standard_error = (var_t + var_c) ** 0.5
    if standard_error == 0.0:
        return Estimate(difference, difference, difference)
    degrees = (var_t + var_c) ** 2 / (var_t**2 / (t.n - 1) + var_c**2 / (c.n - 1))
    margin = float(stats.t.ppf((1 + CONFIDENCE) / 2, degrees)) * standard_error
    return Estimate(difference, difference - margin, difference + margin)


def _scaled(estimate: Estimate, factor: float) -> Estimate:
    return Estimate(estimate.value * factor, estimate.low * factor, estimate.high * factor)


def campaign_result(
    treatment: GroupOutcomes | GroupStats, control: GroupOutcomes | GroupStats, coupon_cost_fen: int
) -> CampaignResult:
    t = GroupStats.of(treatment) if isinstance(treatment, GroupOutcomes) else treatment
    c = GroupStats.of(control) if isinstance(control, GroupOutcomes) else control
    incremental_revenue = _scaled(difference_of_means(t.revenue, c.revenue), t.members)
    incremental_margin = _scaled(difference_of_means(t.margin, c.margin), t.members)
    roi = None
    if coupon_cost_fen > 0:
        roi = Estimate(
            (incremental_margin.value - coupon_cost_fen) / coupon_cost_fen,
            (incremental_margin.low - coupon_cost_fen) / coupon_cost_fen,
            (incremental_margin.high - coupon_cost_fen) / coupon_cost_fen,
        )
    return CampaignResult(
        treatment=summarise(t),
        control=summarise(c),
        incremental_revenue_fen=incremental_revenue,
        incremental_margin_fen=incremental_margin,
        coupon_cost_fen=coupon_cost_fen,
        roi=roi,
    )
