"""Guard rails on a price change: never below cost, never below the category's minimum margin.

Rules
-----
* ``margin = (price − cost) / price``. A price of 0 has no meaningful margin: :func:`margin`
  returns ``Decimal("-Infinity")`` when the item costs something (every sale loses all of the
  cost) and ``0`` when it costs nothing.
* :func:`check_guard_rails` returns the first rule a price breaks, or ``None``:

  ================== =============================================
  kind               when
  ================== =============================================
  below_cost         ``price < cost``
  below_min_margin   ``price >= cost`` but ``margin < min_margin``
  ================== =============================================

  A price equal to the cost is not below cost; it breaks the minimum margin whenever that is
  above 0. A free item that costs nothing breaks neither (its floor is 0).
* ``min_margin`` is a Decimal fraction in ``[0, 1)`` (``Decimal("0.15")`` for 15 %).
* The comparison is exact (fractions, not rounded decimals), and agrees with
  :func:`min_margin_floor_fen`: a price passes exactly when it is at or above the floor.

What the service does with a violation (refuse with ``FailedPrecondition`` unless the caller
gives an explicit override with a reason, and audit the override) is the service's business.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from servicekit.errors import InvalidArgument
from services.pricing.domain.money import format_fen, validate_fen

_PERCENT_PLACES = Decimal("0.01")


class GuardRailKind(enum.StrEnum):
    BELOW_COST = "below_cost"
    BELOW_MIN_MARGIN = "below_min_margin"


@dataclass(frozen=True, slots=True)
class GuardRailViolation:
    """A price that breaks a guard rail, with the numbers a reviewer needs to judge an override."""

    kind: GuardRailKind
    price_fen: int
    cost_fen: int
    margin: Decimal
    min_margin: Decimal
    floor_price_fen: int
    message: str


def validate_min_margin(min_margin: Decimal, *, field: str = "min_margin") -> Decimal:
    """A minimum margin is a finite Decimal fraction in [0, 1)."""
    if not isinstance(min_margin, Decimal) or not min_margin.is_finite() or not Decimal(0) <= min_margin < 1:
        raise InvalidArgument(
            f"{field} must be a Decimal fraction at least 0 and below 1 (0.15 for 15 %)", details={"field": field}
        )
    return min_margin


def margin(price_fen: int, cost_fen: int) -> Decimal:
    """``(price − cost) / price``; ``-Infinity`` for a free item that costs something, ``0`` if it costs nothing."""
    validate_fen(price_fen, field="price_fen")
    validate_fen(cost_fen, field="cost_fen")
    if price_fen == 0:
        return Decimal("-Infinity") if cost_fen > 0 else Decimal(0)
    return Decimal(price_fen - cost_fen) / Decimal(price_fen)


def min_margin_floor_fen(cost_fen: int, min_margin: Decimal) -> int:
    """The lowest price whose margin reaches ``min_margin``: ``cost / (1 − min_margin)`` rounded up to the fen."""
    validate_fen(cost_fen, field="cost_fen")
    validate_min_margin(min_margin)
    return math.ceil(Fraction(cost_fen) / (1 - Fraction(min_margin)))


def _percent_text(fraction: Decimal) -> str:
    if not fraction.is_finite():
        return "-∞ %"
    return f"{(fraction * 100).quantize(_PERCENT_PLACES)} %"


def check_guard_rails(price_fen: int, cost_fen: int, min_margin: Decimal) -> GuardRailViolation | None:
    """The guard rail ``price_fen`` breaks against ``cost_fen`` and ``min_margin``, or ``None``."""
    floor = min_margin_floor_fen(cost_fen, min_margin)
    validate_fen(price_fen, field="price_fen")
    actual = margin(price_fen, cost_fen)
    if price_fen < cost_fen:
        return GuardRailViolation(
            GuardRailKind.BELOW_COST,
            price_fen,
            cost_fen,
            actual,
            min_margin,
            floor,
            f"price {format_fen(price_fen)} is below cost {format_fen(cost_fen)}",
        )
    if price_fen < floor:
        return GuardRailViolation(
            GuardRailKind.BELOW_MIN_MARGIN,
            price_fen,
            cost_fen,
            actual,
            min_margin,
            floor,
            f"price {format_fen(price_fen)} leaves a margin of {_percent_text(actual)} on cost {format_fen(cost_fen)}, "
            f"below the minimum {_percent_text(min_margin)}; the lowest price allowed is {format_fen(floor)}",
        )
    return None
