"""Purchase facts, lifecycle stage, RFM scores and favourites of a member. Pure rules over a member's purchases.

Purchases
---------
A :class:`PurchaseRecord` is one sale of the member, with ``amount_minor`` **net of its
returns**. A sale returned in full (net amount ≤ 0) is not a purchase: it counts nowhere
in the facts, the stage, RFM or the favourites. Purchases after ``now`` are ignored.

Lifecycle stage (:func:`lifecycle_stage`): the first rule that matches wins
-------------------------------------------------------------------------------
*idle* is the time since the last purchase, or since registration if the member has never
bought. The thresholds come from :class:`LifecyclePolicy` (defaults in brackets):

1. **churned**: idle more than ``churned_after_days`` (180);
2. **dormant**: idle more than ``dormant_after_days`` (90), or never bought although
   registered more than ``new_days`` (30) ago;
3. **repeat**: at least ``repeat_min_purchases`` (2) purchases in the last ``window_days``
   (365);
4. **new**: registered at most ``new_days`` ago (bought once at most, or not yet);
5. **active**: everyone else, i.e. bought within ``dormant_after_days`` but not often enough
   to be repeat.

"More than N days" compares exact durations, so a member idle for exactly 90 days is still
active.

RFM (:func:`rfm_scores`)
------------------------
Each dimension scores 1 to 5 from four rising breakpoints in :class:`RfmBreakpoints`.

* **Recency**: 5 minus the number of breakpoints that are below the whole days since the
  last purchase. With ``(30, 60, 90, 180)``, 0–30 days scores 5 and more than 180 days
  scores 1.
* **Frequency** and **monetary**: 1 plus the number of breakpoints reached by the purchases
  (or the spend in fen) in the facts' window.

A member who never bought scores 1 on every dimension.

Favourites
----------
``favourite_categories``, ``favourite_stores`` and ``favourite_hours`` return the top N as
``Favourite(key, count)``. The count is the number of purchases: a sale with three lines of
one category counts once for that category. They are ordered by count descending and then by
key ascending, which makes the order deterministic. Hours are 0–23 in the time zone given
(e.g. ``ZoneInfo("Asia/Shanghai")``), or in the datetimes' own zone when none is given.

API
---
``PurchaseRecord``, ``PurchaseFacts``, ``purchase_facts(purchases, now, policy)``,
``LifecyclePolicy``, ``LifecycleStage``, ``lifecycle_stage(registered_at, facts, now, policy)``,
``RfmBreakpoints``, ``RfmScores``, ``rfm_scores(facts, now, breakpoints)``, ``Favourite``,
``favourite_categories(purchases, top_n)``, ``favourite_stores(purchases, top_n)``,
``favourite_hours(purchases, top_n, tz)``.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Generic, TypeVar

DAY = timedelta(days=1)


class LifecycleStage(enum.StrEnum):
    NEW = "new"
    ACTIVE = "active"
    REPEAT = "repeat"
    DORMANT = "dormant"
    CHURNED = "churned"


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    """One sale of a member: when, where, the amount net of its returns (fen), and the categories bought."""

    sale_id: str
    occurred_at: datetime
    store_id: str
    amount_minor: int
    categories: tuple[str, ...] = ()

    @property
    def counts(self) -> bool:
        """False for a sale returned in full: it is no purchase."""
        return self.amount_minor > 0


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """Thresholds of the lifecycle stages and the window for frequency and spend (days)."""

    new_days: int = 30
    dormant_after_days: int = 90
    churned_after_days: int = 180
    repeat_min_purchases: int = 2
    window_days: int = 365

    def __post_init__(self) -> None:
        if self.new_days < 0 or not 0 < self.dormant_after_days < self.churned_after_days:
            raise ValueError("need 0 <= new_days and 0 < dormant_after_days < churned_after_days")
        if self.repeat_min_purchases < 2:
            raise ValueError("a repeat buyer needs at least 2 purchases")
        if self.window_days <= 0:
            raise ValueError("window_days must be positive")


DEFAULT_LIFECYCLE_POLICY = LifecyclePolicy()


@dataclass(frozen=True, slots=True)
class PurchaseFacts:
    """What the stage and RFM need to know about a member's purchases.

    ``purchase_count`` is over the member's whole history. ``purchases_in_window`` and
    ``spend_in_window_minor`` cover the last ``window_days`` of the policy that built them.
    """

    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    purchase_count: int = 0
    purchases_in_window: int = 0
    spend_in_window_minor: int = 0
    lifetime_spend_minor: int = 0


NO_PURCHASES = PurchaseFacts()


def purchase_facts(
    purchases: Iterable[PurchaseRecord], now: datetime, policy: LifecyclePolicy = DEFAULT_LIFECYCLE_POLICY
) -> PurchaseFacts:
    """Facts from a member's purchases up to ``now``; the window is ``(now − window_days, now]``."""
    counted = sorted((p for p in purchases if p.counts and p.occurred_at <= now), key=lambda p: p.occurred_at)
    if not counted:
        return NO_PURCHASES
    window_start = now - timedelta(days=policy.window_days)
    in_window = [p for p in counted if p.occurred_at > window_start]
    return PurchaseFacts(
        first_purchase_at=counted[0].occurred_at,
        last_purchase_at=counted[-1].occurred_at,
        purchase_count=len(counted),
        purchases_in_window=len(in_window),
        spend_in_window_minor=sum(p.amount_minor for p in in_window),
        lifetime_spend_minor=sum(p.amount_minor for p in counted),
    )


def lifecycle_stage(
    registered_at: datetime,
    facts: PurchaseFacts,
    now: datetime,
    policy: LifecyclePolicy = DEFAULT_LIFECYCLE_POLICY,
) -> LifecycleStage:
    """The member's stage at ``now``; the rules, in order, are in the module docstring."""
    registered_for = now - registered_at
    idle = now - (facts.last_purchase_at or registered_at)
    if idle > timedelta(days=policy.churned_after_days):
        return LifecycleStage.CHURNED
    if idle > timedelta(days=policy.dormant_after_days):
        return LifecycleStage.DORMANT
    if facts.last_purchase_at is None and registered_for > timedelta(days=policy.new_days):
        return LifecycleStage.DORMANT
    if facts.purchases_in_window >= policy.repeat_min_purchases:
        return LifecycleStage.REPEAT
    if registered_for <= timedelta(days=policy.new_days):
        return LifecycleStage.NEW
    return LifecycleStage.ACTIVE


class ChurnRisk(enum.StrEnum):
    """How likely a member is to be lost, from their idle time against the lifecycle thresholds."""

    LOW = "low"  # bought within the last RECENT_DAYS
    MEDIUM = "medium"  # idle longer, but not past dormant_after_days
    HIGH = "high"  # past dormant_after_days, not past churned_after_days
    LOST = "lost"  # past churned_after_days


RECENT_DAYS = 30  # idle at most this long: low churn risk


def churn_risk_bounds(policy: LifecyclePolicy = DEFAULT_LIFECYCLE_POLICY) -> tuple[int, int, int]:
    """Idle days up to which a member is at LOW, MEDIUM and HIGH risk (more than the last: LOST)."""
    recent = min(RECENT_DAYS, policy.dormant_after_days - 1)
    return recent, policy.dormant_after_days, policy.churned_after_days


def churn_risk(idle: timedelta, policy: LifecyclePolicy = DEFAULT_LIFECYCLE_POLICY) -> ChurnRisk:
    """The risk of a member idle for ``idle`` (since their last purchase, or registration if none)."""
    low, medium, high = churn_risk_bounds(policy)
    if idle <= timedelta(days=low):
        return ChurnRisk.LOW
    if idle <= timedelta(days=medium):
        return ChurnRisk.MEDIUM
    if idle <= timedelta(days=high):
        return ChurnRisk.HIGH
    return ChurnRisk.LOST


@dataclass(frozen=True, slots=True)
class RfmBreakpoints:
    """Four rising breakpoints per dimension: days for recency, purchases for frequency and fen for monetary."""

    recency_days: tuple[int, int, int, int] = (30, 60, 90, 180)
    frequency: tuple[int, int, int, int] = (2, 4, 8, 12)
    monetary_minor: tuple[int, int, int, int] = (500_00, 2_000_00, 5_000_00, 10_000_00)

    def __post_init__(self) -> None:
        for name, points in (
            ("recency_days", self.recency_days),
            ("frequency", self.frequency),
            ("monetary_minor", self.monetary_minor),
        ):
            if len(points) != 4 or any(lower >= higher for lower, higher in pairwise(points)):
                raise ValueError(f"{name} needs four strictly rising breakpoints, got {points}")


DEFAULT_RFM_BREAKPOINTS = RfmBreakpoints()


@dataclass(frozen=True, slots=True)
class RfmScores:
    """Recency, frequency and monetary scores, each 1 (weakest) to 5 (strongest)."""

    recency: int
    frequency: int
    monetary: int

    @property
    def code(self) -> str:
        """The three scores as a segment code, e.g. ``"545"``."""
        return f"{self.recency}{self.frequency}{self.monetary}"


def rfm_scores(facts: PurchaseFacts, now: datetime, breakpoints: RfmBreakpoints = DEFAULT_RFM_BREAKPOINTS) -> RfmScores:
    """RFM scores of a member at ``now`` (1/1/1 for a member who never bought)."""
    if facts.last_purchase_at is None:
        return RfmScores(1, 1, 1)
    days_since = max(0, (now - facts.last_purchase_at) // DAY)
    return RfmScores(
        recency=5 - sum(1 for days in breakpoints.recency_days if days < days_since),
        frequency=1 + sum(1 for count in breakpoints.frequency if facts.purchases_in_window >= count),
        monetary=1 + sum(1 for amount in breakpoints.monetary_minor if facts.spend_in_window_minor >= amount),
    )


K = TypeVar("K", str, int)


@dataclass(frozen=True, slots=True)
class Favourite(Generic[K]):
    """A category, store or hour and the number of purchases in it."""

    key: K
    count: int


def favourite_categories(purchases: Iterable[PurchaseRecord], top_n: int = 3) -> list[Favourite[str]]:
    """The categories bought in the most purchases (a purchase counts once per category)."""
    return _top(Counter(category for p in _counted(purchases) for category in set(p.categories)), top_n)


def favourite_stores(purchases: Iterable[PurchaseRecord], top_n: int = 3) -> list[Favourite[str]]:
    """The stores with the most purchases."""
    return _top(Counter(p.store_id for p in _counted(purchases)), top_n)


def favourite_hours(
    purchases: Iterable[PurchaseRecord], top_n: int = 3, tz: tzinfo | None = None
) -> list[Favourite[int]]:
    """The hours of day (0–23, in ``tz`` if given) with the most purchases."""
    hours: Counter[int] = Counter()
    for purchase in _counted(purchases):
        moment = purchase.occurred_at
        if tz is not None:
            if moment.tzinfo is None:
                raise ValueError(f"sale {purchase.sale_id}: a naive time cannot be converted to another zone")
            moment = moment.astimezone(tz)
        hours[moment.hour] += 1
    return _top(hours, top_n)


def _counted(purchases: Iterable[PurchaseRecord]) -> Iterable[PurchaseRecord]:
    return (p for p in purchases if p.counts)


def _top(counts: Counter[K], top_n: int) -> list[Favourite[K]]:
    if top_n < 0:
        raise ValueError(f"top_n must not be negative, got {top_n}")
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [Favourite(key, count) for key, count in ranked[:top_n]]
