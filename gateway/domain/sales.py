"""Sales as a POS terminal submits them: the rules a sale must meet to enter the journal.

Plain Python: amounts are ``Decimal`` (never float), converted to integer minor units
(fen) for the journal; member phone and card numbers leave here only as a keyed hash
(:mod:`servicekit.identity_lookup`, the contract with the member service).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# A sale's member reference is the lookup hash the member service stores: one implementation
# for both sides (servicekit.identity_lookup), so a sale always finds its member.
from servicekit.identity_lookup import member_identity_hash as member_identity_hash

MINOR_UNITS_PER_UNIT = 100
MAX_QUANTITY_PLACES = 3  # grams for goods sold by the kilogram
# The most units (or kg) one line may carry: what inventory moves stock by in one movement.
MAX_LINE_QUANTITY = Decimal(100_000)
MAX_MONEY_PLACES = 2
# How long the SALES journal keeps a sale: the stream's max_age, and the oldest a sale may
# be when it enters (SALE_MAX_AGE_SECONDS defaults to it and may only be shorter). A sale
# older than the journal holds could no longer be told from a replay of one already applied.
SALES_JOURNAL_RETENTION = timedelta(days=90)
# The most sales one POS batch carries (MAX_SALES_PER_BATCH may only lower it): one batch is
# answered only after every sale in it is journaled, which bounds how long a till waits.
MAX_SALES_PER_BATCH = 500


@dataclass(frozen=True)
class SaleRejection:
    """Why one sale was refused: a stable machine-readable ``reason`` and the part at fault."""

    reason: str
    detail: str
    location: str


def parse_amount(text: str) -> Decimal:
    """A decimal string as a Decimal; ValueError for anything else (no exponents, no NaN)."""
    if not re.fullmatch(r"-?\d{1,12}(\.\d{1,12})?", text):
        raise ValueError(f"{text!r} is not a decimal number like '12.50'")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None


def decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def to_minor_units(amount: Decimal) -> int:
    """Exact minor units of an amount with at most two decimal places."""
    return int(amount * MINOR_UNITS_PER_UNIT)


def line_total_minor(quantity: Decimal, unit_price: Decimal, discount: Decimal) -> int:
    """quantity × unit_price − discount, rounded half-up to the fen."""
    gross = (quantity * unit_price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return to_minor_units(gross - discount)


def check_occurred_at(
    occurred_at: datetime, now: datetime, tolerance: timedelta, max_age: timedelta
) -> SaleRejection | None:
    """A sale happened between ``max_age`` ago and ``tolerance`` ahead of the server clock."""
    if occurred_at > now + tolerance:
        return SaleRejection(
            "occurred-in-future",
            f"occurred_at is more than {int(tolerance.total_seconds())} s ahead of the server clock; "
            "check the till's clock",
            "occurred_at",
        )
    if occurred_at < now - max_age:
        return SaleRejection(
            "occurred-too-long-ago",
            f"occurred_at is more than {int(max_age.total_seconds())} s before the server clock, older than the "
            "sales journal accepts; check the till's clock, or load old sales as sales history",
            "occurred_at",
        )
    return None


def check_quantity(text: str, location: str) -> SaleRejection | None:
    try:
        quantity = parse_amount(text)
    except ValueError as exc:
        return SaleRejection("invalid-quantity", str(exc), location)
    if quantity <= 0:
        return SaleRejection("non-positive-quantity", "quantities are positive; a return says so by its kind", location)
    if decimal_places(quantity) > MAX_QUANTITY_PLACES:
        return SaleRejection("invalid-quantity", f"at most {MAX_QUANTITY_PLACES} decimal places", location)
    if quantity > MAX_LINE_QUANTITY:
        return SaleRejection("invalid-quantity", f"at most {MAX_LINE_QUANTITY} units per line", location)
    return None


def check_money(text: str, location: str) -> SaleRejection | None:
    try:
        amount = parse_amount(text)
    except ValueError as exc:
        return SaleRejection("invalid-amount", str(exc), location)
    if amount < 0:
        return SaleRejection("invalid-amount", "amounts are never negative", location)
    if decimal_places(amount) > MAX_MONEY_PLACES:
        return SaleRejection("invalid-amount", f"at most {MAX_MONEY_PLACES} decimal places (fen)", location)
    return None
