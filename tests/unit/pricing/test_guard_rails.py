"""Guard rails: below cost, below the minimum margin, and the floor price that agrees with both."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit.errors import InvalidArgument
from services.pricing.domain.guard_rails import (
    GuardRailKind,
    check_guard_rails,
    margin,
    min_margin_floor_fen,
)


@pytest.mark.parametrize(
    ("price", "cost", "expected"),
    [
        (1000, 800, Decimal("0.2")),
        (1000, 1000, Decimal(0)),
        (800, 1000, Decimal("-0.25")),
        (1000, 0, Decimal(1)),
        (0, 0, Decimal(0)),
        (0, 500, Decimal("-Infinity")),
    ],
)
def test_margin(price: int, cost: int, expected: Decimal) -> None:
    assert margin(price, cost) == expected


@pytest.mark.parametrize(
    ("price", "cost", "min_margin", "kind"),
    [
        pytest.param(1000, 800, Decimal("0.20"), None, id="exactly the minimum margin"),
        pytest.param(999, 800, Decimal("0.20"), GuardRailKind.BELOW_MIN_MARGIN, id="one fen under the minimum"),
        pytest.param(800, 800, Decimal("0.20"), GuardRailKind.BELOW_MIN_MARGIN, id="at cost, positive minimum"),
        pytest.param(800, 800, Decimal(0), None, id="at cost, no minimum"),
        pytest.param(799, 800, Decimal(0), GuardRailKind.BELOW_COST, id="one fen below cost"),
        pytest.param(0, 800, Decimal("0.1"), GuardRailKind.BELOW_COST, id="free but costs something"),
        pytest.param(0, 0, Decimal("0.1"), None, id="free and costs nothing"),
    ],
)
def test_check_guard_rails(price: int, cost: int, min_margin: Decimal, kind: GuardRailKind | None) -> None:
    violation = check_guard_rails(price, cost, min_margin)
    assert (violation.kind if violation else None) == kind


def test_violation_messages_give_the_numbers() -> None:
    below_cost = check_guard_rails(750, 800, Decimal("0.2"))
    assert below_cost is not None
    assert below_cost.message == "price 7.50 is below cost 8.00"
    thin = check_guard_rails(900, 800, Decimal("0.2"))
    assert thin is not None
    assert thin.floor_price_fen == 1000
    assert thin.message == (
        "price 9.00 leaves a margin of 11.11 % on cost 8.00, below the minimum 20.00 %; "
        "the lowest price allowed is 10.00"
    )


def test_floor_rounds_up_to_the_fen() -> None:
    assert min_margin_floor_fen(700, Decimal("0.3")) == 1000
    assert min_margin_floor_fen(600, Decimal("0.3")) == 858  # 857.14… → 858
    assert min_margin_floor_fen(0, Decimal("0.5")) == 0


@given(
    price=st.integers(0, 10**9),
    cost=st.integers(0, 10**9),
    min_margin=st.integers(0, 9999).map(lambda basis_points: Decimal(basis_points) / 10000),
)
def test_a_price_passes_exactly_when_it_reaches_the_floor(price: int, cost: int, min_margin: Decimal) -> None:
    violation = check_guard_rails(price, cost, min_margin)
    assert (violation is None) is (price >= min_margin_floor_fen(cost, min_margin))
    if violation is None and price > 0:
        assert margin(price, cost) >= min_margin


@pytest.mark.parametrize("min_margin", [Decimal(-1), Decimal(1), Decimal("NaN"), 0.2])
def test_min_margin_must_be_a_fraction_below_one(min_margin: Any) -> None:  # a float among them, on purpose
    with pytest.raises(InvalidArgument, match="min_margin"):
        check_guard_rails(1000, 500, min_margin)
