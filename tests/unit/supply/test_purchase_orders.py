"""Purchase-order quantities, tolerances, invoice matching and the scorecard, in exact decimals."""

from datetime import date
from decimal import Decimal

import pytest

from services.supply.domain.purchase_orders import (
    InvalidQuantity,
    InvalidTransition,
    LineQuantities,
    MatchResult,
    OverReceipt,
    PoStatus,
    match_invoice_line,
    order_quantity,
    receive,
    return_to_vendor,
    status_after_receipt,
    transition,
)
from services.supply.domain.scorecards import DueLine, scorecard


def test_a_suggestion_is_rounded_up_to_whole_packs_and_the_line_minimum() -> None:
    assert order_quantity(Decimal(13), pack_size=Decimal(12)) == Decimal(24)
    assert order_quantity(Decimal(24), pack_size=Decimal(12)) == Decimal(24)
    assert order_quantity(Decimal(2), pack_size=Decimal(6), minimum=Decimal(30)) == Decimal(30)
    assert order_quantity(Decimal("7.2"), pack_size=Decimal("2.5")) == Decimal("7.5")
    assert order_quantity(Decimal(0), pack_size=Decimal(6)) == Decimal(0)


def test_the_over_delivery_allowance_is_exact_and_only_a_permitted_receiver_may_exceed_it() -> None:
    line = LineQuantities(ordered=Decimal(100))
    with pytest.raises(OverReceipt):
        receive(line, Decimal("100.002"), Decimal(0), allowance=Decimal(0))
    assert receive(line, Decimal("100.002"), Decimal(0), allowance=Decimal(0), may_exceed=True).accepted == Decimal(
        "100.002"
    )
    within = receive(line, Decimal(103), Decimal(2), allowance=Decimal("0.05"))
    assert within.delivered == Decimal(105)
    with pytest.raises(OverReceipt):
        receive(within, Decimal("0.001"), Decimal(0), allowance=Decimal("0.05"))
    with pytest.raises(InvalidQuantity):
        receive(line, Decimal(0), Decimal(0), allowance=Decimal(0))
    with pytest.raises(InvalidQuantity):
        receive(line, Decimal("-1"), Decimal(2), allowance=Decimal(0))
    with pytest.raises(InvalidQuantity):
        receive(line, Decimal("1.0001"), Decimal(0), allowance=Decimal(0))


def test_billable_quantity_takes_returns_and_bills_away_and_rejects_only_when_billed() -> None:
    line = receive(LineQuantities(ordered=Decimal(100)), Decimal(90), Decimal(10), allowance=Decimal(0))
    line = return_to_vendor(line, Decimal(5))
    assert line.billable(rejects_billed=False) == Decimal(85)
    assert line.billable(rejects_billed=True) == Decimal(95)
    with pytest.raises(InvalidQuantity):
        return_to_vendor(line, Decimal(86))


def test_an_invoice_is_matched_only_within_what_was_received_and_the_price_tolerance() -> None:
    received_one = receive(LineQuantities(ordered=Decimal(2)), Decimal(1), Decimal(0), allowance=Decimal(0))
    two_for_one = match_invoice_line(
        received_one,
        order_unit_cost_fen=1_000,
        invoice_quantity=Decimal(2),
        invoice_unit_cost_fen=1_000,
        price_tolerance=Decimal("0.02"),
    )
    assert two_for_one.result is MatchResult.QUANTITY_ABOVE_RECEIVED
    assert not two_for_one.matched
    pricier = match_invoice_line(
        received_one,
        order_unit_cost_fen=1_000,
        invoice_quantity=Decimal(1),
        invoice_unit_cost_fen=1_021,
        price_tolerance=Decimal("0.02"),
    )
    assert pricier.result is MatchResult.PRICE_ABOVE_ORDER
    fine = match_invoice_line(
        received_one,
        order_unit_cost_fen=1_000,
        invoice_quantity=Decimal(1),
        invoice_unit_cost_fen=1_020,
        price_tolerance=Decimal("0.02"),
    )
    assert fine.matched
    assert fine.expected_fen == 1_000


def test_states_move_only_along_the_lifecycle() -> None:
    status = PoStatus.DRAFT
    for wanted in (PoStatus.APPROVED, PoStatus.SENT, PoStatus.CONFIRMED, PoStatus.PARTIALLY_RECEIVED, PoStatus.CLOSED):
        status = transition(status, wanted)
    with pytest.raises(InvalidTransition):
        transition(PoStatus.PARTIALLY_RECEIVED, PoStatus.CANCELLED)
    with pytest.raises(InvalidTransition):
        transition(PoStatus.DRAFT, PoStatus.SENT)
    full = LineQuantities(Decimal(5), accepted=Decimal(4), rejected=Decimal(1))
    short = LineQuantities(Decimal(5), accepted=Decimal(4))
    assert status_after_receipt([full]) is PoStatus.RECEIVED
    assert status_after_receipt([full, short]) is PoStatus.PARTIALLY_RECEIVED


def test_the_scorecard_counts_arrivals_by_their_date_and_scores_nothing_when_nothing_happened() -> None:
    lines = [
        DueLine(
            Decimal(100),
            Decimal(95),
            Decimal(5),
            date(2026, 3, 1),
            date(2026, 3, 4),
            date(2026, 3, 4),
            date(2026, 3, 4),
        ),
        DueLine(Decimal(50), Decimal(40), Decimal(0), date(2026, 3, 1), date(2026, 3, 4), date(2026, 3, 3), None),
        DueLine(
            Decimal(10), Decimal(10), Decimal(0), date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 6), date(2026, 3, 6)
        ),
    ]
    card = scorecard(lines, invoice_lines=4, invoice_lines_matched=3)
    assert card.otif == Decimal("0.3333")
    assert card.fill_rate == Decimal("0.9063")  # 145 / 160
    assert card.reject_rate == Decimal("0.0333")  # 5 / 150
    assert card.quality_score == Decimal("96.67")
    assert card.promised_lead_days == Decimal("2.7")
    assert card.actual_lead_days == Decimal("3.0")
    assert card.invoice_match_rate == Decimal("0.75")
    empty = scorecard([])
    assert (empty.otif, empty.fill_rate, empty.quality_score, empty.invoice_match_rate) == (None, None, None, None)
