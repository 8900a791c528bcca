"""Money as whole fen, parsed from and formatted to decimal strings without ever touching float.

Rules
-----
* An amount is an ``int`` of minor units (fen). Computations that may produce a fraction
  (a percentage off, a weighed quantity) run in :class:`~decimal.Decimal` and come back to
  fen through :func:`round_half_up_fen`, the one rounding rule for computed money.
* :func:`parse_price` accepts only the plain form a person types on a price form:
  ``"12"``, ``"12.5"``, ``"12.50"``, ``"0"``. It refuses signs, exponents, spaces, NaN or
  Infinity, more than two decimals (we never round a price someone typed) and more than 12
  integer digits. Each refusal is an :class:`InvalidArgument` naming the field.
* :func:`parse_percent` accepts a percentage strictly between 0 and 100 with at most two
  decimals (``"15"``, ``"12.5"``); 0 % and 100 % off are not discounts we print on a label.
* :func:`validate_currency` accepts ISO 4217 codes as three upper-case ASCII letters.

API
---
* ``parse_price(text, *, field) -> int`` and ``format_fen(fen) -> str`` (``1250`` → ``"12.50"``).
* ``parse_percent(text, field) -> Decimal``
* ``validate_currency(code, *, field="currency") -> str``; ``DEFAULT_CURRENCY = "CNY"``.
* ``validate_fen(value, *, field) -> int``: a stored or computed amount is an ``int >= 0``.
* ``round_half_up_fen(amount) -> int``: a Decimal amount of fen, half-up to the whole fen.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from servicekit.errors import InvalidArgument

DEFAULT_CURRENCY = "CNY"
MAX_INTEGER_DIGITS = 12
# ASCII only: ``\d`` would also accept Arabic-Indic or full-width digits.
_PRICE = re.compile(r"([0-9]+)(?:\.([0-9]{1,2}))?", re.ASCII)
_PERCENT = re.compile(r"([0-9]{1,3})(?:\.([0-9]{1,2}))?", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)
_ONE_FEN = Decimal(1)


def parse_price(text: str, *, field: str) -> int:
    """A typed decimal yuan amount (``"12.5"``) as fen (``1250``); refuses anything ambiguous."""
    if not isinstance(text, str):
        raise InvalidArgument(f"{field} must be a decimal string such as 12.50", details={"field": field})
    if not text:
        raise InvalidArgument(f"{field} is empty; expected a decimal amount such as 12.50", details={"field": field})
    match = _PRICE.fullmatch(text)
    if match is None:
        raise InvalidArgument(
            f"{field} {text!r} is not a plain non-negative amount such as 12.50 "
            "(no sign, spaces, exponent or more than 2 decimals)",
            details={"field": field, "value": text},
        )
    integer, fraction = match.group(1), match.group(2) or ""
    if len(integer) > MAX_INTEGER_DIGITS:
        raise InvalidArgument(
            f"{field} {text!r} has more than {MAX_INTEGER_DIGITS} integer digits",
            details={"field": field, "value": text},
        )
    return int(integer) * 100 + int(fraction.ljust(2, "0"))


def format_fen(fen: int) -> str:
    """Fen as a yuan string with exactly two decimals (``1250`` → ``"12.50"``, ``-5`` → ``"-0.05"``)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def parse_percent(text: str, field: str) -> Decimal:
    """A percentage strictly between 0 and 100 with at most two decimals (``"12.5"`` → ``Decimal("12.5")``)."""
    if not isinstance(text, str) or not text:
        raise InvalidArgument(f"{field} must be a percentage such as 15 or 12.5", details={"field": field})
    match = _PERCENT.fullmatch(text)
    if match is None:
        raise InvalidArgument(
            f"{field} {text!r} is not a plain percentage such as 15 or 12.5 (at most 2 decimals)",
            details={"field": field, "value": text},
        )
    percent = Decimal(text)
    if not Decimal(0) < percent < Decimal(100):
        raise InvalidArgument(
            f"{field} {text!r} must be above 0 and below 100", details={"field": field, "value": text}
        )
    return percent


def validate_currency(code: str, *, field: str = "currency") -> str:
    """An ISO 4217 code, three upper-case letters (``"CNY"``); returned unchanged."""
    if not isinstance(code, str) or _CURRENCY.fullmatch(code) is None:
        raise InvalidArgument(
            f"{field} {code!r} is not an ISO 4217 code of three upper-case letters such as CNY",
            details={"field": field, "value": str(code)},
        )
    return code


def validate_fen(value: int, *, field: str) -> int:
    """An amount of fen must be a whole ``int`` (not a bool, float or Decimal) and not negative."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{field} must be a whole number of fen", details={"field": field})
    if value < 0:
        raise InvalidArgument(f"{field} must not be negative (got {value} fen)", details={"field": field})
    return value


def round_half_up_fen(amount: Decimal) -> int:
    """A computed amount of fen rounded half-up to the whole fen (``Decimal("0.5")`` → ``1``)."""
    return int(amount.quantize(_ONE_FEN, rounding=ROUND_HALF_UP))
