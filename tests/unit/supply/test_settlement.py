"""What each settlement mode owes, to the fen, and which statement shows it."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.supply.domain.contracts import (
    Contract,
    InvalidContract,
    NoContract,
    OverlappingContract,
    SettlementMode,
    check_no_overlap,
    contract_for,
)
from services.supply.domain.settlement import (
    AccrualKind,
    CycleKind,
    InvalidAccrual,
    NotSettledThisWay,
    QualityBand,
    RateTier,
    SettlementCycle,
    StatementLine,
    accrue_customer_return,
    accrue_receipt,
    accrue_sale,
    quality_deduction_fen,
    round_half_up_fen,
    statement_period,
    statement_total,
    volume_rebate_fen,
)

JAN = date(2026, 1, 1)
CONCESSION = Contract(
    "C-LY",
    "SUP-1",
    SettlementMode.CONCESSION,
    JAN,
    None,
    frozenset({"SKU-BAG"}),
    commission_rate=Decimal("0.185"),
    store_commission_rates={"S-FLAGSHIP": Decimal("0.22")},
)
CONSIGNMENT = Contract(
    "C-DX", "SUP-2", SettlementMode.CONSIGNMENT, JAN, None, frozenset({"SKU-TEA"}), unit_cost_fen={"SKU-TEA": 1_299}
)
PURCHASE = Contract(
    "C-JX", "SUP-3", SettlementMode.PURCHASE, JAN, None, frozenset({"SKU-RICE"}), unit_cost_fen={"SKU-RICE": 350}
)


def test_a_concession_sale_owes_revenue_less_the_commission_of_its_store_rounded_half_up_per_line() -> None:
    sale = accrue_sale(
        CONCESSION,
        source_id="sale:A:1",
        sku="SKU-BAG",
        store_id="S1",
        quantity=Decimal(1),
        revenue_fen=9_999,
        occurred_on=date(2026, 3, 5),
    )
    assert sale.amount_fen == 8_149  # 9,999 × 0.815 = 8,149.185
    flagship = accrue_sale(
        CONCESSION,
        source_id="sale:B:1",
        sku="SKU-BAG",
        store_id="S-FLAGSHIP",
        quantity=Decimal(1),
        revenue_fen=10_050,
        occurred_on=date(2026, 3, 5),
    )
    assert flagship.amount_fen == 7_839  # 10,050 × 0.78 = 7,839
    assert flagship.commission_rate == Decimal("0.22")


def test_a_consignment_sale_owes_the_sold_quantity_at_the_agreed_cost() -> None:
    sale = accrue_sale(
        CONSIGNMENT,
        source_id="sale:C:1",
        sku="SKU-TEA",
        store_id="S1",
        quantity=Decimal("2.345"),
        revenue_fen=5_000,
        occurred_on=date(2026, 3, 5),
    )
    assert sale.amount_fen == 3_046  # 2.345 × 1,299 = 3,046.155
    assert sale.unit_cost_fen == 1_299
    assert round_half_up_fen(Decimal("3046.5")) == 3_047
    assert round_half_up_fen(Decimal("-2.5")) == -3


def test_a_purchase_contract_pays_receipts_not_sales_and_rejects_only_when_it_says_so() -> None:
    receipt = accrue_receipt(
        PURCHASE,
        source_id="receipt:R1:1",
        sku="SKU-RICE",
        store_id="W1",
        accepted=Decimal(95),
        rejected=Decimal(5),
        occurred_on=date(2026, 3, 2),
    )
    assert receipt.amount_fen == 33_250
    assert receipt.kind is AccrualKind.RECEIPT
    billed = Contract(
        "C-JX2",
        "SUP-3",
        SettlementMode.PURCHASE,
        JAN,
        None,
        frozenset({"SKU-RICE"}),
        unit_cost_fen={"SKU-RICE": 350},
        rejects_billed=True,
    )
    rejected_too = accrue_receipt(
        billed,
        source_id="receipt:R1:1",
        sku="SKU-RICE",
        store_id="W1",
        accepted=Decimal(95),
        rejected=Decimal(5),
        occurred_on=date(2026, 3, 2),
    )
    assert rejected_too.amount_fen == 35_000
    back = accrue_receipt(
        PURCHASE,
        source_id="rtv:V1:1",
        sku="SKU-RICE",
        store_id="W1",
        accepted=Decimal(10),
        rejected=Decimal(0),
        occurred_on=date(2026, 3, 9),
        to_vendor=True,
    )
    assert (back.kind, back.amount_fen, back.quantity) == (AccrualKind.RETURN_TO_VENDOR, -3_500, Decimal(-10))
    with pytest.raises(NotSettledThisWay):
        accrue_sale(
            PURCHASE,
            source_id="s",
            sku="SKU-RICE",
            store_id="S1",
            quantity=Decimal(1),
            revenue_fen=500,
            occurred_on=date(2026, 3, 2),
        )
    with pytest.raises(NotSettledThisWay):
        accrue_receipt(
            CONSIGNMENT,
            source_id="r",
            sku="SKU-TEA",
            store_id="W1",
            accepted=Decimal(1),
            rejected=Decimal(0),
            occurred_on=date(2026, 3, 2),
        )


def test_returns_in_parts_reverse_exactly_what_the_line_accrued_on_its_own_terms() -> None:
    sale = accrue_sale(
        CONCESSION,
        source_id="sale:A:1",
        sku="SKU-BAG",
        store_id="S1",
        quantity=Decimal(3),
        revenue_fen=10_001,
        occurred_on=date(2026, 3, 5),
    )
    assert sale.amount_fen == 8_151  # 10,001 × 0.815 = 8,150.815
    returned, reversed_fen = Decimal(0), 0
    amounts: list[int] = []
    for part in (Decimal(1), Decimal(1), Decimal(1)):
        line = accrue_customer_return(
            sale,
            source_id=f"return:{len(amounts)}",
            quantity=part,
            revenue_fen=3_334,
            returned_before=returned,
            reversed_before_fen=reversed_fen,
            occurred_on=date(2026, 4, 2),
        )
        returned += part
        reversed_fen += -line.amount_fen
        amounts.append(line.amount_fen)
        assert line.commission_rate == Decimal("0.185")
        assert line.reverses == "sale:A:1"
    assert amounts == [-2_717, -2_717, -2_717]
    assert sum(amounts) == -sale.amount_fen
    with pytest.raises(InvalidAccrual):
        accrue_customer_return(
            sale,
            source_id="return:too-many",
            quantity=Decimal(1),
            revenue_fen=1,
            returned_before=returned,
            reversed_before_fen=reversed_fen,
            occurred_on=date(2026, 4, 3),
        )


@settings(max_examples=200, deadline=None)
@given(
    quantity=st.integers(1, 40),
    cost=st.integers(1, 99_999),
    parts=st.lists(st.integers(1, 5), min_size=1, max_size=12),
)
def test_any_split_of_a_full_return_reverses_the_line_to_the_fen(quantity: int, cost: int, parts: list[int]) -> None:
    contract = Contract("C", "SUP", SettlementMode.CONSIGNMENT, JAN, None, frozenset({"X"}), unit_cost_fen={"X": cost})
    sale = accrue_sale(
        contract,
        source_id="sale",
        sku="X",
        store_id="S",
        quantity=Decimal(quantity) / 8,
        revenue_fen=0,
        occurred_on=JAN,
    )
    returned, reversed_fen = Decimal(0), 0
    left = Decimal(quantity) / 8
    for part in parts:
        step = min(Decimal(part) / 8, left)
        if step <= 0:
            break
        line = accrue_customer_return(
            sale,
            source_id="r",
            quantity=step,
            revenue_fen=0,
            returned_before=returned,
            reversed_before_fen=reversed_fen,
            occurred_on=JAN,
        )
        assert line.amount_fen <= 0
        returned += step
        left -= step
        reversed_fen -= line.amount_fen
    if left > 0:
        line = accrue_customer_return(
            sale,
            source_id="r",
            quantity=left,
            revenue_fen=0,
            returned_before=returned,
            reversed_before_fen=reversed_fen,
            occurred_on=JAN,
        )
        reversed_fen -= line.amount_fen
    assert reversed_fen == sale.amount_fen


def test_a_late_line_goes_to_the_first_period_not_yet_issued_and_says_it_is_late() -> None:
    monthly = SettlementCycle()
    assert statement_period(monthly, date(2026, 2, 28), issued=set()) == (date(2026, 2, 1), date(2026, 3, 1), False)
    issued = {date(2026, 2, 1), date(2026, 3, 1)}
    assert statement_period(monthly, date(2026, 2, 28), issued) == (date(2026, 4, 1), date(2026, 5, 1), True)
    ten_days = SettlementCycle(CycleKind.DAYS, days=10, anchor=date(2026, 1, 1))
    assert statement_period(ten_days, date(2026, 1, 15), issued=set()) == (date(2026, 1, 11), date(2026, 1, 21), False)
    assert statement_period(ten_days, date(2025, 12, 31), issued=set())[0] == date(2025, 12, 22)


def test_a_statement_total_is_the_sum_of_its_lines_even_when_a_late_return_makes_it_negative() -> None:
    sale = accrue_sale(
        CONCESSION,
        source_id="sale:A:1",
        sku="SKU-BAG",
        store_id="S1",
        quantity=Decimal(1),
        revenue_fen=9_999,
        occurred_on=date(2026, 2, 27),
    )
    late_return = accrue_customer_return(
        sale,
        source_id="return:A:1",
        quantity=Decimal(1),
        revenue_fen=9_999,
        returned_before=Decimal(0),
        reversed_before_fen=0,
        occurred_on=date(2026, 3, 2),
    )
    assert statement_total([StatementLine(late_return, late=False)]) == -8_149


def test_rebates_by_tier_and_quality_deductions_by_score_band() -> None:
    tiers = [RateTier(1_000_000, Decimal("0.01")), RateTier(5_000_000, Decimal("0.02"))]
    assert volume_rebate_fen(tiers, 999_999) == 0
    assert volume_rebate_fen(tiers, 1_234_567) == -12_346
    assert volume_rebate_fen(tiers, 5_000_000) == -100_000
    bands = [QualityBand(Decimal(95), Decimal("0.01")), QualityBand(Decimal(80), Decimal("0.03"))]
    assert quality_deduction_fen(bands, Decimal("96.5"), 1_000_000) == 0
    assert quality_deduction_fen(bands, Decimal("90"), 1_000_000) == -10_000
    assert quality_deduction_fen(bands, Decimal("70"), 1_000_000) == -30_000
    assert quality_deduction_fen(bands, None, 1_000_000) == 0  # no deliveries: no score, no deduction


def test_contracts_refuse_bad_rates_missing_costs_and_overlaps() -> None:
    for rate in (Decimal("1.2"), Decimal("-0.1"), Decimal("0.12345"), Decimal("NaN")):
        with pytest.raises(InvalidContract):
            Contract("C", "S", SettlementMode.CONCESSION, JAN, None, frozenset({"X"}), commission_rate=rate)
    with pytest.raises(InvalidContract):
        Contract("C", "S", SettlementMode.CONSIGNMENT, JAN, None, frozenset({"X", "Y"}), unit_cost_fen={"X": 1})
    with pytest.raises(InvalidContract):
        Contract("C", "S", SettlementMode.PURCHASE, JAN, JAN, frozenset({"X"}), unit_cost_fen={"X": 1})
    later = Contract(
        "C-DX-2", "SUP-2", SettlementMode.CONSIGNMENT, date(2026, 6, 1), None, frozenset({"SKU-TEA"}), {"SKU-TEA": 1}
    )
    with pytest.raises(OverlappingContract):
        check_no_overlap(later, [CONSIGNMENT])
    ended = Contract(
        "C-DX", "SUP-2", SettlementMode.CONSIGNMENT, JAN, date(2026, 6, 1), frozenset({"SKU-TEA"}), {"SKU-TEA": 1_299}
    )
    check_no_overlap(later, [ended])
    assert contract_for([ended, later], "SKU-TEA", date(2026, 5, 31)) is ended
    assert contract_for([ended, later], "SKU-TEA", date(2026, 6, 1)) is later
    with pytest.raises(NoContract):
        contract_for([ended], "SKU-TEA", date(2026, 6, 1))
