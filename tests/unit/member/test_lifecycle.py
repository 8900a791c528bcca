"""Lifecycle stage, purchase facts, RFM scores and favourites on hand-made members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.member.domain.lifecycle import (
    NO_PURCHASES,
    ChurnRisk,
    Favourite,
    LifecyclePolicy,
    LifecycleStage,
    PurchaseFacts,
    PurchaseRecord,
    RfmBreakpoints,
    RfmScores,
    churn_risk,
    favourite_categories,
    favourite_hours,
    favourite_stores,
    lifecycle_stage,
    purchase_facts,
    rfm_scores,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _facts(last_days_ago: float | None, in_window: int = 1, count: int | None = None) -> PurchaseFacts:
    if last_days_ago is None:
        return NO_PURCHASES
    return PurchaseFacts(
        first_purchase_at=_ago(last_days_ago + 10),
        last_purchase_at=_ago(last_days_ago),
        purchase_count=count if count is not None else max(in_window, 1),
        purchases_in_window=in_window,
        spend_in_window_minor=in_window * 100_00,
    )


@pytest.mark.parametrize(
    ("registered_days_ago", "facts", "expected"),
    [
        (5, _facts(None), LifecycleStage.NEW),  # registered, not bought yet
        (30, _facts(None), LifecycleStage.NEW),
        (31, _facts(None), LifecycleStage.DORMANT),  # never bought after the new period
        (181, _facts(None), LifecycleStage.CHURNED),
        (20, _facts(2, in_window=1), LifecycleStage.NEW),
        (20, _facts(2, in_window=2), LifecycleStage.REPEAT),  # repeat wins over new
        (400, _facts(10, in_window=1, count=7), LifecycleStage.ACTIVE),  # one purchase this year
        (400, _facts(90, in_window=1), LifecycleStage.ACTIVE),  # exactly 90 days idle: not yet dormant
        (400, _facts(90, in_window=5), LifecycleStage.REPEAT),
        (400, _facts(90.5, in_window=5), LifecycleStage.DORMANT),  # frequent, but not lately
        (400, _facts(180, in_window=5), LifecycleStage.DORMANT),
        (400, _facts(181, in_window=1), LifecycleStage.CHURNED),
    ],
)
def test_lifecycle_stage_follows_the_documented_rules_in_order(
    registered_days_ago: int, facts: PurchaseFacts, expected: LifecycleStage
) -> None:
    assert lifecycle_stage(_ago(registered_days_ago), facts, NOW) == expected


def test_lifecycle_thresholds_are_configurable() -> None:
    strict = LifecyclePolicy(new_days=7, dormant_after_days=30, churned_after_days=60, repeat_min_purchases=3)

    assert lifecycle_stage(_ago(10), _facts(1, in_window=1), NOW, strict) == LifecycleStage.ACTIVE
    assert lifecycle_stage(_ago(100), _facts(1, in_window=2), NOW, strict) == LifecycleStage.ACTIVE
    assert lifecycle_stage(_ago(100), _facts(1, in_window=3), NOW, strict) == LifecycleStage.REPEAT
    assert lifecycle_stage(_ago(100), _facts(45), NOW, strict) == LifecycleStage.DORMANT
    assert lifecycle_stage(_ago(100), _facts(61), NOW, strict) == LifecycleStage.CHURNED
    with pytest.raises(ValueError, match="dormant_after_days < churned_after_days"):
        LifecyclePolicy(dormant_after_days=90, churned_after_days=90)


def test_purchase_facts_ignore_fully_returned_and_future_sales() -> None:
    purchases = [
        PurchaseRecord("S1", _ago(400), "ST1", 50_00),  # outside the 365-day window
        PurchaseRecord("S2", _ago(100), "ST1", 80_00),
        PurchaseRecord("S3", _ago(20), "ST2", 0),  # returned in full
        PurchaseRecord("S4", _ago(3), "ST2", 30_00),
        PurchaseRecord("S5", NOW + timedelta(hours=1), "ST2", 99_00),
    ]

    assert purchase_facts(purchases, NOW) == PurchaseFacts(
        first_purchase_at=_ago(400),
        last_purchase_at=_ago(3),
        purchase_count=3,
        purchases_in_window=2,
        spend_in_window_minor=110_00,
        lifetime_spend_minor=160_00,
    )
    assert purchase_facts([], NOW) == NO_PURCHASES


@pytest.mark.parametrize(
    ("days_since", "expected"), [(0, 5), (30, 5), (31, 4), (60, 4), (61, 3), (90, 3), (180, 2), (181, 1)]
)
def test_recency_scores_fall_as_days_since_the_last_purchase_pass_each_breakpoint(
    days_since: int, expected: int
) -> None:
    assert rfm_scores(_facts(days_since), NOW).recency == expected


@pytest.mark.parametrize(("purchases", "expected"), [(1, 1), (2, 2), (3, 2), (4, 3), (8, 4), (12, 5), (40, 5)])
def test_frequency_scores_rise_with_purchases_in_the_window(purchases: int, expected: int) -> None:
    assert rfm_scores(_facts(1, in_window=purchases), NOW).frequency == expected


@pytest.mark.parametrize(
    ("spend_minor", "expected"),
    [(0, 1), (499_99, 1), (500_00, 2), (2_000_00, 3), (5_000_00, 4), (9_999_99, 4), (10_000_00, 5)],
)
def test_monetary_scores_rise_with_spend_in_the_window(spend_minor: int, expected: int) -> None:
    facts = PurchaseFacts(_ago(5), _ago(5), 1, 1, spend_minor, spend_minor)
    assert rfm_scores(facts, NOW).monetary == expected


def test_rfm_breakpoints_are_configurable_and_a_non_buyer_scores_lowest() -> None:
    weekly = RfmBreakpoints(recency_days=(7, 14, 21, 28), frequency=(1, 2, 3, 4), monetary_minor=(1, 2, 3, 4))

    assert rfm_scores(_facts(8, in_window=3), NOW, weekly) == RfmScores(4, 4, 5)
    assert rfm_scores(NO_PURCHASES, NOW) == RfmScores(1, 1, 1)
    assert RfmScores(5, 4, 5).code == "545"
    with pytest.raises(ValueError, match="four strictly rising"):
        RfmBreakpoints(frequency=(1, 1, 2, 3))


PURCHASES = [
    PurchaseRecord("S1", datetime(2026, 11, 1, 11, 5, tzinfo=UTC), "ST2", 10_00, ("dairy", "dairy", "bakery")),
    PurchaseRecord("S2", datetime(2026, 11, 2, 11, 40, tzinfo=UTC), "ST1", 10_00, ("bakery",)),
    PurchaseRecord("S3", datetime(2026, 11, 3, 2, 15, tzinfo=UTC), "ST1", 10_00, ("fruit", "dairy")),
    PurchaseRecord("S4", datetime(2026, 11, 4, 2, 30, tzinfo=UTC), "ST2", 10_00, ("fruit",)),
    PurchaseRecord("S5", datetime(2026, 11, 5, 2, 45, tzinfo=UTC), "ST3", 0, ("toys",)),  # returned in full
]


def test_favourite_categories_count_purchases_and_break_ties_by_name() -> None:
    # dairy, bakery and fruit each appear in two purchases; S1's two dairy lines count once.
    assert favourite_categories(PURCHASES, top_n=2) == [Favourite("bakery", 2), Favourite("dairy", 2)]
    assert favourite_categories(PURCHASES, top_n=10) == [
        Favourite("bakery", 2),
        Favourite("dairy", 2),
        Favourite("fruit", 2),
    ]
    assert favourite_categories([], top_n=3) == []


def test_favourite_stores_rank_by_purchases() -> None:
    assert favourite_stores(PURCHASES) == [Favourite("ST1", 2), Favourite("ST2", 2)]
    assert favourite_stores(PURCHASES, top_n=1) == [Favourite("ST1", 2)]


def test_favourite_hours_are_in_the_given_time_zone() -> None:
    assert favourite_hours(PURCHASES) == [Favourite(2, 2), Favourite(11, 2)]
    # 02:xx UTC is 10:xx in Shanghai, 11:xx UTC is 19:xx.
    assert favourite_hours(PURCHASES, tz=ZoneInfo("Asia/Shanghai")) == [Favourite(10, 2), Favourite(19, 2)]
    naive = [PurchaseRecord("S9", datetime(2026, 11, 1, 9, 0), "ST1", 10_00)]
    with pytest.raises(ValueError, match="naive"):
        favourite_hours(naive, tz=ZoneInfo("Asia/Shanghai"))


def test_churn_risk_rises_with_idle_days_at_the_lifecycle_thresholds() -> None:
    policy = LifecyclePolicy(dormant_after_days=60, churned_after_days=120)
    risks = [churn_risk(timedelta(days=days), policy) for days in (0, 30, 31, 60, 61, 120, 121)]
    assert risks == [
        ChurnRisk.LOW,
        ChurnRisk.LOW,
        ChurnRisk.MEDIUM,
        ChurnRisk.MEDIUM,
        ChurnRisk.HIGH,
        ChurnRisk.HIGH,
        ChurnRisk.LOST,
    ]
    # A dormant threshold under 30 days still leaves a medium band.
    short = LifecyclePolicy(new_days=5, dormant_after_days=10, churned_after_days=20)
    assert [churn_risk(timedelta(days=d), short) for d in (9, 10, 11)] == [
        ChurnRisk.LOW,
        ChurnRisk.MEDIUM,
        ChurnRisk.HIGH,
    ]
