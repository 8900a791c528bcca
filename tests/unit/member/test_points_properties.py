"""Points invariants under random sequences of earn, redeem, expire, reverse and adjust.

Any sequence keeps balance == ledger == lots − debt. A redemption or negative adjustment never
takes the balance below zero. The reversals of a sale never exceed what it earned, and
buy → earn → redeem → return leaves the member with no gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from services.member.domain.points import (
    InsufficientPoints,
    PointsAccount,
    PointsPolicy,
    PurchaseLine,
    plan_adjustment,
    plan_earn,
    plan_expiry,
    plan_redemption,
    plan_reversal,
    points_balance_problems,
    points_earned,
    reversal_points,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = PointsPolicy(expiry_days=90)
TIERS = ("basic", "silver", "gold", "platinum")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class SaleRecord:
    lot_id: str
    sale_minor: int
    earned: int
    returned_minor: int = 0
    reversed: int = 0


class PointsLedgerMachine(RuleBasedStateMachine):
    """A member's points driven by random events; the ledger is kept apart from the account."""

    @initialize()
    def start(self) -> None:
        self.account = PointsAccount()
        self.ledger: list[int] = []
        self.now = START
        self.sales: dict[str, SaleRecord] = {}
        self.serial = 0

    def _next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}:{self.serial}"

    def _apply(self, change_delta: int, account: PointsAccount) -> None:
        self.ledger.append(change_delta)
        self.account = account

    @rule(amount_minor=st.integers(1, 300_000), tier=st.sampled_from(TIERS))
    def buy(self, amount_minor: int, tier: str) -> None:
        sale_id = self._next_id("sale")
        earned = points_earned([PurchaseLine("SKU1", None, amount_minor)], tier, POLICY)
        self.sales[sale_id] = SaleRecord(lot_id=f"lot-{sale_id}", sale_minor=amount_minor, earned=earned)
        if earned:
            change = plan_earn(
                earned, lot_id=f"lot-{sale_id}", earned_at=self.now, debt=self.account.debt, policy=POLICY
            )
            self._apply(change.delta, self.account.apply(change))

    @rule(points=st.integers(1, 5_000))
    def redeem(self, points: int) -> None:
        before = self.account
        try:
            change = plan_redemption(before.lots, points, before.balance)
        except InsufficientPoints:
            assert before.balance < points
            return
        self._apply(change.delta, before.apply(change))
        assert self.account.balance >= 0

    @precondition(lambda self: self.account.balance > 0)
    @rule()
    def redeem_everything(self) -> None:
        # The move of a buy-earn-redeem-return loop: spend it all, then return the goods.
        change = plan_redemption(self.account.lots, self.account.balance, self.account.balance)
        self._apply(change.delta, self.account.apply(change))
        assert self.account.balance == 0

    @rule(days=st.integers(0, 120))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)

    @rule()
    def expire(self) -> None:
        change = plan_expiry(self.account.lots, self.now)
        if change is not None:
            assert change.delta < 0
            self._apply(change.delta, self.account.apply(change))
        assert all(lot.remaining == 0 for lot in self.account.lots if lot.expires_at <= self.now)

    @precondition(lambda self: any(sale.returned_minor < sale.sale_minor for sale in self.sales.values()))
    @rule(data=st.data())
    def give_back(self, data: st.DataObject) -> None:
        open_sales = sorted(sale_id for sale_id, sale in self.sales.items() if sale.returned_minor < sale.sale_minor)
        sale = self.sales[data.draw(st.sampled_from(open_sales), label="sale")]
        returned = data.draw(st.integers(1, sale.sale_minor - sale.returned_minor), label="returned_minor")
        points = reversal_points(sale.earned, sale.reversed, returned, sale.sale_minor)
        sale.returned_minor += returned
        sale.reversed += points
        if points:
            change = plan_reversal(self.account.lots, points, sale.lot_id)
            self._apply(change.delta, self.account.apply(change))

    @rule(points=st.integers(-3_000, 3_000).filter(bool))
    def adjust(self, points: int) -> None:
        before = self.account
        try:
            change = plan_adjustment(
                before.lots,
                points,
                balance=before.balance,
                debt=before.debt,
                reason="stock-take goodwill",
                lot_id=self._next_id("adjustment"),
                at=self.now,
                policy=POLICY,
            )
        except InsufficientPoints:
            assert points < 0
            assert before.balance + points < 0
            return
        self._apply(change.delta, before.apply(change))
        if points < 0:
            assert self.account.balance >= 0

    @invariant()
    def balance_equals_ledger_equals_lots_minus_debt(self) -> None:
        account = self.account
        assert account.balance == sum(self.ledger) == account.lots_remaining - account.debt
        assert points_balance_problems(account.balance, sum(self.ledger), account.lots_remaining, account.debt) == []
        assert all(lot.remaining >= 0 for lot in account.lots)

    @invariant()
    def reversals_never_exceed_what_a_sale_earned(self) -> None:
        for sale in self.sales.values():
            assert 0 <= sale.reversed <= sale.earned
            if sale.returned_minor == sale.sale_minor:
                assert sale.reversed == sale.earned


PointsLedgerMachine.TestCase.settings = settings(
    max_examples=80, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestPointsLedgerMachine = PointsLedgerMachine.TestCase


@st.composite
def accounts(draw: st.DrawFn) -> PointsAccount:
    """A consistent account: some lots, or debt with empty lots."""
    if draw(st.booleans()):
        debt = draw(st.integers(1, 5_000))
        return PointsAccount(balance=-debt, debt=debt)
    account = PointsAccount()
    for index, points in enumerate(draw(st.lists(st.integers(1, 5_000), max_size=5))):
        earned_at = START - timedelta(days=draw(st.integers(0, 80)))
        account = account.apply(plan_earn(points, lot_id=f"old:{index}", earned_at=earned_at, debt=0, policy=POLICY))
    return account


@FAST
@given(
    start=accounts(),
    sale_minor=st.integers(1, 2_000_000),
    tier=st.sampled_from(TIERS),
    redeem_share=st.fractions(0, 1),
    return_parts=st.lists(st.integers(1, 100), min_size=1, max_size=4),
    days_before_return=st.integers(0, 200),
)
def test_buy_earn_redeem_return_leaves_no_gain(
    start: PointsAccount,
    sale_minor: int,
    tier: str,
    redeem_share: Fraction,
    return_parts: list[int],
    days_before_return: int,
) -> None:
    account = start
    earned = points_earned([PurchaseLine("SKU1", None, sale_minor)], tier, POLICY)
    if earned:
        account = account.apply(plan_earn(earned, lot_id="lot-sale", earned_at=START, debt=account.debt, policy=POLICY))
    # Spend as much of the balance as the draw says, then let time (and maybe expiry) pass.
    redeemed = int(max(account.balance, 0) * redeem_share)
    if redeemed:
        account = account.apply(plan_redemption(account.lots, redeemed, account.balance))
    expired = 0
    expiry = plan_expiry(account.lots, START + timedelta(days=days_before_return))
    if expiry is not None:
        expired = -expiry.delta
        account = account.apply(expiry)
    # Return the whole sale in parts proportional to return_parts (the last part takes the rest).
    total_parts = sum(return_parts)
    returned_so_far = reversed_so_far = 0
    for index, part in enumerate(return_parts):
        is_last = index == len(return_parts) - 1
        returned = sale_minor - returned_so_far if is_last else sale_minor * part // total_parts
        if returned <= 0:
            continue
        returned_so_far += returned
        points = reversal_points(earned, reversed_so_far, returned, sale_minor)
        reversed_so_far += points
        if points:
            account = account.apply(plan_reversal(account.lots, points, "lot-sale"))

    assert reversed_so_far == earned
    assert account.balance == start.balance - redeemed - expired
    assert account.balance == account.lots_remaining - account.debt
    assert points_balance_problems(account.balance, account.balance, account.lots_remaining, account.debt) == []


@FAST
@given(
    earned=st.integers(0, 100_000),
    sale_minor=st.integers(1, 10_000_000),
    returns=st.lists(st.integers(1, 10_000_000), max_size=8),
)
def test_total_reversals_of_a_sale_never_exceed_what_it_earned(
    earned: int, sale_minor: int, returns: list[int]
) -> None:
    reversed_so_far = 0
    returned_so_far = 0
    for returned in returns:
        points = reversal_points(earned, reversed_so_far, returned, sale_minor)
        assert points >= 0
        reversed_so_far += points
        returned_so_far += returned
        assert reversed_so_far <= earned
        if returned_so_far >= sale_minor:
            assert reversed_so_far == earned


@FAST
@given(
    lots=st.lists(st.integers(0, 1_000), max_size=6),
    debt=st.integers(0, 1_000),
    points=st.integers(1, 8_000),
)
def test_redemption_never_takes_the_balance_below_zero(lots: list[int], debt: int, points: int) -> None:
    account = PointsAccount()
    for index, remaining in enumerate(lots):
        if remaining:
            account = account.apply(plan_earn(remaining, lot_id=f"l{index}", earned_at=START, debt=0, policy=POLICY))
    if debt:  # a reversal beyond the lots
        account = account.apply(plan_reversal(account.lots, account.lots_remaining + debt, None))
    try:
        after = account.apply(plan_redemption(account.lots, points, account.balance))
    except InsufficientPoints:
        assert account.balance < points
    else:
        assert after.balance == account.balance - points >= 0
