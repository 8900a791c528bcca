"""Member KPIs per period and store on a small hand-made journal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.member.domain.kpis import MemberKpis, SaleFact, SaleKind, member_kpis, member_kpis_by_store

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)


def _at(day: int) -> datetime:
    return START + timedelta(days=day - 1, hours=10)


JOURNAL = [
    SaleFact("S1", "M1", "ST1", _at(1), 100_00),
    SaleFact("S2", "M1", "ST1", _at(5), 50_00),
    SaleFact("S3", "M2", "ST1", _at(6), 80_00),
    SaleFact("S4", None, "ST1", _at(7), 70_00),
    SaleFact("S5", "M3", "ST2", _at(8), 200_00),
    SaleFact("R1", "M1", "ST1", _at(9), 20_00, SaleKind.RETURN),  # part of S1 back
    SaleFact("R2", "M4", "ST2", _at(10), 30_00, SaleKind.RETURN),  # a return alone: M4 is not active
    SaleFact("S0", "M5", "ST1", START - timedelta(seconds=1), 999_00),  # before the period
    SaleFact("S9", "M5", "ST1", END, 999_00),  # the end is exclusive
]


def test_kpis_of_all_stores_over_a_period() -> None:
    # Delivered twice: at-least-once delivery must not double anything.
    kpis = member_kpis([*JOURNAL, *JOURNAL], START, END)

    assert kpis == MemberKpis(
        start=START,
        end=END,
        store_id=None,
        sales_count=5,
        member_sales_count=4,
        gross_sales_minor=500_00,
        returns_minor=50_00,
        net_sales_minor=450_00,
        member_net_sales_minor=380_00,
        active_members=3,
        repeat_members=1,
        repeat_purchase_rate=Decimal("0.3333"),
        average_basket_minor=90_00,
        member_average_basket_minor=95_00,
        member_share_of_sales=Decimal("0.8444"),
    )


def test_kpis_of_one_store_count_its_own_sales_and_returns() -> None:
    kpis = member_kpis(JOURNAL, START, END, store_id="ST1")

    assert (kpis.sales_count, kpis.gross_sales_minor, kpis.returns_minor, kpis.net_sales_minor) == (
        4,
        300_00,
        20_00,
        280_00,
    )
    assert (kpis.active_members, kpis.repeat_members, kpis.repeat_purchase_rate) == (2, 1, Decimal("0.5000"))
    assert kpis.average_basket_minor == 70_00
    assert kpis.member_share_of_sales == Decimal("0.7500")  # (230 − 20) ÷ 280


def test_kpis_by_store_cover_every_store_with_a_fact_in_the_period() -> None:
    by_store = member_kpis_by_store(JOURNAL, START, END)

    assert list(by_store) == ["ST1", "ST2"]
    store_two = by_store["ST2"]
    assert (store_two.active_members, store_two.net_sales_minor, store_two.member_net_sales_minor) == (
        1,
        170_00,
        170_00,
    )
    assert store_two.repeat_purchase_rate == Decimal(0)


def test_empty_periods_have_no_rates() -> None:
    kpis = member_kpis(JOURNAL, datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC))

    assert (kpis.sales_count, kpis.active_members) == (0, 0)
    assert kpis.repeat_purchase_rate is None
    assert kpis.average_basket_minor is None
    assert kpis.member_average_basket_minor is None
    assert kpis.member_share_of_sales is None


def test_only_returns_in_a_period_leave_a_negative_net_and_no_share() -> None:
    kpis = member_kpis([SaleFact("R1", "M1", "ST1", _at(3), 40_00, SaleKind.RETURN)], START, END)

    assert (kpis.sales_count, kpis.net_sales_minor, kpis.active_members) == (0, -40_00, 0)
    assert kpis.member_share_of_sales is None


def test_the_average_basket_rounds_half_to_even_to_the_fen() -> None:
    facts = [SaleFact("S1", None, "ST1", _at(1), 1), SaleFact("S2", None, "ST1", _at(1), 2)]
    assert member_kpis(facts, START, END).average_basket_minor == 2  # 1.5 → 2
    facts = [SaleFact("S1", None, "ST1", _at(1), 1), SaleFact("S2", None, "ST1", _at(1), 4)]
    assert member_kpis(facts, START, END).average_basket_minor == 2  # 2.5 → 2


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        member_kpis(JOURNAL, END, START)
    with pytest.raises(ValueError, match="negative"):
        SaleFact("S1", None, "ST1", _at(1), -1)
    with pytest.raises(ValueError, match="share the id"):
        member_kpis([SaleFact("S1", None, "ST1", _at(1), 1), SaleFact("S1", None, "ST1", _at(1), 2)], START, END)
