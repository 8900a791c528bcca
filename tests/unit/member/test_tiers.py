"""Tiers: qualification by rolling spend, immediate upgrade, downgrade only at review after grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.member.domain.tiers import (
    DEFAULT_TIER_POLICY,
    Tier,
    TierPolicy,
    UnknownTier,
    qualifying_tier,
    rolling_spend,
    tier_after_purchase,
    tier_at_review,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CODES = [tier.code for tier in DEFAULT_TIER_POLICY.tiers]


@pytest.mark.parametrize(
    ("spend_minor", "expected"),
    [
        (-5_000, "basic"),  # returns outweighed sales
        (0, "basic"),
        (1_999_99, "basic"),
        (2_000_00, "silver"),
        (7_999_99, "silver"),
        (8_000_00, "gold"),
        (20_000_00, "platinum"),
        (1_000_000_00, "platinum"),
    ],
)
def test_a_member_qualifies_for_the_highest_tier_their_rolling_spend_reaches(spend_minor: int, expected: str) -> None:
    assert qualifying_tier(spend_minor).code == expected


@pytest.mark.parametrize(
    ("current", "spend_minor", "expected"),
    [
        ("basic", 2_500_00, "silver"),
        ("silver", 25_000_00, "platinum"),  # may skip tiers
        ("gold", 100_00, "gold"),  # a purchase (or return) never downgrades
        ("platinum", 0, "platinum"),
        ("basic", 0, "basic"),
    ],
)
def test_a_purchase_upgrades_at_once_and_never_downgrades(current: str, spend_minor: int, expected: str) -> None:
    assert tier_after_purchase(current, spend_minor).code == expected


@pytest.mark.parametrize(
    ("current", "spend_minor", "days_in_tier", "expected"),
    [
        ("platinum", 0, 30, "platinum"),  # inside the 90-day grace: kept
        ("platinum", 0, 89, "platinum"),
        ("platinum", 0, 90, "basic"),  # grace over: straight to the qualifying tier, not one step down
        ("platinum", 9_000_00, 400, "gold"),
        ("gold", 3_000_00, 120, "silver"),
        ("gold", 8_000_00, 400, "gold"),  # still qualifies: kept
        ("silver", 9_000_00, 5, "gold"),  # a review upgrades too
    ],
)
def test_a_review_downgrades_to_the_qualifying_tier_only_after_the_grace_period(
    current: str, spend_minor: int, days_in_tier: int, expected: str
) -> None:
    tier_since = NOW - timedelta(days=days_in_tier)
    assert tier_at_review(current, spend_minor, tier_since, NOW).code == expected


def test_grace_is_configurable() -> None:
    no_grace = TierPolicy(tiers=DEFAULT_TIER_POLICY.tiers, grace_days=0)
    assert tier_at_review("gold", 0, NOW, NOW, no_grace).code == "basic"


def test_unknown_tier_codes_are_refused() -> None:
    with pytest.raises(UnknownTier):
        tier_after_purchase("diamond", 0)
    with pytest.raises(UnknownTier):
        tier_at_review("diamond", 0, NOW, NOW)


@pytest.mark.parametrize(
    "tiers",
    [
        (),
        (Tier("basic", 100),),
        (Tier("basic", 0), Tier("silver", 100), Tier("gold", 100)),
        (Tier("basic", 0), Tier("basic", 100)),
    ],
)
def test_a_policy_needs_strictly_rising_thresholds_from_zero_and_unique_codes(tiers: tuple[Tier, ...]) -> None:
    with pytest.raises(ValueError, match="tier"):
        TierPolicy(tiers=tiers)


def test_rolling_spend_sums_sales_and_returns_inside_the_window() -> None:
    spend = [
        (NOW - timedelta(days=365), 1_000_00),  # on the window's open edge: outside
        (NOW - timedelta(days=364), 500_00),
        (NOW - timedelta(days=10), -200_00),  # a return
        (NOW, 300_00),
        (NOW + timedelta(seconds=1), 9_999_00),  # not yet happened
    ]
    assert rolling_spend(spend, NOW) == 600_00


@given(current=st.sampled_from(CODES), spend=st.integers(-(10**7), 10**8))
def test_after_a_purchase_the_tier_is_never_below_the_current_or_the_qualifying_one(current: str, spend: int) -> None:
    result = DEFAULT_TIER_POLICY.rank(tier_after_purchase(current, spend).code)
    assert result == max(DEFAULT_TIER_POLICY.rank(current), DEFAULT_TIER_POLICY.rank(qualifying_tier(spend).code))


@given(current=st.sampled_from(CODES), spend=st.integers(-(10**7), 10**8), days=st.integers(0, 1_000))
def test_a_review_yields_the_current_or_the_qualifying_tier(current: str, spend: int, days: int) -> None:
    result = tier_at_review(current, spend, NOW - timedelta(days=days), NOW)
    qualified = qualifying_tier(spend)
    assert result in (DEFAULT_TIER_POLICY.tier(current), qualified)
    if days >= DEFAULT_TIER_POLICY.grace_days:
        assert result == qualified
