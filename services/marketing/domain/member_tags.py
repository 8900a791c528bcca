"""Tags a store guide sees on a member (no contact data): engagement, top categories, preferred store.

**Engagement** is measured against the member's own rhythm, not one threshold for everyone: a
member who shops every three days and has not come for three weeks is at risk; one who shops
every two months is not, after seven weeks.

* ``new`` — registered within ``new_days`` and at most one purchase;
* ``active`` — last purchase within the member's expected gap (× ``at_risk_after_gaps``), or
  within ``active_days`` for members without a rhythm yet (fewer than three purchases);
* ``at_risk`` — overdue by their own rhythm but within ``sleeping_days``, or the churn model
  says ``churn_risk >= at_risk_churn`` while they still look active;
* ``sleeping`` — no purchase for ``sleeping_days`` up to ``lost_days``;
* ``lost`` — nothing for ``lost_days``, or never bought and registered longer ago than that.

The expected gap is the median of the member's days between purchases (a burst of visits in
one week does not make a weekly shopper of a monthly one; the median shrugs it off).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from statistics import median


class Engagement(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    SLEEPING = "sleeping"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class EngagementPolicy:
    new_days: int = 30
    active_days: int = 60
    at_risk_after_gaps: float = 2.5
    sleeping_days: int = 120
    lost_days: int = 365
    at_risk_churn: float = 0.7


@dataclass(frozen=True, slots=True)
class MemberTags:
    engagement: Engagement
    top_categories: tuple[str, ...]
    preferred_store: str | None


def expected_gap_days(purchase_days: Sequence[int]) -> float | None:
    """The median number of days between distinct purchase days; None with fewer than three."""
    days = sorted(set(purchase_days))
    if len(days) < 3:
        return None
    return float(median(later - earlier for earlier, later in pairwise(days)))


def engagement(
    *,
    days_since_registration: int,
    purchase_days_ago: Sequence[int],
    churn_risk: float | None = None,
    policy: EngagementPolicy = EngagementPolicy(),
) -> Engagement:
    """The member's engagement from how long ago each purchase was (days before today)."""
    if not purchase_days_ago:
        if days_since_registration <= policy.new_days:
            return Engagement.NEW
        return Engagement.LOST if days_since_registration > policy.lost_days else Engagement.SLEEPING
    since_last = min(purchase_days_ago)
    if days_since_registration <= policy.new_days and len(set(purchase_days_ago)) <= 1:
        return Engagement.NEW
    if since_last > policy.lost_days:
        return Engagement.LOST
    if since_last > policy.sleeping_days:
        return Engagement.SLEEPING
    gap = expected_gap_days([-days for days in purchase_days_ago])
    overdue_after = policy.active_days if gap is None else max(gap * policy.at_risk_after_gaps, 7.0)
    if since_last > overdue_after:
        return Engagement.AT_RISK
    if churn_risk is not None and churn_risk >= policy.at_risk_churn:
        return Engagement.AT_RISK
    return Engagement.ACTIVE


def top_keys(amounts: Mapping[str, int], limit: int = 3) -> tuple[str, ...]:
    """The keys with the largest positive amounts, largest first, ties by key."""
    ranked = sorted((key for key, amount in amounts.items() if amount > 0), key=lambda key: (-amounts[key], key))
    return tuple(ranked[:limit])


def member_tags(
    *,
    days_since_registration: int,
    purchase_days_ago: Sequence[int],
    spend_by_category: Mapping[str, int],
    visits_by_store: Mapping[str, int],
    churn_risk: float | None = None,
    policy: EngagementPolicy = EngagementPolicy(),
) -> MemberTags:
    stores = top_keys(visits_by_store, 1)
    return MemberTags(
        engagement=engagement(
            days_since_registration=days_since_registration,
            purchase_days_ago=purchase_days_ago,
            churn_risk=churn_risk,
            policy=policy,
        ),
        top_categories=top_keys(spend_by_category, 3),
        preferred_store=stores[0] if stores else None,
    )
