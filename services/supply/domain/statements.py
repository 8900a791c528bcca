"""Statements: which accruals a period's statement shows, what a run adds, and a statement's life.

A contract's accruals are cut into periods by its cycle (:class:`SettlementCycle`). The statement
of period ``P`` shows every open accrual whose own period is ``P`` and every open accrual of an
earlier period that was already issued when it arrived (:func:`statement_period`): walking back
from ``P`` over the contiguous run of issued periods just before it gives the first day whose
accruals land in ``P`` (:func:`statement_window`), so a run assigns lines with one range
condition per contract instead of asking per accrual.

At each drafting, a statement gets two computed lines besides its accruals (one each at most,
with source ids fixed by contract and period, so a rerun rewrites them instead of adding):

* the **volume rebate** (返利), a credit of the tier rate reached by the period's purchases (the
  receipts net of returns to vendor on the statement);
* the **quality deduction**, a share of the period's payable (receipts, sales and returns on
  the statement) by the quality band the supplier's quality score for the period falls in.

A statement's life: draft → issued → confirmed or disputed (a comment per line) → approved →
paid. Once issued, its lines and total never change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from servicekit.errors import FailedPrecondition, InvalidArgument, NotFound
from services.supply.domain.contracts import SettlementMode
from services.supply.domain.settlement import (
    AccrualKind,
    QualityBand,
    RateTier,
    SettlementCycle,
    quality_deduction_fen,
    volume_rebate_fen,
)

MAX_COMMENT = 500
MAX_PAYMENT_REFERENCE = 64
# Walking back over issued periods stops here: 100 years of monthly statements.
MAX_ISSUED_WALK = 1_200


class StatementNotFound(NotFound):
    reason = "statement-not-found"


class StatementWrongState(FailedPrecondition):
    reason = "statement-wrong-state"


class StatementAlreadyConfirmed(FailedPrecondition):
    reason = "statement-already-confirmed"


class InvalidDispute(InvalidArgument):
    reason = "invalid-dispute"


class InvalidPaymentReference(InvalidArgument):
    reason = "invalid-payment-reference"


class StatementStatus(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"
    APPROVED = "approved"
    PAID = "paid"


class StatementAction(StrEnum):
    ISSUE = "issue"
    CONFIRM = "confirm"
    DISPUTE = "dispute"
    APPROVE = "approve"
    PAY = "pay"


# action → (states it may start from, state it leads to)
_MOVES: dict[StatementAction, tuple[frozenset[StatementStatus], StatementStatus]] = {
    StatementAction.ISSUE: (frozenset({StatementStatus.DRAFT}), StatementStatus.ISSUED),
    # A supplier may confirm an issued statement, or one it disputed once the dispute is settled.
    StatementAction.CONFIRM: (frozenset({StatementStatus.ISSUED, StatementStatus.DISPUTED}), StatementStatus.CONFIRMED),
    StatementAction.DISPUTE: (frozenset({StatementStatus.ISSUED}), StatementStatus.DISPUTED),
    # Finance approves a confirmed statement, or a disputed one it resolved with the supplier.
    StatementAction.APPROVE: (
        frozenset({StatementStatus.CONFIRMED, StatementStatus.DISPUTED}),
        StatementStatus.APPROVED,
    ),
    StatementAction.PAY: (frozenset({StatementStatus.APPROVED}), StatementStatus.PAID),
}


def next_status(current: StatementStatus, action: StatementAction) -> StatementStatus:
    """The state ``action`` leads to from ``current``, or a precise refusal (nothing changes)."""
    allowed, to = _MOVES[action]
    if current in allowed:
        return to
    if action is StatementAction.CONFIRM and current is StatementStatus.CONFIRMED:
        raise StatementAlreadyConfirmed("the statement is already confirmed", details={"status": current.value})
    raise StatementWrongState(
        f"a {current.value} statement cannot be {_PAST[action]}",
        details={"status": current.value, "action": action.value},
    )


_PAST = {
    StatementAction.ISSUE: "issued",
    StatementAction.CONFIRM: "confirmed",
    StatementAction.DISPUTE: "disputed",
    StatementAction.APPROVE: "approved",
    StatementAction.PAY: "paid",
}


def check_disputes(comments: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Disputed lines by source id, each with a comment of 1 to 500 characters; at least one."""
    if not comments:
        raise InvalidDispute("a dispute names at least one line", details={"field": "lines"})
    disputes: dict[str, str] = {}
    for source_id, comment in comments:
        text = comment.strip()
        if not source_id:
            raise InvalidDispute("a disputed line names its source_id", details={"field": "lines.source_id"})
        if not 1 <= len(text) <= MAX_COMMENT:
            raise InvalidDispute(
                f"a dispute comment is 1 to {MAX_COMMENT} characters", details={"field": "lines.comment"}
            )
        if source_id in disputes:
            raise InvalidDispute(f"line {source_id} is disputed twice", details={"source_id": source_id})
        disputes[source_id] = text
    return disputes


def check_payment_reference(reference: str) -> str:
    text = reference.strip()
    if not 1 <= len(text) <= MAX_PAYMENT_REFERENCE:
        raise InvalidPaymentReference(
            f"a payment reference is 1 to {MAX_PAYMENT_REFERENCE} characters", details={"field": "payment_reference"}
        )
    return text


@dataclass(frozen=True, slots=True)
class StatementWindow:
    """The statement of ``[start, end)`` shows the open accruals that occurred in ``[first_day, end)``;
    those before ``start`` are late lines (their own periods were issued)."""

    first_day: date
    start: date
    end: date


def statement_window(
    cycle: SettlementCycle, period_date: date, is_issued: Callable[[date], bool]
) -> StatementWindow | None:
    """The window of the period containing ``period_date`` — None when that period is itself issued."""
    start, end = cycle.period_of(period_date)
    if is_issued(start):
        return None
    first_day = start
    for _ in range(MAX_ISSUED_WALK):
        previous_start, _ = cycle.period_of(first_day - _ONE_DAY)
        if not is_issued(previous_start):
            break
        first_day = previous_start
    return StatementWindow(first_day, start, end)


def statement_id(contract_id: str, period_start: date) -> str:
    """One statement per contract and period, named by them: a rerun finds it instead of adding one."""
    return f"ST-{contract_id}-{period_start:%Y%m%d}"


def adjustment_source_id(kind: AccrualKind, contract_id: str, period_start: date) -> str:
    return f"{kind.value}:{contract_id}:{period_start:%Y%m%d}"


@dataclass(frozen=True, slots=True)
class SettlementTerms:
    """What a statement run needs of a contract: its cycle and its period-end rules."""

    contract_id: str
    supplier_id: str
    mode: SettlementMode
    cycle: SettlementCycle
    rebate_tiers: tuple[RateTier, ...] = ()
    quality_bands: tuple[QualityBand, ...] = ()


@dataclass(frozen=True, slots=True)
class Adjustment:
    kind: AccrualKind
    source_id: str
    amount_fen: int


def period_adjustments(
    terms: SettlementTerms,
    period_start: date,
    *,
    purchases_fen: int,
    payable_fen: int,
    quality_score: Decimal | None,
) -> list[Adjustment]:
    """The rebate and quality deduction lines of one statement (none when they come to zero)."""
    lines = []
    if terms.rebate_tiers and terms.mode is SettlementMode.PURCHASE:
        rebate = volume_rebate_fen(terms.rebate_tiers, purchases_fen)
        if rebate:
            source = adjustment_source_id(AccrualKind.REBATE, terms.contract_id, period_start)
            lines.append(Adjustment(AccrualKind.REBATE, source, rebate))
    if terms.quality_bands:
        deduction = quality_deduction_fen(terms.quality_bands, quality_score, payable_fen)
        if deduction:
            source = adjustment_source_id(AccrualKind.QUALITY_DEDUCTION, terms.contract_id, period_start)
            lines.append(Adjustment(AccrualKind.QUALITY_DEDUCTION, source, deduction))
    return lines


def yuan(fen: int) -> str:
    """Fen as a yuan string with two decimals: 12345 → "123.45", -5 → "-0.05"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


_ONE_DAY = date(2000, 1, 2) - date(2000, 1, 1)
