"""Member tiers: qualification by rolling spend, immediate upgrade, and downgrade at review after a grace period.

Rules
-----
* A :class:`TierPolicy` lists its tiers from lowest to highest. The lowest threshold is 0 and
  the thresholds rise strictly. A member **qualifies** for the highest tier whose
  ``threshold_minor`` their rolling spend reaches. Rolling spend is the net amount in fen
  (sales minus returns) over the last ``window_days``, ending at ``now`` (see
  :func:`rolling_spend`).
* **Upgrade is immediate and never down.** ``tier_after_purchase`` returns the higher of the
  current and the qualifying tier, so a return never downgrades anyone on the spot.
* **Downgrade happens only at review, after grace.** ``tier_at_review`` keeps the current tier
  while fewer than ``grace_days`` have passed since the member reached it (``tier_since``).
  After that it moves the member **straight to the qualifying tier**, which may be several
  steps down (platinum → basic when spend fell to nothing); it does not step down one tier
  per review. A review also upgrades when the spend qualifies for more.

API
---
* ``Tier(code, threshold_minor)``; ``TierPolicy(tiers, window_days=365, grace_days=90)``
  with ``.tier(code)``, ``.rank(code)`` and ``.lowest``. ``DEFAULT_TIER_POLICY`` is basic ¥0,
  silver ¥2,000, gold ¥8,000 and platinum ¥20,000 of rolling 12-month spend.
* ``qualifying_tier(rolling_spend_minor, policy) -> Tier``
* ``tier_after_purchase(current, rolling_spend_minor, policy) -> Tier``
* ``tier_at_review(current, rolling_spend_minor, tier_since, now, policy) -> Tier``
* ``rolling_spend(spend, now, policy) -> int``: sum of ``(occurred_at, signed amount)``
  pairs inside ``(now − window_days, now]``.

``current`` is a tier code as stored. An unknown code raises :class:`UnknownTier`. A caller
that gets back a tier whose code differs from ``current`` records a tier change (history row
and event) with ``tier_since = now``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from servicekit.errors import InvalidArgument


class UnknownTier(InvalidArgument):
    """The tier code is not one of the policy's tiers."""

    reason = "unknown-tier"


@dataclass(frozen=True, slots=True)
class Tier:
    """A tier and the rolling spend (fen) that qualifies for it."""

    code: str
    threshold_minor: int


@dataclass(frozen=True, slots=True)
class TierPolicy:
    """Tiers from lowest to highest, the rolling spend window and the downgrade grace period (days)."""

    tiers: tuple[Tier, ...]
    window_days: int = 365
    grace_days: int = 90

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a tier policy needs at least one tier")
        if self.tiers[0].threshold_minor != 0:
            raise ValueError("the lowest tier must have a threshold of 0 so that everyone qualifies for it")
        thresholds = [tier.threshold_minor for tier in self.tiers]
        if any(lower >= higher for lower, higher in pairwise(thresholds)):
            raise ValueError("tier thresholds must rise strictly from the lowest tier to the highest")
        if len({tier.code for tier in self.tiers}) != len(self.tiers):
            raise ValueError("tier codes must be unique")
        if self.window_days <= 0 or self.grace_days < 0:
            raise ValueError("window_days must be positive and grace_days not negative")

    @property
    def lowest(self) -> Tier:
        """The tier every member starts in."""
        return self.tiers[0]

    def rank(self, code: str) -> int:
        """0 for the lowest tier, rising by one per tier; raises :class:`UnknownTier`."""
        for index, tier in enumerate(self.tiers):
            if tier.code == code:
                return index
        raise UnknownTier(f"unknown tier {code!r}", details={"tier": code})

    def tier(self, code: str) -> Tier:
        """The tier with this code; raises :class:`UnknownTier`."""
        return self.tiers[self.rank(code)]


DEFAULT_TIER_POLICY = TierPolicy(
    tiers=(
        Tier("basic", 0),
        Tier("silver", 2_000_00),
        Tier("gold", 8_000_00),
        Tier("platinum", 20_000_00),
    )
)


def qualifying_tier(rolling_spend_minor: int, policy: TierPolicy = DEFAULT_TIER_POLICY) -> Tier:
    """The highest tier whose threshold the spend reaches (the lowest for zero or negative spend)."""
    qualified = policy.lowest
    for tier in policy.tiers:
        if rolling_spend_minor >= tier.threshold_minor:
            qualified = tier
    return qualified


def tier_after_purchase(current: str, rolling_spend_minor: int, policy: TierPolicy = DEFAULT_TIER_POLICY) -> Tier:
    """After a sale (or return): the qualifying tier if it is higher, else the current tier; never lower."""
    held = policy.tier(current)
    qualified = qualifying_tier(rolling_spend_minor, policy)
    return qualified if policy.rank(qualified.code) > policy.rank(held.code) else held


def tier_at_review(
    current: str,
    rolling_spend_minor: int,
    tier_since: datetime,
    now: datetime,
    policy: TierPolicy = DEFAULT_TIER_POLICY,
) -> Tier:
    """At a periodic review: upgrade if qualified for more. Downgrade **to the qualifying tier**
    (not one step) only if ``grace_days`` have passed since ``tier_since``; otherwise keep the tier.
    """
    held = policy.tier(current)
    qualified = qualifying_tier(rolling_spend_minor, policy)
    if policy.rank(qualified.code) >= policy.rank(held.code):
        return qualified
    if now - tier_since < timedelta(days=policy.grace_days):
        return held
    return qualified


def rolling_spend(
    spend: Iterable[tuple[datetime, int]], now: datetime, policy: TierPolicy = DEFAULT_TIER_POLICY
) -> int:
    """Net spend (sales positive, returns negative, fen) with ``now − window_days < occurred_at <= now``."""
    start = now - timedelta(days=policy.window_days)
    return sum(amount for occurred_at, amount in spend if start < occurred_at <= now)
