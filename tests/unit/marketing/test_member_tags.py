"""Engagement by the member's own rhythm; top categories and preferred store from what they did."""

from services.marketing.domain.member_tags import (
    Engagement,
    engagement,
    expected_gap_days,
    member_tags,
)


def test_a_new_member_with_one_purchase_is_new_and_one_without_any_for_a_year_is_lost() -> None:
    assert engagement(days_since_registration=5, purchase_days_ago=[]) is Engagement.NEW
    assert engagement(days_since_registration=5, purchase_days_ago=[2]) is Engagement.NEW
    assert engagement(days_since_registration=200, purchase_days_ago=[]) is Engagement.SLEEPING
    assert engagement(days_since_registration=400, purchase_days_ago=[]) is Engagement.LOST
    assert engagement(days_since_registration=800, purchase_days_ago=[370, 500]) is Engagement.LOST


def test_at_risk_is_judged_by_the_members_own_rhythm() -> None:
    every_three_days = [21, 24, 27, 30, 33, 36]
    assert engagement(days_since_registration=300, purchase_days_ago=every_three_days) is Engagement.AT_RISK
    every_two_months = [49, 109, 169, 229]
    assert engagement(days_since_registration=300, purchase_days_ago=every_two_months) is Engagement.ACTIVE
    assert engagement(days_since_registration=300, purchase_days_ago=[130, 190, 250]) is Engagement.SLEEPING


def test_without_a_rhythm_yet_the_fixed_active_window_applies_and_the_churn_model_can_flag_risk() -> None:
    assert engagement(days_since_registration=300, purchase_days_ago=[40, 200]) is Engagement.ACTIVE
    assert engagement(days_since_registration=300, purchase_days_ago=[70, 200]) is Engagement.AT_RISK
    assert engagement(days_since_registration=300, purchase_days_ago=[10, 200], churn_risk=0.9) is Engagement.AT_RISK


def test_the_expected_gap_is_the_median_so_one_burst_does_not_change_the_rhythm() -> None:
    assert expected_gap_days([0, 30, 31, 32, 62, 92]) == 30.0
    assert expected_gap_days([0, 30]) is None


def test_tags_name_the_top_categories_by_spend_and_the_most_visited_store() -> None:
    tags = member_tags(
        days_since_registration=100,
        purchase_days_ago=[3, 10, 17],
        spend_by_category={"dairy": 9_000, "fruit": 12_000, "baby": 0, "snacks": 9_000, "grain": 100},
        visits_by_store={"S2": 3, "S1": 5},
    )
    assert tags.engagement is Engagement.ACTIVE
    assert tags.top_categories == ("fruit", "dairy", "snacks")
    assert tags.preferred_store == "S1"
    assert (
        member_tags(
            days_since_registration=1, purchase_days_ago=[], spend_by_category={}, visits_by_store={}
        ).preferred_store
        is None
    )
