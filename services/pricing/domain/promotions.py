"""Promotion mechanics: what a promotion does to the regular price that won (see :mod:`rules`
for which promotion wins).

Each mechanic applies only when it lowers what the buyer pays; otherwise the line keeps the
regular price and a note says why.

* ``FixedPrice``: the unit price becomes the fixed price if it is below the regular price.
* ``PercentOff``: unit price = regular × (100 − percent) / 100, half-up to the fen.
* ``MultiBuy(n, bundle)``: one unit still costs the regular price; each complete group of
  ``n`` whole units costs ``bundle``, the remainder the regular price. It does not apply
  below ``n`` units, to fractional quantities, to goods sold by weight (``weighed=True``,
  even at a whole 2.000 kg), or when ``bundle >= n × regular``.
* Line total: ``round_half_up(unit_price × quantity)``; with multi-buy, the sum above.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from servicekit.errors import InvalidArgument
from services.pricing.domain.money import format_fen, round_half_up_fen, validate_fen

_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class FixedPrice:
    """The promotion sets the unit price ("特价")."""

    price_fen: int

    def __post_init__(self) -> None:
        validate_fen(self.price_fen, field="mechanic.price_fen")

    def display_text(self) -> str:
        """The shelf-label badge; the label prints the price itself next to it."""
        return "特价"


@dataclass(frozen=True, slots=True)
class PercentOff:
    """A percentage off the regular price; 20 % off is "8折" on the label."""

    percent: Decimal

    def __post_init__(self) -> None:
        percent = self.percent
        if not isinstance(percent, Decimal) or not percent.is_finite():
            raise InvalidArgument("mechanic.percent must be a finite Decimal", details={"field": "mechanic.percent"})
        if not Decimal(0) < percent < _HUNDRED or (percent * 100) % 1 != 0:
            raise InvalidArgument(
                f"mechanic.percent {percent} must be above 0 and below 100 with at most 2 decimals",
                details={"field": "mechanic.percent"},
            )

    def display_text(self) -> str:
        """Chinese discount notation: the tenths still paid (15 % off → "8.5折", 20 % off → "8折")."""
        tenths_paid = (_HUNDRED - self.percent) / 10
        return f"{format(tenths_paid.normalize(), 'f')}折"

    def unit_price(self, regular_fen: int) -> int:
        """The regular price less the percentage, half-up to the fen."""
        return round_half_up_fen(Decimal(regular_fen) * (_HUNDRED - self.percent) / _HUNDRED)


@dataclass(frozen=True, slots=True)
class MultiBuy:
    """``quantity`` whole units for ``bundle_price_fen`` ("2件10.00元")."""

    quantity: int
    bundle_price_fen: int

    def __post_init__(self) -> None:
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity < 2:
            raise InvalidArgument(
                "mechanic.quantity of a multi-buy must be a whole number of at least 2",
                details={"field": "mechanic.quantity"},
            )
        validate_fen(self.bundle_price_fen, field="mechanic.bundle_price_fen")

    def display_text(self) -> str:
        """The shelf-label badge, e.g. "2件10.00元"."""
        return f"{self.quantity}件{format_fen(self.bundle_price_fen)}元"


Mechanic: TypeAlias = FixedPrice | PercentOff | MultiBuy


def apply_promotion(
    regular_fen: int, mechanic: Mechanic, quantity: Decimal, weighed: bool
) -> tuple[int, int, bool, str]:
    """(unit price, line total, applied, note) for the winning promotion on top of the regular price."""
    regular_total = round_half_up_fen(Decimal(regular_fen) * quantity)
    if isinstance(mechanic, FixedPrice):
        if mechanic.price_fen >= regular_fen:
            note = (
                f"fixed price {format_fen(mechanic.price_fen)} is not below the regular price {format_fen(regular_fen)}"
            )
            return regular_fen, regular_total, False, note
        return mechanic.price_fen, round_half_up_fen(Decimal(mechanic.price_fen) * quantity), True, ""
    if isinstance(mechanic, PercentOff):
        unit = mechanic.unit_price(regular_fen)
        if unit >= regular_fen:
            note = f"{mechanic.percent} % off {format_fen(regular_fen)} rounds back to the regular price"
            return regular_fen, regular_total, False, note
        return unit, round_half_up_fen(Decimal(unit) * quantity), True, ""
    if weighed or quantity % 1 != 0:
        return regular_fen, regular_total, False, "multi-buy applies to whole units only, not to weighed quantities"
    units = int(quantity)
    if mechanic.bundle_price_fen >= mechanic.quantity * regular_fen:
        note = (
            f"{mechanic.quantity} for {format_fen(mechanic.bundle_price_fen)} is not below "
            f"{mechanic.quantity} × the regular price {format_fen(regular_fen)}"
        )
        return regular_fen, regular_total, False, note
    if units < mechanic.quantity:
        return regular_fen, regular_total, False, f"multi-buy needs {mechanic.quantity} units, the line has {units}"
    bundles, rest = divmod(units, mechanic.quantity)
    return regular_fen, bundles * mechanic.bundle_price_fen + rest * regular_fen, True, ""
