"""Purchase orders: from a suggestion to goods on the shelf and a bill that matches them.

States (every transition is an event)::

    draft → approved → sent → confirmed → partially_received → received → closed
      ↘ cancelled (from draft, approved, sent or confirmed: nothing received yet)
    partially_received → closed (the rest will not come: a short delivery accepted)

Quantities per line (exact decimals, never floats — ERPNext #40340 accepted 100.002 against
100 ordered with a 0% allowance through float tolerance):

* ``delivered = accepted + rejected`` over every receipt; a receipt that takes ``delivered``
  above ``ordered × (1 + over-delivery allowance)`` is refused (:class:`OverReceipt`) unless
  the receiver may exceed it;
* ``billable = accepted − returned (+ rejected when the contract bills rejects) − billed``
  (returns to vendor reduce what may be billed: Odoo #13974, #13299);
* an invoice line is matched (three-way: PO price × received quantity against the invoice)
  only when its quantity is at most what is billable and its unit price within the price
  tolerance of the PO's (Odoo PR #250925 matched a bill for 2 against 1 received); otherwise
  it is held with the reason, not paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from servicekit.errors import FailedPrecondition, InvalidArgument
from services.supply.domain.settlement import round_half_up_fen


class PoStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SENT = "sent"
    CONFIRMED = "confirmed"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"
    CLOSED = "closed"
    CANCELLED = "cancelled"


TRANSITIONS: dict[PoStatus, frozenset[PoStatus]] = {
    PoStatus.DRAFT: frozenset({PoStatus.APPROVED, PoStatus.CANCELLED}),
    PoStatus.APPROVED: frozenset({PoStatus.SENT, PoStatus.CANCELLED}),
    PoStatus.SENT: frozenset({PoStatus.CONFIRMED, PoStatus.CANCELLED}),
    PoStatus.CONFIRMED: frozenset({PoStatus.PARTIALLY_RECEIVED, PoStatus.RECEIVED, PoStatus.CANCELLED}),
    PoStatus.PARTIALLY_RECEIVED: frozenset({PoStatus.PARTIALLY_RECEIVED, PoStatus.RECEIVED, PoStatus.CLOSED}),
    PoStatus.RECEIVED: frozenset({PoStatus.CLOSED}),
    PoStatus.CLOSED: frozenset(),
    PoStatus.CANCELLED: frozenset(),
}


class InvalidTransition(FailedPrecondition):
    reason = "purchase-order-state"


class OverReceipt(FailedPrecondition):
    reason = "over-receipt"


class InvalidQuantity(InvalidArgument):
    reason = "invalid-quantity"


def transition(current: PoStatus, wanted: PoStatus) -> PoStatus:
    if wanted not in TRANSITIONS[current]:
        raise InvalidTransition(
            f"a purchase order that is {current.value} cannot become {wanted.value}",
            details={"status": current.value, "wanted": wanted.value},
        )
    return wanted


def check_quantity(quantity: Decimal, *, field_name: str, allow_zero: bool = False) -> Decimal:
    """An exact quantity with at most three decimals, positive (or zero when allowed)."""
    if not isinstance(quantity, Decimal) or not quantity.is_finite():
        raise InvalidQuantity(f"{field_name} is an exact decimal", details={"field": field_name})
    exponent = quantity.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -3 or quantity > Decimal(10**9):
        raise InvalidQuantity(f"{field_name} has at most three decimals and nine digits", details={"field": field_name})
    if quantity < 0 or (quantity == 0 and not allow_zero):
        raise InvalidQuantity(
            f"{field_name} must be {'0 or more' if allow_zero else 'positive'}", details={"field": field_name}
        )
    return quantity


def order_quantity(suggested: Decimal, pack_size: Decimal, minimum: Decimal = Decimal(0)) -> Decimal:
    """A suggested quantity rounded up to whole packs, and to at least the supplier's minimum per line."""
    check_quantity(suggested, field_name="suggested", allow_zero=True)
    check_quantity(pack_size, field_name="pack_size")
    wanted = max(suggested, minimum)
    packs = (wanted / pack_size).to_integral_value(rounding=ROUND_CEILING)
    return packs * pack_size


@dataclass(frozen=True, slots=True)
class LineQuantities:
    ordered: Decimal
    accepted: Decimal = Decimal(0)
    rejected: Decimal = Decimal(0)
    returned: Decimal = Decimal(0)  # returned to vendor after acceptance
    billed: Decimal = Decimal(0)

    @property
    def delivered(self) -> Decimal:
        return self.accepted + self.rejected

    @property
    def outstanding(self) -> Decimal:
        return max(self.ordered - self.delivered, Decimal(0))

    def billable(self, *, rejects_billed: bool) -> Decimal:
        owed = self.accepted - self.returned + (self.rejected if rejects_billed else Decimal(0))
        return max(owed - self.billed, Decimal(0))


def receive(
    line: LineQuantities, accepted: Decimal, rejected: Decimal, *, allowance: Decimal, may_exceed: bool = False
) -> LineQuantities:
    """The line after a receipt of ``accepted`` + ``rejected``, refused above the over-delivery allowance."""
    check_quantity(accepted, field_name="accepted", allow_zero=True)
    check_quantity(rejected, field_name="rejected", allow_zero=True)
    if accepted + rejected == 0:
        raise InvalidQuantity("a receipt line receives something", details={"field": "accepted"})
    limit = line.ordered * (1 + allowance)
    after = line.delivered + accepted + rejected
    if after > limit and not may_exceed:
        raise OverReceipt(
            f"receiving {accepted + rejected} would bring the line to {after} of {line.ordered} ordered "
            f"(at most {limit} with the allowance)",
            details={"ordered": str(line.ordered), "delivered": str(line.delivered), "limit": str(limit)},
        )
    return LineQuantities(line.ordered, line.accepted + accepted, line.rejected + rejected, line.returned, line.billed)


def return_to_vendor(line: LineQuantities, quantity: Decimal) -> LineQuantities:
    check_quantity(quantity, field_name="quantity")
    if line.returned + quantity > line.accepted:
        raise InvalidQuantity("more is returned than was accepted", details={"field": "quantity"})
    return LineQuantities(line.ordered, line.accepted, line.rejected, line.returned + quantity, line.billed)


def status_after_receipt(line_quantities: list[LineQuantities]) -> PoStatus:
    """RECEIVED when every line is delivered in full, else PARTIALLY_RECEIVED."""
    if all(line.delivered >= line.ordered for line in line_quantities):
        return PoStatus.RECEIVED
    return PoStatus.PARTIALLY_RECEIVED


class MatchResult(StrEnum):
    MATCHED = "matched"
    QUANTITY_ABOVE_RECEIVED = "quantity_above_received"
    PRICE_ABOVE_ORDER = "price_above_order"


@dataclass(frozen=True, slots=True)
class InvoiceMatch:
    result: MatchResult
    billable: Decimal
    expected_fen: int  # PO price × invoiced quantity (what matching would pay)

    @property
    def matched(self) -> bool:
        return self.result is MatchResult.MATCHED


def match_invoice_line(
    line: LineQuantities,
    *,
    order_unit_cost_fen: int,
    invoice_quantity: Decimal,
    invoice_unit_cost_fen: int,
    price_tolerance: Decimal,
    rejects_billed: bool = False,
) -> InvoiceMatch:
    """Three-way match of one invoice line against its PO line and what was received."""
    check_quantity(invoice_quantity, field_name="invoice_quantity")
    billable = line.billable(rejects_billed=rejects_billed)
    expected = round_half_up_fen(invoice_quantity * order_unit_cost_fen)
    if invoice_quantity > billable:
        return InvoiceMatch(MatchResult.QUANTITY_ABOVE_RECEIVED, billable, expected)
    if invoice_unit_cost_fen > order_unit_cost_fen * (1 + price_tolerance):
        return InvoiceMatch(MatchResult.PRICE_ABOVE_ORDER, billable, expected)
    return InvoiceMatch(MatchResult.MATCHED, billable, expected)
