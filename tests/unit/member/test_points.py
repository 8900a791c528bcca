"""Points: earning rules and rounding, lot draws, reversal caps and debt, on hand-made examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from servicekit.errors import InvalidArgument
from services.member.domain.points import (
    AdjustmentReasonRequired,
    InsufficientPoints,
    InvalidPointsAmount,
    LotDraw,
    PointsAccount,
    PointsChange,
    PointsEntryKind,
    PointsLot,
    PointsOutOfBalance,
    PointsPolicy,
    PurchaseLine,
    plan_adjustment,
    plan_debt_settlement,
    plan_earn,
    plan_expiry,
    plan_redemption,
    plan_reversal,
    points_balance_problems,
    points_earned,
    reversal_points,
)

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
POLICY = PointsPolicy(category_multipliers={"fresh": Decimal(2), "tobacco": Decimal(0)})


def _lot(lot_id: str, remaining: int, expires_in_days: int, earned_days_ago: int = 10) -> PointsLot:
    return PointsLot(lot_id, NOW - timedelta(days=earned_days_ago), NOW + timedelta(days=expires_in_days), remaining)


@pytest.mark.parametrize(
    ("lines", "tier", "expected"),
    [
        ([PurchaseLine("A", None, 12345)], "basic", 123),  # ¥123.45 → 123.45 points, floored
        ([PurchaseLine("A", None, 60), PurchaseLine("B", None, 60)], "basic", 1),  # floored per sale, not per line
        ([PurchaseLine("A", None, 9999)], "gold", 149),  # ¥99.99 × 1.5 = 149.985
        ([PurchaseLine("A", None, 10000)], "silver", 120),
        ([PurchaseLine("A", None, 10000)], "platinum", 200),
        ([PurchaseLine("A", "fresh", 5050)], "basic", 101),  # ¥50.50 × 2
        ([PurchaseLine("A", "tobacco", 50000), PurchaseLine("B", None, 999)], "basic", 9),  # tobacco earns nothing
        ([PurchaseLine("A", "toys", 10000)], "basic", 100),  # unlisted category earns at the base rate
        ([PurchaseLine("A", None, 10000)], "diamond", 100),  # unlisted tier earns at the base rate
        ([], "basic", 0),
        ([PurchaseLine("A", None, 99)], "basic", 0),
    ],
)
def test_a_sale_earns_its_weighted_yuan_floored_once(lines: list[PurchaseLine], tier: str, expected: int) -> None:
    assert points_earned(lines, tier, POLICY) == expected


def test_the_earning_rate_is_configurable_and_exact() -> None:
    one_per_ten_yuan = PointsPolicy(points_per_yuan=Decimal("0.1"))
    assert points_earned([PurchaseLine("A", None, 99_999)], "basic", one_per_ten_yuan) == 99
    assert points_earned([PurchaseLine("A", None, 100_000)], "basic", one_per_ten_yuan) == 100
    # 0.1 × 1.2 is exactly 0.12 per yuan: 1,000 yuan earn 120 points, not 119.99…
    assert points_earned([PurchaseLine("A", None, 100_000)], "silver", one_per_ten_yuan) == 120


def test_bad_policies_and_lines_are_refused() -> None:
    with pytest.raises(ValueError, match="expiry_days"):
        PointsPolicy(expiry_days=0)
    with pytest.raises(ValueError, match="non-negative"):
        PointsPolicy(tier_multipliers={"gold": Decimal(-1)})
    with pytest.raises(InvalidArgument, match="negative"):
        PurchaseLine("A", None, -1)


def test_an_earn_creates_a_lot_that_expires_after_the_policy_period() -> None:
    change = plan_earn(120, lot_id="sale:S1", earned_at=NOW, debt=0, policy=PointsPolicy(expiry_days=365))

    assert change.kind is PointsEntryKind.EARN
    assert change.delta == 120
    assert change.new_lot == PointsLot("sale:S1", NOW, NOW + timedelta(days=365), 120)
    assert change.debt_change == 0


@pytest.mark.parametrize(("debt", "lot_remaining", "debt_change"), [(30, 70, -30), (100, 0, -100), (150, 0, -100)])
def test_an_earn_pays_off_debt_before_it_fills_its_lot(debt: int, lot_remaining: int, debt_change: int) -> None:
    change = plan_earn(100, lot_id="sale:S1", earned_at=NOW, debt=debt)

    assert change.delta == 100
    assert change.new_lot is not None
    assert change.new_lot.remaining == lot_remaining
    assert change.debt_change == debt_change


def test_redemption_draws_the_soonest_expiring_lots_first() -> None:
    lots = [_lot("late", 500, 300), _lot("soon", 100, 10), _lot("middle", 200, 100)]

    change = plan_redemption(lots, 250, balance=800)

    assert change.kind is PointsEntryKind.REDEEM
    assert change.delta == -250
    assert change.draws == (LotDraw("soon", 100), LotDraw("middle", 150))


def test_redemption_breaks_expiry_ties_by_earning_time_then_lot_id() -> None:
    lots = [_lot("b", 10, 30, earned_days_ago=5), _lot("c", 10, 30, earned_days_ago=9), _lot("a", 10, 30, 5)]

    assert plan_redemption(lots, 25, balance=30).draws == (LotDraw("c", 10), LotDraw("a", 10), LotDraw("b", 5))


@pytest.mark.parametrize(("balance", "requested", "available"), [(100, 101, 100), (0, 1, 0), (-40, 10, 0)])
def test_redemption_beyond_the_balance_is_refused_with_what_is_available(
    balance: int, requested: int, available: int
) -> None:
    with pytest.raises(InsufficientPoints) as raised:
        plan_redemption([_lot("a", max(balance, 0), 30)], requested, balance)

    assert (raised.value.requested, raised.value.available) == (requested, available)
    assert raised.value.details == {"requested": requested, "available": available}
    assert raised.value.reason == "insufficient-points"


@pytest.mark.parametrize("points", [0, -5])
def test_redeeming_no_or_negative_points_is_invalid(points: int) -> None:
    with pytest.raises(InvalidPointsAmount):
        plan_redemption([_lot("a", 100, 30)], points, 100)


def test_redemption_reports_lots_that_do_not_cover_the_balance() -> None:
    with pytest.raises(PointsOutOfBalance):
        plan_redemption([_lot("a", 10, 30)], 50, balance=100)


def test_expiry_takes_what_remains_of_every_due_lot_oldest_first() -> None:
    lots = [
        _lot("fresh", 300, 1),
        PointsLot("old", NOW - timedelta(days=400), NOW - timedelta(days=35), 50),
        PointsLot("due-now", NOW - timedelta(days=365), NOW, 70),
        PointsLot("spent", NOW - timedelta(days=500), NOW - timedelta(days=135), 0),
    ]

    change = plan_expiry(lots, NOW)

    assert change is not None
    assert change.kind is PointsEntryKind.EXPIRE
    assert change.draws == (LotDraw("old", 50), LotDraw("due-now", 70))
    assert change.delta == -120
    assert plan_expiry(lots, NOW - timedelta(days=36)) is None


@pytest.mark.parametrize(
    ("earned", "reversed_so_far", "returned", "sale", "expected"),
    [
        (100, 0, 300, 1000, 30),
        (100, 0, 1000, 1000, 100),  # a full return reverses exactly what was earned
        (10, 0, 100, 300, 4),  # 3.33… rounds up: no fraction of a point is kept for returned goods
        (10, 4, 100, 300, 4),
        (10, 8, 100, 300, 2),  # capped: three thirds reverse 4 + 4 + 2 = 10, never 12
        (10, 10, 100, 300, 0),
        (100, 40, 5000, 1000, 60),  # more returned than sold counts as a full return
        (0, 0, 500, 1000, 0),
    ],
)
def test_reversal_is_the_returned_share_rounded_up_and_capped(
    earned: int, reversed_so_far: int, returned: int, sale: int, expected: int
) -> None:
    assert reversal_points(earned, reversed_so_far, returned, sale) == expected


def test_reversal_refuses_inconsistent_arguments() -> None:
    with pytest.raises(ValueError, match="reversed_so_far"):
        reversal_points(10, 11, 100, 100)
    with pytest.raises(InvalidArgument, match="positive"):
        reversal_points(10, 0, 0, 100)


def test_reversal_takes_from_the_sales_own_lot_first_then_soonest_expiring_then_debt() -> None:
    lots = [_lot("other-late", 30, 200), _lot("sale:S1", 40, 300), _lot("other-soon", 20, 5)]

    change = plan_reversal(lots, 100, "sale:S1")

    assert change.kind is PointsEntryKind.REVERSE
    assert change.delta == -100
    assert change.draws == (LotDraw("sale:S1", 40), LotDraw("other-soon", 20), LotDraw("other-late", 30))
    assert change.debt_change == 10


def test_a_reversal_after_redemption_leaves_debt_and_a_negative_balance() -> None:
    account = PointsAccount()
    account = account.apply(plan_earn(100, lot_id="sale:S1", earned_at=NOW, debt=0))
    account = account.apply(plan_redemption(account.lots, 100, account.balance))
    account = account.apply(plan_reversal(account.lots, reversal_points(100, 0, 5000, 5000), "sale:S1"))

    assert (account.balance, account.debt, account.lots_remaining) == (-100, 100, 0)
    # The next earn pays the debt off before the member can spend anything.
    account = account.apply(plan_earn(60, lot_id="sale:S2", earned_at=NOW, debt=account.debt))
    assert (account.balance, account.debt, account.lots_remaining) == (-40, 40, 0)
    with pytest.raises(InsufficientPoints):
        plan_redemption(account.lots, 1, account.balance)


def test_an_adjustment_needs_a_reason() -> None:
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(AdjustmentReasonRequired):
            plan_adjustment([], 10, balance=0, debt=0, reason=reason, lot_id="adj:1", at=NOW)
    with pytest.raises(InvalidPointsAmount):
        plan_adjustment([], 0, balance=0, debt=0, reason="goodwill", lot_id="adj:1", at=NOW)


def test_a_positive_adjustment_creates_a_lot_and_pays_off_debt_first() -> None:
    change = plan_adjustment([], 50, balance=-20, debt=20, reason="  complaint #88 ", lot_id="adj:1", at=NOW)

    assert change.kind is PointsEntryKind.ADJUST
    assert change.reason == "complaint #88"
    assert change.delta == 50
    assert change.new_lot is not None
    assert change.new_lot.remaining == 30
    assert change.debt_change == -20


def test_a_negative_adjustment_draws_like_a_redemption_but_not_below_zero() -> None:
    lots = [_lot("late", 100, 300), _lot("soon", 50, 10)]

    change = plan_adjustment(lots, -80, balance=150, debt=0, reason="duplicate grant", lot_id="adj:2", at=NOW)

    assert change.kind is PointsEntryKind.ADJUST
    assert change.delta == -80
    assert change.draws == (LotDraw("soon", 50), LotDraw("late", 30))
    with pytest.raises(InsufficientPoints) as raised:
        plan_adjustment(lots, -151, balance=150, debt=0, reason="duplicate grant", lot_id="adj:2", at=NOW)
    assert (raised.value.requested, raised.value.available) == (151, 150)


def test_a_change_that_would_break_the_balance_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        PointsChange(PointsEntryKind.REDEEM, -10, draws=(LotDraw("a", 9),))
    with pytest.raises(ValueError, match="at most once"):
        PointsChange(PointsEntryKind.REDEEM, -2, draws=(LotDraw("a", 1), LotDraw("a", 1)))


def test_applying_refuses_overdrawn_or_missing_lots() -> None:
    account = PointsAccount(balance=10, lots=(_lot("a", 10, 30),))
    with pytest.raises(ValueError, match="cannot draw"):
        account.apply(PointsChange(PointsEntryKind.REDEEM, -11, draws=(LotDraw("a", 11),)))
    with pytest.raises(ValueError, match="cannot draw"):
        account.apply(PointsChange(PointsEntryKind.REDEEM, -1, draws=(LotDraw("b", 1),)))


def test_debt_settlement_nets_merged_debt_against_lots_without_changing_the_balance() -> None:
    # A merge summed one member's lots with another's debt.
    account = PointsAccount(balance=50, debt=70, lots=(_lot("late", 100, 300), _lot("soon", 20, 10)))

    change = plan_debt_settlement(account.lots, account.debt)

    assert change is not None
    assert change.delta == 0
    assert change.draws == (LotDraw("soon", 20), LotDraw("late", 50))
    settled = account.apply(change)
    assert (settled.balance, settled.debt, settled.lots_remaining) == (50, 0, 50)
    assert plan_debt_settlement(settled.lots, settled.debt) is None


def test_the_balance_check_names_each_broken_invariant() -> None:
    assert points_balance_problems(balance=50, ledger_total=50, lots_remaining_total=50, debt=0) == []
    assert points_balance_problems(balance=-30, ledger_total=-30, lots_remaining_total=0, debt=30) == []
    assert points_balance_problems(balance=50, ledger_total=49, lots_remaining_total=60, debt=10) == [
        "balance 50 != ledger total 49",
        "debt 10 while lots still hold 60",
    ]
    assert points_balance_problems(balance=50, ledger_total=50, lots_remaining_total=40, debt=0) == [
        "balance 50 != lots 40 − debt 0"
    ]
