"""What the retailer owes each supplier, line by line and to the fen, and which statement shows it.

Accruals
--------
An **accrual** is one signed line of money owed to a supplier (positive: owed to the supplier;
negative: a credit, deduction or fee), written as its fact arrives: a goods receipt or a return
to vendor (经销), a sale or a customer return of a supplier's SKU from the SALES journal
(代销 and 联营), a fee, a quality deduction or a volume rebate.

Rounding (the one rule): every accrual is computed exactly in :class:`~decimal.Decimal` and
rounded **half up to the whole fen once, on its own line**; a statement's total is the plain
sum of its lines, so it always equals them, and no rounding line is ever needed.

* 经销 receipt: ``accepted quantity × unit cost`` (plus rejected quantity when the contract
  bills rejects); a return to vendor is the same, negative.
* 代销 sale: ``sold quantity × unit cost``; 联营 sale: ``revenue × (1 − commission rate)``.
* A customer return reverses the sale line it returns, on that sale's own terms (cost or rate
  of the day it was sold): cumulatively, so that returning a line in parts reverses exactly
  what the line accrued, never a fen more or less (:func:`reversal_fen`).

Statements
----------
Accruals fall into statements per supplier and contract, one per settlement period (calendar
months by default, or a fixed number of days). A statement, once issued, never changes: an
accrual whose period has been issued (a sale replayed late by an offline till, a return after
the period closed) goes into the first period not yet issued, and is shown there as a **late
line** with its original date (:func:`statement_period`). A late return therefore reduces the
next statement and may leave it negative; the balance carries to the one after.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from servicekit.errors import FailedPrecondition, InvalidArgument
from services.supply.domain.contracts import Contract, SettlementMode, check_rate

MAX_PERIOD_DAYS = 366


class InvalidAccrual(InvalidArgument):
    reason = "invalid-accrual"


class NotSettledThisWay(FailedPrecondition):
    reason = "not-settled-this-way"


class AccrualKind(StrEnum):
    RECEIPT = "receipt"
    RETURN_TO_VENDOR = "return_to_vendor"
    SALE = "sale"
    CUSTOMER_RETURN = "customer_return"
    FEE = "fee"
    QUALITY_DEDUCTION = "quality_deduction"
    REBATE = "rebate"


def round_half_up_fen(amount: Decimal) -> int:
    """Exact fen, half up to the whole fen (2.5 → 3, −2.5 → −3: half away from zero)."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def check_quantity(quantity: Decimal, *, field_name: str = "quantity") -> Decimal:
    """A positive exact quantity (pieces or kg, up to three decimals)."""
    if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity <= 0:
        raise InvalidAccrual(f"{field_name} is a positive exact decimal", details={"field": field_name})
    exponent = quantity.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -3:
        raise InvalidAccrual(f"{field_name} has at most three decimal places", details={"field": field_name})
    return quantity


def check_amount(amount_fen: int, *, field_name: str) -> int:
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or not 0 <= amount_fen <= 10**12:
        raise InvalidAccrual(f"{field_name} is whole fen from 0 to 10^12", details={"field": field_name})
    return amount_fen


@dataclass(frozen=True, slots=True)
class Accrual:
    source_id: str  # what it accrues, unique: "receipt:<id>:<line>", "sale:<sale_id>:<line>", "fee:<id>"
    supplier_id: str
    contract_id: str
    kind: AccrualKind
    occurred_on: date  # the date of the fact (a late line keeps it)
    amount_fen: int  # signed: owed to the supplier when positive
    sku: str = ""
    store_id: str = ""
    quantity: Decimal = Decimal(0)  # signed like the amount
    base_fen: int = 0  # the revenue a concession line was paid from, signed
    unit_cost_fen: int = 0  # the cost a purchase or consignment line was priced at
    commission_rate: Decimal | None = None  # the rate a concession line was paid at
    reverses: str = ""  # the source_id of the line a return reverses


def accrue_receipt(
    contract: Contract,
    *,
    source_id: str,
    sku: str,
    store_id: str,
    accepted: Decimal,
    rejected: Decimal,
    occurred_on: date,
    to_vendor: bool = False,
) -> Accrual:
    """A 经销 receipt (or, with ``to_vendor``, a return to vendor, as a credit)."""
    if contract.mode is not SettlementMode.PURCHASE:
        raise NotSettledThisWay(f"contract {contract.contract_id} is {contract.mode.value}: receipts are not paid")
    paid = accepted + (rejected if contract.rejects_billed and not to_vendor else Decimal(0))
    check_quantity(paid)
    cost = contract.unit_cost_fen[sku]
    sign = -1 if to_vendor else 1
    return Accrual(
        source_id=source_id,
        supplier_id=contract.supplier_id,
        contract_id=contract.contract_id,
        kind=AccrualKind.RETURN_TO_VENDOR if to_vendor else AccrualKind.RECEIPT,
        occurred_on=occurred_on,
        amount_fen=sign * round_half_up_fen(paid * cost),
        sku=sku,
        store_id=store_id,
        quantity=sign * paid,
        unit_cost_fen=cost,
    )


def accrue_sale(
    contract: Contract,
    *,
    source_id: str,
    sku: str,
    store_id: str,
    quantity: Decimal,
    revenue_fen: int,
    occurred_on: date,
) -> Accrual:
    """A 代销 or 联营 sale line from the SALES journal (``revenue_fen``: what the customer paid for it)."""
    check_quantity(quantity)
    check_amount(revenue_fen, field_name="revenue_fen")
    cost = 0
    rate = None
    if contract.mode is SettlementMode.CONSIGNMENT:
        cost = contract.unit_cost_fen[sku]
        amount = round_half_up_fen(quantity * cost)
    elif contract.mode is SettlementMode.CONCESSION:
        rate = contract.commission_for(store_id)
        amount = round_half_up_fen(revenue_fen * (1 - rate))
    else:
        raise NotSettledThisWay(f"contract {contract.contract_id} is a purchase contract: sales are not paid")
    return Accrual(
        source_id=source_id,
        supplier_id=contract.supplier_id,
        contract_id=contract.contract_id,
        kind=AccrualKind.SALE,
        occurred_on=occurred_on,
        amount_fen=amount,
        sku=sku,
        store_id=store_id,
        quantity=quantity,
        base_fen=revenue_fen,
        unit_cost_fen=cost,
        commission_rate=rate,
    )


def reversal_fen(original_fen: int, original_base: Decimal, returned_so_far: Decimal, reversed_so_far_fen: int) -> int:
    """What a return takes back (a non-positive amount) so the line's reversals add up exactly.

    ``original_base`` is the line's quantity (or revenue); ``returned_so_far`` includes this
    return. The reversals of a line are ``round(original × returned ÷ base)`` cumulatively, so
    the sum of every reversal of a fully returned line is exactly ``−original_fen``.
    """
    if not Decimal(0) < returned_so_far <= original_base:
        raise InvalidAccrual("a return takes back at most what the line sold", details={"field": "quantity"})
    owed_back = round_half_up_fen(original_fen * returned_so_far / original_base)
    return -(owed_back - reversed_so_far_fen)


def accrue_customer_return(
    original: Accrual,
    *,
    source_id: str,
    quantity: Decimal,
    revenue_fen: int,
    returned_before: Decimal,
    reversed_before_fen: int,
    occurred_on: date,
) -> Accrual:
    """A customer return of (part of) the sale line ``original``, on that sale's own terms."""
    if original.kind is not AccrualKind.SALE:
        raise InvalidAccrual("only a sale line can be returned by a customer", details={"field": "reverses"})
    check_quantity(quantity)
    check_amount(revenue_fen, field_name="revenue_fen")
    amount = reversal_fen(original.amount_fen, original.quantity, returned_before + quantity, reversed_before_fen)
    return Accrual(
        source_id=source_id,
        supplier_id=original.supplier_id,
        contract_id=original.contract_id,
        kind=AccrualKind.CUSTOMER_RETURN,
        occurred_on=occurred_on,
        amount_fen=amount,
        sku=original.sku,
        store_id=original.store_id,
        quantity=-quantity,
        base_fen=-revenue_fen,
        unit_cost_fen=original.unit_cost_fen,
        commission_rate=original.commission_rate,
        reverses=original.source_id,
    )


@dataclass(frozen=True, slots=True)
class RateTier:
    """From ``threshold_fen`` of the period's base upwards, ``rate`` applies (to the whole base)."""

    threshold_fen: int
    rate: Decimal


def tiered_rate(tiers: Sequence[RateTier], base_fen: int) -> Decimal:
    """The rate of the highest tier ``base_fen`` reaches (0 below the first)."""
    rate = Decimal(0)
    for tier in sorted(tiers, key=lambda tier: tier.threshold_fen):
        check_rate(tier.rate, field_name="rate")
        if base_fen >= tier.threshold_fen:
            rate = tier.rate
    return rate


def volume_rebate_fen(tiers: Sequence[RateTier], period_purchases_fen: int) -> int:
    """返利: the credit a period's purchases earn, as a non-positive amount."""
    return -round_half_up_fen(max(period_purchases_fen, 0) * tiered_rate(tiers, max(period_purchases_fen, 0)))


@dataclass(frozen=True, slots=True)
class QualityBand:
    """Below ``score_below`` (0–100), ``rate`` of the period's payable is deducted."""

    score_below: Decimal
    rate: Decimal


def quality_deduction_fen(bands: Sequence[QualityBand], score: Decimal | None, payable_fen: int) -> int:
    """The deduction a quality score earns (0 for a period without deliveries: no score, no deduction)."""
    if score is None or payable_fen <= 0:
        return 0
    rate = Decimal(0)
    for band in bands:
        check_rate(band.rate, field_name="rate")
        if score < band.score_below:
            rate = max(rate, band.rate)
    return -round_half_up_fen(payable_fen * rate)


class CycleKind(StrEnum):
    MONTHLY = "monthly"
    DAYS = "days"


@dataclass(frozen=True, slots=True)
class SettlementCycle:
    """How a contract's time is cut into statement periods ``[start, end)``."""

    kind: CycleKind = CycleKind.MONTHLY
    days: int = 0  # DAYS: the period length
    anchor: date = date(2000, 1, 1)  # DAYS: a day on which a period starts

    def __post_init__(self) -> None:
        if self.kind is CycleKind.DAYS and not 1 <= self.days <= MAX_PERIOD_DAYS:
            raise InvalidAccrual(f"a period is 1 to {MAX_PERIOD_DAYS} days", details={"field": "days"})

    def period_of(self, day: date) -> tuple[date, date]:
        if self.kind is CycleKind.MONTHLY:
            start = day.replace(day=1)
            return start, start + timedelta(days=calendar.monthrange(start.year, start.month)[1])
        offset = (day - self.anchor).days // self.days * self.days
        start = self.anchor + timedelta(days=offset)
        return start, start + timedelta(days=self.days)


def statement_period(
    cycle: SettlementCycle, occurred_on: date, issued: Container[date] | Callable[[date], bool]
) -> tuple[date, date, bool]:
    """The period whose statement shows an accrual of ``occurred_on``, and whether it is a late line.

    ``issued`` holds (or tells) the start dates of periods whose statement is issued; an issued
    statement never changes, so the accrual goes to the first period after it that is not.
    """
    is_issued = issued if callable(issued) else issued.__contains__
    start, end = cycle.period_of(occurred_on)
    late = False
    while is_issued(start):
        start, end = cycle.period_of(end)
        late = True
    return start, end, late


@dataclass(frozen=True, slots=True)
class StatementLine:
    accrual: Accrual
    late: bool


def statement_total(lines: Sequence[StatementLine]) -> int:
    """The statement's total: the sum of its lines, which are whole fen each."""
    return sum(line.accrual.amount_fen for line in lines)
