"""Overlapping rules with the same SKU, kind, scope, currency and priority are refused."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicekit.errors import InvalidArgument
from services.pricing.domain.promotions import FixedPrice, PercentOff
from services.pricing.domain.rules import OverlappingRules, PriceRule, Scope, check_conflicts, find_conflicts
from tests.unit.pricing import DAY, NOW, promotion, regular

SPRING: dict[str, Any] = {"valid_from": NOW, "valid_to": NOW + 14 * DAY}


def test_overlapping_promotions_with_the_same_priority_are_refused_naming_both() -> None:
    existing = [promotion("spring-sale", PercentOff(Decimal(20)), **SPRING)]
    new = [promotion("flash", FixedPrice(500), valid_from=NOW + 7 * DAY, valid_to=NOW + 8 * DAY)]
    with pytest.raises(OverlappingRules, match="overlapping promotions with the same priority") as raised:
        check_conflicts(existing, new)
    assert isinstance(raised.value, InvalidArgument)
    assert "spring-sale [2026-03-14T12:00:00+00:00, 2026-03-28T12:00:00+00:00)" in raised.value.message
    assert "flash [2026-03-21T12:00:00+00:00, 2026-03-22T12:00:00+00:00)" in raised.value.message
    assert raised.value.details["conflicts"] == [
        {
            "rule_id": "spring-sale",
            "window": "[2026-03-14T12:00:00+00:00, 2026-03-28T12:00:00+00:00)",
            "other_rule_id": "flash",
            "other_window": "[2026-03-21T12:00:00+00:00, 2026-03-22T12:00:00+00:00)",
        }
    ]


def test_overlapping_regular_prices_are_refused_too() -> None:
    with pytest.raises(OverlappingRules, match="overlapping regular prices with the same priority: base"):
        check_conflicts([regular("base", 1000)], [regular("base-2", 1100, valid_from=NOW)])


def test_overlaps_among_the_new_rules_themselves_are_refused() -> None:
    new = [
        promotion("a", PercentOff(Decimal(10))),
        promotion("b", PercentOff(Decimal(20)), valid_to=NOW),
    ]
    with pytest.raises(OverlappingRules, match=r"b \[…, 2026-03-14T12:00:00\+00:00\) and a \[…, …\)"):
        check_conflicts([], new)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(promotion("x", FixedPrice(500), priority=1, **SPRING), id="different priority"),
        pytest.param(promotion("x", FixedPrice(500), Scope(store_id="S001"), **SPRING), id="different scope"),
        pytest.param(promotion("x", FixedPrice(500), currency="HKD", **SPRING), id="different currency"),
        pytest.param(regular("x", 900, **SPRING), id="different kind"),
        pytest.param(
            promotion("x", FixedPrice(500), valid_from=NOW + 14 * DAY, valid_to=NOW + 20 * DAY), id="adjacent after"
        ),
        pytest.param(promotion("x", FixedPrice(500), valid_to=NOW), id="open start, adjacent before"),
        pytest.param(
            PriceRule(rule_id="x", sku="SKU-OTHER", kind=promotion("y", FixedPrice(1)).kind, mechanic=FixedPrice(1)),
            id="different SKU",
        ),
    ],
)
def test_rules_that_differ_in_a_precedence_step_or_do_not_overlap_are_accepted(other: PriceRule) -> None:
    check_conflicts([promotion("spring-sale", PercentOff(Decimal(20)), **SPRING)], [other])
    check_conflicts([other], [promotion("spring-sale", PercentOff(Decimal(20)), **SPRING)])


def test_overlaps_among_existing_rules_alone_are_not_reported() -> None:
    existing = [promotion("a", PercentOff(Decimal(10))), promotion("b", PercentOff(Decimal(20)))]
    check_conflicts(existing, [promotion("c", FixedPrice(1), priority=9)])


def test_a_new_version_of_a_rule_replaces_the_stored_one() -> None:
    stored = promotion("spring-sale", PercentOff(Decimal(20)), **SPRING)
    edited = promotion("spring-sale", PercentOff(Decimal(25)), valid_from=NOW, valid_to=NOW + 21 * DAY)
    check_conflicts([stored], [edited])


def test_the_same_rule_id_twice_in_one_change_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="appears twice"):
        check_conflicts([], [regular("a", 100, valid_to=NOW), regular("a", 100, valid_from=NOW)])


def test_every_overlap_is_listed_in_the_details() -> None:
    existing = [promotion("long", PercentOff(Decimal(10)))]
    new = [
        promotion("w1", FixedPrice(1), valid_from=NOW, valid_to=NOW + DAY),
        promotion("w2", FixedPrice(1), valid_from=NOW + 2 * DAY, valid_to=NOW + 3 * DAY),
    ]
    with pytest.raises(OverlappingRules, match=r"and 1 more overlaps") as raised:
        check_conflicts(existing, new)
    conflicts = raised.value.details["conflicts"]
    assert isinstance(conflicts, list)
    assert {(c["rule_id"], c["other_rule_id"]) for c in conflicts} == {
        ("long", "w1"),
        ("long", "w2"),
    }


@st.composite
def windowed_rules(draw: Callable[..., Any], prefix: str) -> list[PriceRule]:
    rules = []
    for index in range(draw(st.integers(0, 6))):
        start = draw(st.sampled_from([None, 0, 1, 2, 3]))
        end = draw(st.sampled_from([None, 1, 2, 3, 4]))
        if start is not None and end is not None and end <= start:
            end = None
        rules.append(
            promotion(
                f"{prefix}{index}",
                FixedPrice(100),
                valid_from=None if start is None else NOW + start * DAY,
                valid_to=None if end is None else NOW + end * DAY,
                priority=draw(st.integers(0, 1)),
            )
        )
    return rules


def _overlap(a: PriceRule, b: PriceRule) -> bool:
    starts_before_b_ends = a.valid_from is None or b.valid_to is None or a.valid_from < b.valid_to
    starts_before_a_ends = b.valid_from is None or a.valid_to is None or b.valid_from < a.valid_to
    return a.priority == b.priority and starts_before_b_ends and starts_before_a_ends


@settings(max_examples=200, deadline=None)
@given(existing=windowed_rules("old"), new=windowed_rules("new"))
def test_conflicts_are_found_exactly_when_some_pair_overlaps(existing: list[PriceRule], new: list[PriceRule]) -> None:
    pairs = itertools.chain(itertools.product(new, existing), itertools.combinations(new, 2))
    expected = any(_overlap(a, b) for a, b in pairs)
    found = find_conflicts(existing, new)
    assert bool(found) is expected
    for conflict in found:
        assert _overlap(conflict.first, conflict.second)
        assert conflict.first.rule_id.startswith("new") or conflict.second.rule_id.startswith("new")
