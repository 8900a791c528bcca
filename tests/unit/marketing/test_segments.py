"""Segment rules are checked on save, and a bad one is refused naming where it is wrong."""

import json
from typing import Any

import pytest

from services.marketing.domain.segments import (
    MAX_CONDITIONS,
    AllOf,
    AnyOf,
    Condition,
    InvalidRule,
    Not,
    conditions,
    parse_rule,
)

AT_RISK_DAIRY_BUYERS = {
    "all": [
        {"attribute": "engagement", "op": "in", "value": ["sleeping", "at_risk"]},
        {"attribute": "consent", "channel": "app_push", "op": "=", "value": True},
        {
            "any": [
                {"attribute": "category_bought", "window_days": 180, "op": "in", "value": ["dairy"]},
                {"attribute": "spend_fen", "window_days": 365, "op": ">=", "value": 100_000},
            ]
        },
        {"not": {"attribute": "churn_risk", "op": "<", "value": 0.7}},
        {"attribute": "rfm_cell", "op": "in", "value": ["155", "255"]},
    ]
}


def test_a_valid_rule_parses_into_its_tree_and_back_to_the_same_json() -> None:
    rule = parse_rule(AT_RISK_DAIRY_BUYERS)
    assert isinstance(rule, AllOf)
    assert isinstance(rule.rules[2], AnyOf)
    assert isinstance(rule.rules[3], Not)
    assert rule.rules[0] == Condition("engagement", "in", ("at_risk", "sleeping"))
    assert [c.attribute for c in conditions(rule)] == [
        "engagement",
        "consent",
        "category_bought",
        "spend_fen",
        "churn_risk",
        "rfm_cell",
    ]
    assert parse_rule(json.loads(json.dumps(rule.to_json()))) == rule


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ({"attribute": "shoe_size", "op": "=", "value": 42}, "attribute"),
        ({"attribute": "purchases", "op": "~", "value": 2, "window_days": 30}, "op"),
        ({"attribute": "purchases", "op": ">=", "value": 2}, "window_days"),
        ({"attribute": "purchases", "op": ">=", "value": 2, "window_days": 0}, "window_days"),
        ({"attribute": "purchases", "op": ">=", "value": -1, "window_days": 30}, "value"),
        ({"attribute": "purchases", "op": ">=", "value": True, "window_days": 30}, "value"),
        ({"attribute": "spend_fen", "op": ">=", "value": 10.5, "window_days": 30}, "value"),
        ({"attribute": "churn_risk", "op": ">=", "value": 1.5}, "value"),
        ({"attribute": "lifecycle_stage", "op": "in", "value": ["at_risk"]}, "value"),
        ({"attribute": "engagement", "op": "in", "value": ["dormant"]}, "value"),
        ({"attribute": "lifecycle_stage", "op": "in", "value": []}, "value"),
        ({"attribute": "rfm_cell", "op": "in", "value": ["561"]}, "value"),
        ({"attribute": "consent", "op": "=", "value": True}, "channel"),
        ({"attribute": "tier", "op": "in", "value": ["gold"], "window_days": 30}, "window_days"),
        ({"all": []}, "all"),
        ({"all": [{"attribute": "tier", "op": "in", "value": ["gold"]}, {"xor": []}]}, "all[1].xor"),
        ({"any": [{"not": {"attribute": "tier", "op": ">=", "value": ["gold"]}}]}, "any[0].not.op"),
        ({"all": [], "any": []}, "rule"),
        ("tier = gold", "rule"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_path_of_what_is_wrong(node: Any, path: str) -> None:
    with pytest.raises(InvalidRule) as refused:
        parse_rule(node)
    assert refused.value.details == {"path": path}
    assert refused.value.reason == "invalid-segment-rule"


def test_rules_are_bounded_in_depth_and_size() -> None:
    deep: dict[str, Any] = {"attribute": "tier", "op": "in", "value": ["gold"]}
    for _ in range(9):
        deep = {"not": deep}
    with pytest.raises(InvalidRule, match="nest"):
        parse_rule(deep)
    wide = {"any": [{"attribute": "tier", "op": "in", "value": ["gold"]}] * (MAX_CONDITIONS + 1)}
    with pytest.raises(InvalidRule, match="at most"):
        parse_rule(wide)
