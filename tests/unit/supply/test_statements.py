"""Statement windows (late lines), period adjustments and a statement's life."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.supply.domain.contracts import SettlementMode
from services.supply.domain.settlement import (
    AccrualKind,
    CycleKind,
    QualityBand,
    RateTier,
    SettlementCycle,
    statement_period,
)
from services.supply.domain.statements import (
    InvalidDispute,
    InvalidPaymentReference,
    SettlementTerms,
    StatementAction,
    StatementAlreadyConfirmed,
    StatementStatus,
    StatementWrongState,
    check_disputes,
    check_payment_reference,
    next_status,
    period_adjustments,
    statement_id,
    statement_window,
    yuan,
)

MONTHLY = SettlementCycle()


def test_an_unissued_month_shows_its_own_days_only() -> None:
    window = statement_window(MONTHLY, date(2026, 11, 17), lambda start: False)
    assert window is not None
    assert (window.first_day, window.start, window.end) == (date(2026, 11, 1), date(2026, 11, 1), date(2026, 12, 1))


def test_the_month_after_issued_ones_takes_their_late_lines() -> None:
    issued = {date(2026, 9, 1), date(2026, 10, 1)}
    window = statement_window(MONTHLY, date(2026, 11, 3), issued.__contains__)
    assert window is not None
    assert window.first_day == date(2026, 9, 1)
    assert window.start == date(2026, 11, 1)


def test_an_issued_period_is_not_drafted_again() -> None:
    assert statement_window(MONTHLY, date(2026, 10, 9), {date(2026, 10, 1)}.__contains__) is None


@pytest.mark.parametrize("occurred", [date(2026, 8, 31), date(2026, 9, 1), date(2026, 10, 31), date(2026, 11, 30)])
def test_the_window_agrees_with_statement_period(occurred: date) -> None:
    """An accrual lands in November's statement exactly when statement_period says so."""
    issued = {date(2026, 9, 1), date(2026, 10, 1)}
    window = statement_window(MONTHLY, date(2026, 11, 3), issued.__contains__)
    assert window is not None
    start, _, late = statement_period(MONTHLY, occurred, issued)
    in_window = window.first_day <= occurred < window.end
    assert in_window == (start == window.start)
    if in_window:
        assert late == (occurred < window.start)


def test_day_cycles_walk_back_over_issued_periods() -> None:
    cycle = SettlementCycle(CycleKind.DAYS, 10, date(2026, 1, 1))
    issued = {date(2026, 1, 11)}
    window = statement_window(cycle, date(2026, 1, 25), issued.__contains__)
    assert window is not None
    assert (window.first_day, window.start, window.end) == (date(2026, 1, 11), date(2026, 1, 21), date(2026, 1, 31))


def test_statement_ids_name_contract_and_period() -> None:
    assert statement_id("C1", date(2026, 11, 1)) == "ST-C1-20261101"


def _terms(mode: SettlementMode, **kwargs: object) -> SettlementTerms:
    return SettlementTerms("C1", "SUP1", mode, MONTHLY, **kwargs)  # type: ignore[arg-type]


def test_rebate_by_tier_and_quality_deduction_by_band() -> None:
    terms = _terms(
        SettlementMode.PURCHASE,
        rebate_tiers=(RateTier(100_000, Decimal("0.01")), RateTier(1_000_000, Decimal("0.02"))),
        quality_bands=(QualityBand(Decimal("95"), Decimal("0.005")), QualityBand(Decimal("90"), Decimal("0.01"))),
    )
    lines = period_adjustments(
        terms, date(2026, 11, 1), purchases_fen=1_234_567, payable_fen=1_234_567, quality_score=Decimal("89.5")
    )
    assert [(line.kind, line.source_id, line.amount_fen) for line in lines] == [
        (AccrualKind.REBATE, "rebate:C1:20261101", -24_691),  # 1,234,567 × 2% = 24,691.34
        (AccrualKind.QUALITY_DEDUCTION, "quality_deduction:C1:20261101", -12_346),  # × 1% = 12,345.67
    ]


def test_no_lines_when_nothing_is_earned() -> None:
    terms = _terms(SettlementMode.PURCHASE, rebate_tiers=(RateTier(100_000, Decimal("0.01")),))
    assert period_adjustments(terms, date(2026, 11, 1), purchases_fen=99_999, payable_fen=0, quality_score=None) == []
    concession = _terms(SettlementMode.CONCESSION, rebate_tiers=(RateTier(0, Decimal("0.01")),))
    assert (
        period_adjustments(concession, date(2026, 11, 1), purchases_fen=500, payable_fen=500, quality_score=None) == []
    )


def test_a_statements_life() -> None:
    status = StatementStatus.DRAFT
    for action in (StatementAction.ISSUE, StatementAction.DISPUTE, StatementAction.APPROVE, StatementAction.PAY):
        status = next_status(status, action)
    assert status is StatementStatus.PAID
    assert next_status(StatementStatus.ISSUED, StatementAction.CONFIRM) is StatementStatus.CONFIRMED


def test_confirming_twice_is_refused_precisely() -> None:
    with pytest.raises(StatementAlreadyConfirmed) as refused:
        next_status(StatementStatus.CONFIRMED, StatementAction.CONFIRM)
    assert refused.value.reason == "statement-already-confirmed"


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (StatementStatus.DRAFT, StatementAction.CONFIRM),
        (StatementStatus.ISSUED, StatementAction.ISSUE),
        (StatementStatus.ISSUED, StatementAction.PAY),
        (StatementStatus.PAID, StatementAction.DISPUTE),
        (StatementStatus.DRAFT, StatementAction.APPROVE),
    ],
)
def test_moves_out_of_order_are_refused(status: StatementStatus, action: StatementAction) -> None:
    with pytest.raises(StatementWrongState):
        next_status(status, action)


def test_disputes_need_a_comment_per_line() -> None:
    assert check_disputes([("sale:S1:1", " wrong price ")]) == {"sale:S1:1": "wrong price"}
    for bad in ([], [("sale:S1:1", " ")], [("", "x")], [("a", "x"), ("a", "y")], [("a", "x" * 501)]):
        with pytest.raises(InvalidDispute):
            check_disputes(bad)


def test_payment_references() -> None:
    assert check_payment_reference(" BANK-1 ") == "BANK-1"
    with pytest.raises(InvalidPaymentReference):
        check_payment_reference("x" * 65)


@pytest.mark.parametrize(
    ("fen", "text"), [(0, "0.00"), (5, "0.05"), (-5, "-0.05"), (12_345, "123.45"), (-100, "-1.00")]
)
def test_yuan_strings(fen: int, text: str) -> None:
    assert yuan(fen) == text
