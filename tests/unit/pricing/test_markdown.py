"""Markdown suggestions: the step table, retail rounding down, and the minimum-margin floor."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from servicekit.errors import InvalidArgument
from services.pricing.domain.markdown import MarkdownSuggestion, round_down_retail, suggest_markdown


def suggest(**changes: Any) -> MarkdownSuggestion | None:
    values: dict[str, Any] = {
        "sku": "SKU-1001",
        "store_id": "S001",
        "regular_price_fen": 1000,
        "cost_fen": 400,
        "days_of_cover": Decimal(30),
        "overstock_threshold_days": 30,
        "min_margin": Decimal("0.2"),
    }
    values.update(changes)
    return suggest_markdown(**values)


@pytest.mark.parametrize(
    ("days_of_cover", "step", "price"),
    [
        pytest.param("29.9", None, None, id="under the threshold: no markdown"),
        pytest.param("30", Decimal(10), 900, id="1x threshold: 10 %"),
        pytest.param("59", Decimal(10), 900, id="just under 2x: 10 %"),
        pytest.param("60", Decimal(20), 800, id="2x threshold: 20 %"),
        pytest.param("90", Decimal(30), 700, id="3x threshold: 30 %"),
        pytest.param("400", Decimal(30), 700, id="far over: still 30 %"),
        pytest.param("Infinity", Decimal(30), 700, id="nothing sells: 30 %"),
    ],
)
def test_step_table(days_of_cover: str, step: Decimal | None, price: int | None) -> None:
    suggestion = suggest(days_of_cover=Decimal(days_of_cover))
    if step is None:
        assert suggestion is None
        return
    assert suggestion is not None
    assert suggestion.step_percent == step
    assert suggestion.suggested_price_fen == price
    assert suggestion.percent == step
    assert not suggestion.limited_by_floor


@pytest.mark.parametrize(
    ("regular", "step_cover", "price", "percent"),
    [
        pytest.param(999, "30", 890, Decimal("10.91"), id="8.991 rounds down to 8.90"),
        pytest.param(1290, "60", 1030, Decimal("20.16"), id="10.32 rounds down to 10.30"),
        pytest.param(9, "30", 8, Decimal("11.11"), id="under 0.10 yuan rounds to the fen"),
    ],
)
def test_suggested_price_rounds_down_to_a_retail_ending(
    regular: int, step_cover: str, price: int, percent: Decimal
) -> None:
    suggestion = suggest(regular_price_fen=regular, cost_fen=0, days_of_cover=Decimal(step_cover))
    assert suggestion is not None
    assert suggestion.suggested_price_fen == price
    assert suggestion.percent == percent


def test_round_down_retail_never_goes_below_one_fen() -> None:
    assert round_down_retail(1) == 1
    assert round_down_retail(10) == 10
    assert round_down_retail(19) == 10


def test_the_floor_holds_the_markdown_back_and_keeps_a_retail_ending() -> None:
    # cost 6.00 at 20 % minimum margin: floor 7.50; 30 % off 10.00 would be 7.00.
    suggestion = suggest(cost_fen=600, days_of_cover=Decimal(90))
    assert suggestion is not None
    assert suggestion.floor_price_fen == 750
    assert suggestion.suggested_price_fen == 750
    assert suggestion.limited_by_floor
    assert suggestion.percent == Decimal(25)
    assert "floor 7.50" in suggestion.reason


def test_an_odd_floor_is_rounded_up_to_the_next_ten_fen() -> None:
    # cost 6.01 / 0.8 = 7.5125 → floor 7.52 → suggested 7.60.
    suggestion = suggest(cost_fen=601, days_of_cover=Decimal(90))
    assert suggestion is not None
    assert suggestion.floor_price_fen == 752
    assert suggestion.suggested_price_fen == 760


def test_the_exact_floor_when_rounding_it_up_would_leave_no_markdown() -> None:
    # regular 9.99; floor 9.93 rounded up is 10.00, not a markdown; 9.93 is.
    suggestion = suggest(regular_price_fen=999, cost_fen=794, days_of_cover=Decimal(90))
    assert suggestion is not None
    assert suggestion.floor_price_fen == 993
    assert suggestion.suggested_price_fen == 993


def test_no_suggestion_when_the_floor_leaves_no_markdown() -> None:
    assert suggest(cost_fen=800, days_of_cover=Decimal(90)) is None  # floor 10.00 = regular
    assert suggest(cost_fen=1200, days_of_cover=Decimal(90)) is None  # already below the floor


def test_reason_explains_the_step() -> None:
    suggestion = suggest(days_of_cover=Decimal(75))
    assert suggestion is not None
    assert suggestion.reason == "75 days of cover is 2.5× the overstock threshold of 30 days: step 20 % off 10.00"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"days_of_cover": Decimal(-1)}, "days_of_cover"),
        ({"days_of_cover": Decimal("NaN")}, "days_of_cover"),
        ({"days_of_cover": 30.0}, "days_of_cover"),
        ({"overstock_threshold_days": 0}, "overstock_threshold_days"),
        ({"min_margin": Decimal(1)}, "min_margin"),
        ({"regular_price_fen": -1}, "regular_price_fen"),
        ({"sku": ""}, "sku"),
    ],
)
def test_bad_inputs_are_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        suggest(**changes)
    assert raised.value.details["field"] == field
