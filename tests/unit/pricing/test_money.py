"""Typed prices to fen and back, percentages and currency codes; never a float in between."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit.errors import InvalidArgument
from services.pricing.domain.money import (
    format_fen,
    parse_percent,
    parse_price,
    round_half_up_fen,
    validate_currency,
    validate_fen,
)


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("0", 0),
        ("12", 1200),
        ("12.5", 1250),
        ("12.50", 1250),
        ("0.01", 1),
        ("0.1", 10),
        ("007.05", 705),
        ("999999999999.99", 99_999_999_999_999),
    ],
)
def test_plain_amounts_parse_to_fen(text: str, fen: int) -> None:
    assert parse_price(text, field="price") == fen


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("-1", id="negative"),
        pytest.param("+1", id="plus sign"),
        pytest.param("12.345", id="three decimals"),
        pytest.param("1e3", id="exponent"),
        pytest.param("1E3", id="upper-case exponent"),
        pytest.param(" 12", id="leading space"),
        pytest.param("12 ", id="trailing space"),
        pytest.param("12\n", id="trailing newline"),
        pytest.param("1 000", id="inner space"),
        pytest.param("1,000.00", id="thousands separator"),
        pytest.param("12,50", id="decimal comma"),
        pytest.param("NaN", id="nan"),
        pytest.param("Infinity", id="infinity"),
        pytest.param("12.", id="trailing dot"),
        pytest.param(".5", id="leading dot"),
        pytest.param("1234567890123", id="13 integer digits"),
        pytest.param("１２", id="full-width digits"),
        pytest.param("¥12", id="currency sign"),
    ],
)
def test_anything_else_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^promo_price ") as raised:
        parse_price(text, field="promo_price")
    assert raised.value.details["field"] == "promo_price"


@given(st.integers(0, 10**14 - 1))
def test_formatted_fen_parse_back(fen: int) -> None:
    assert parse_price(format_fen(fen), field="price") == fen


@given(st.from_regex(r"[0-9]{1,12}(\.[0-9]{1,2})?", fullmatch=True))
def test_parsed_text_formats_to_its_two_decimal_form(text: str) -> None:
    assert format_fen(parse_price(text, field="price")) == f"{Decimal(text):.2f}"


@given(st.text(max_size=20))
def test_arbitrary_text_parses_or_is_invalid_never_crashes(text: str) -> None:
    try:
        fen = parse_price(text, field="price")
    except InvalidArgument:
        return
    assert fen >= 0


@pytest.mark.parametrize(
    ("fen", "text"), [(0, "0.00"), (5, "0.05"), (1250, "12.50"), (100000, "1000.00"), (-5, "-0.05")]
)
def test_format_fen(fen: int, text: str) -> None:
    assert format_fen(fen) == text


@pytest.mark.parametrize(
    ("text", "percent"),
    [("15", Decimal(15)), ("12.5", Decimal("12.5")), ("0.01", Decimal("0.01")), ("99.99", Decimal("99.99"))],
)
def test_percentages_parse_to_decimal(text: str, percent: Decimal) -> None:
    assert parse_percent(text, "discount") == percent


@pytest.mark.parametrize("text", ["0", "0.00", "100", "100.00", "150", "-5", "12.345", "1e1", "", " 5", "NaN", "5%"])
def test_percentages_outside_0_100_or_malformed_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^discount "):
        parse_percent(text, "discount")


@pytest.mark.parametrize("code", ["CNY", "HKD", "USD"])
def test_currency_codes(code: str) -> None:
    assert validate_currency(code) == code


@pytest.mark.parametrize("code", ["cny", "CN", "CNYY", "RMB ", "", "¥", "C1Y"])
def test_bad_currency_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidArgument, match="ISO 4217"):
        validate_currency(code)


@pytest.mark.parametrize(
    ("amount", "fen"),
    [(Decimal("904.5"), 905), (Decimal("904.49"), 904), (Decimal("0.5"), 1), (Decimal("1599.2"), 1599)],
)
def test_computed_money_rounds_half_up(amount: Decimal, fen: int) -> None:
    assert round_half_up_fen(amount) == fen


@pytest.mark.parametrize("value", [-1, 1.0, True, Decimal(1)])
def test_fen_must_be_a_non_negative_int(value: Any) -> None:  # deliberately not always an int
    with pytest.raises(InvalidArgument, match="cost_fen"):
        validate_fen(value, field="cost_fen")
