"""Points: what a sale earns, and how earning, redeeming, expiring, reversing and adjusting move
points between lots, debt and the ledger. Pure rules; the caller does the I/O.

Vocabulary
----------
* **ledger entry**: one signed whole number per event (earn +, redeem −, expire −, reverse −,
  adjust ±). A member's **balance** is the sum of their ledger entries. Nothing else changes it.
* **lot**: the points of one earn or one positive adjustment, with the moment they expire.
  ``remaining`` goes down when a redemption, expiry, reversal or negative adjustment draws on it.
* **debt**: points a reversal had to take back but found no lot to take them from (the member had
  already redeemed them). Debt makes the balance negative. Later earns and positive adjustments
  pay it off before they fill their lot.

Invariants (each ``plan_*`` function returns a :class:`PointsChange` that keeps them)
----------------------------------------------------------------------------------------
1. ``balance == sum(ledger entries) == sum(lot.remaining) − debt``.
2. ``lot.remaining >= 0`` and ``debt >= 0``. Debt is above zero only while every lot is empty
   (a reversal creates debt only after emptying every lot, and an earn pays debt off first).
3. Only a reversal can take the balance below zero. A redemption or a negative adjustment
   never does: when the balance is too small it raises :class:`InsufficientPoints` and plans
   nothing.
4. The reversals of one sale never add up to more than the sale earned, and a full return
   (in one go or in parts) reverses exactly what it earned (:func:`reversal_points`). So
   buy → earn → redeem → return leaves the balance at ``before − redeemed``: the member keeps
   what they redeemed and pays for it from their own points, or owes it as debt.

API
---
* ``points_earned(lines, tier, policy) -> int``: points for one sale (see the rounding below).
* ``plan_earn(points, *, lot_id, earned_at, debt, policy) -> PointsChange``
* ``plan_redemption(lots, points, balance) -> PointsChange``: soonest-expiring lots first.
* ``plan_expiry(lots, now) -> PointsChange | None``: every lot whose ``expires_at <= now``,
  oldest first; ``None`` when nothing expires.
* ``reversal_points(earned_for_sale, reversed_so_far, returned_minor, sale_minor) -> int``
* ``plan_reversal(lots, points, sale_lot_id) -> PointsChange``: the sale's own lot first, then
  other lots soonest-expiring first, and whatever is still missing becomes debt.
* ``plan_adjustment(lots, points, *, balance, debt, reason, lot_id, at, policy) -> PointsChange``:
  staff only, a reason is required. A positive adjustment works like an earn. A negative one
  draws like a redemption and may not take the balance below zero.
* ``PointsAccount.apply(change)``: the in-memory reference for applying a change. The database
  does the same steps in one transaction, with the member row locked (``SELECT … FOR UPDATE``)
  so that the balance and lots it planned from are still current when it writes:

  1. insert one ledger entry of ``change.delta`` (with ``change.kind`` and ``change.reason``);
  2. subtract each ``LotDraw.points`` from its lot's ``remaining``;
  3. insert ``change.new_lot`` if there is one;
  4. add ``change.debt_change`` to the debt and ``change.delta`` to the balance.

* ``plan_debt_settlement(lots, debt) -> PointsChange | None``: after a merge has added one
  member's debt to another's lots, nets them (zero-sum entry) so invariant 2 holds again.
* ``points_balance_problems(balance, ledger_total, lots_remaining_total, debt) -> list[str]``:
  the check that proves invariant 1 for stored data. It returns an empty list when the data is
  consistent.

Earning rule and rounding
-------------------------
Each line's paid amount (in fen, after discounts) is multiplied by its category multiplier,
or by 1 when the line has no category or its category is not listed. The lines are summed,
converted to yuan and multiplied by ``points_per_yuan`` and by the member's tier multiplier
(1 when the tier is not listed). The result is **floored once per sale**, not per line. The
arithmetic is exact (``Fraction``), so the only rounding is that one floor.

Reversals are rounded **up** (``ceil(earned × returned ÷ sale)``), capped at what the sale has
left to reverse. Rounding up means a member never keeps a fraction of a point for goods they
brought back. The cap keeps partial returns that add up to the whole sale at exactly what the
sale earned.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from servicekit.errors import FailedPrecondition, InvalidArgument

FEN_PER_YUAN = 100
MAX_REASON_LENGTH = 500


class PointsEntryKind(enum.StrEnum):
    """Why a ledger entry exists; also the event name stem (points earned/redeemed/...)."""

    EARN = "earn"
    REDEEM = "redeem"
    EXPIRE = "expire"
    REVERSE = "reverse"
    ADJUST = "adjust"
    SETTLE_DEBT = "settle_debt"  # zero-sum: lots pay off debt (only needed after accounts are merged)


class InsufficientPoints(FailedPrecondition):
    """A redemption or negative adjustment asked for more points than the balance holds."""

    reason = "insufficient-points"

    def __init__(self, requested: int, available: int) -> None:
        super().__init__(
            f"requested {requested} points but only {available} are available",
            details={"requested": requested, "available": available},
        )
        self.requested = requested
        self.available = available


class InvalidPointsAmount(InvalidArgument):
    """The number of points is zero or negative where it must be positive (or zero for an adjustment)."""

    reason = "invalid-points-amount"


class AdjustmentReasonRequired(InvalidArgument):
    """A staff adjustment needs a non-blank reason (at most 500 characters)."""

    reason = "adjustment-reason-required"


class PointsOutOfBalance(RuntimeError):
    """The stored lots do not cover the stored balance: the data broke invariant 1 and needs a look."""


def _require_rate(name: str, value: Decimal) -> None:
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative decimal, got {value}")


def _default_tier_multipliers() -> Mapping[str, Decimal]:
    return {"basic": Decimal(1), "silver": Decimal("1.2"), "gold": Decimal("1.5"), "platinum": Decimal(2)}


@dataclass(frozen=True, slots=True)
class PointsPolicy:
    """How a sale earns points and how long they last.

    ``points_per_yuan`` is the base rate per yuan of eligible spend. ``tier_multipliers`` and
    ``category_multipliers`` scale it; a multiplier of 0 excludes a category (e.g. tobacco,
    infant formula). Lots expire ``expiry_days`` after they were earned.
    """

    points_per_yuan: Decimal = Decimal(1)
    tier_multipliers: Mapping[str, Decimal] = field(default_factory=_default_tier_multipliers)
    category_multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    expiry_days: int = 365

    def __post_init__(self) -> None:
        _require_rate("points_per_yuan", self.points_per_yuan)
        for name, table in (("tier", self.tier_multipliers), ("category", self.category_multipliers)):
            for key, multiplier in table.items():
                _require_rate(f"{name} multiplier for {key!r}", multiplier)
        if self.expiry_days <= 0:
            raise ValueError(f"expiry_days must be positive, got {self.expiry_days}")
        # Read-only views: a shared policy must not change under a running consumer.
        object.__setattr__(self, "tier_multipliers", MappingProxyType(dict(self.tier_multipliers)))
        object.__setattr__(self, "category_multipliers", MappingProxyType(dict(self.category_multipliers)))

    def expires_at(self, earned_at: datetime) -> datetime:
        """When points earned at ``earned_at`` expire (the first moment they are no longer valid)."""
        return earned_at + timedelta(days=self.expiry_days)


DEFAULT_POINTS_POLICY = PointsPolicy()


@dataclass(frozen=True, slots=True)
class PurchaseLine:
    """One line of a sale: the SKU, its category (``None`` if unknown) and the amount paid in fen."""

    sku: str
    category: str | None
    amount_minor: int

    def __post_init__(self) -> None:
        if self.amount_minor < 0:
            raise InvalidArgument(
                f"line {self.sku}: amount_minor must not be negative, got {self.amount_minor}",
                reason="invalid-amount",
            )


@dataclass(frozen=True, slots=True)
class PointsLot:
    """The points of one earn or positive adjustment: ``remaining`` of them are valid until ``expires_at``."""

    lot_id: str
    earned_at: datetime
    expires_at: datetime
    remaining: int

    def __post_init__(self) -> None:
        if self.remaining < 0:
            raise ValueError(f"lot {self.lot_id}: remaining must not be negative, got {self.remaining}")
        if self.expires_at <= self.earned_at:
            raise ValueError(f"lot {self.lot_id}: expires_at must be after earned_at")


@dataclass(frozen=True, slots=True)
class LotDraw:
    """Take ``points`` (> 0) from the lot ``lot_id``."""

    lot_id: str
    points: int

    def __post_init__(self) -> None:
        if self.points <= 0:
            raise ValueError(f"a draw on lot {self.lot_id} must take a positive number of points")


@dataclass(frozen=True, slots=True)
class PointsChange:
    """One planned ledger entry and its effect on the lots and the debt.

    ``delta`` is the signed ledger entry and the change in balance. It always equals
    ``new_lot.remaining − Σ draws − debt_change``, so applying the change keeps
    ``balance == Σ lot.remaining − debt``; the constructor refuses anything else.
    ``debt_change`` is positive when a reversal creates debt and negative when an earn or
    positive adjustment pays debt off.
    """

    kind: PointsEntryKind
    delta: int
    draws: tuple[LotDraw, ...] = ()
    new_lot: PointsLot | None = None
    debt_change: int = 0
    reason: str = ""

    def __post_init__(self) -> None:
        if len({draw.lot_id for draw in self.draws}) != len(self.draws):
            raise ValueError("a change draws on each lot at most once")
        added = self.new_lot.remaining if self.new_lot is not None else 0
        if self.delta != added - self.drawn - self.debt_change:
            raise ValueError(
                f"unbalanced change: delta {self.delta} != new lot {added} − drawn {self.drawn}"
                f" − debt change {self.debt_change}"
            )

    @property
    def drawn(self) -> int:
        """Points taken out of existing lots."""
        return sum(draw.points for draw in self.draws)


@dataclass(frozen=True, slots=True)
class PointsAccount:
    """A member's points in memory: balance, debt and lots. ``apply`` is the reference for the SQL."""

    balance: int = 0
    debt: int = 0
    lots: tuple[PointsLot, ...] = ()

    @property
    def lots_remaining(self) -> int:
        """Points still valid in lots (expired but not yet swept lots included)."""
        return sum(lot.remaining for lot in self.lots)

    def apply(self, change: PointsChange) -> PointsAccount:
        """The account after ``change``; refuses a draw on a missing lot or beyond a lot's remaining."""
        by_id = {lot.lot_id: lot for lot in self.lots}
        for draw in change.draws:
            lot = by_id.get(draw.lot_id)
            if lot is None or lot.remaining < draw.points:
                raise ValueError(f"cannot draw {draw.points} from lot {draw.lot_id}")
            by_id[draw.lot_id] = replace(lot, remaining=lot.remaining - draw.points)
        if change.new_lot is not None:
            if change.new_lot.lot_id in by_id:
                raise ValueError(f"lot {change.new_lot.lot_id} already exists")
            by_id[change.new_lot.lot_id] = change.new_lot
        debt = self.debt + change.debt_change
        if debt < 0:
            raise ValueError("a change may not pay off more debt than there is")
        return PointsAccount(balance=self.balance + change.delta, debt=debt, lots=tuple(by_id.values()))


def points_earned(lines: Iterable[PurchaseLine], tier: str, policy: PointsPolicy = DEFAULT_POINTS_POLICY) -> int:
    """Points one sale earns: the category-weighted amount in yuan × rate × tier multiplier, floored once."""
    weighted_fen = sum(
        (Fraction(line.amount_minor) * Fraction(_category_multiplier(line.category, policy)) for line in lines),
        Fraction(0),
    )
    tier_multiplier = Fraction(policy.tier_multipliers.get(tier, Decimal(1)))
    exact = weighted_fen / FEN_PER_YUAN * Fraction(policy.points_per_yuan) * tier_multiplier
    return math.floor(exact)


def plan_earn(
    points: int, *, lot_id: str, earned_at: datetime, debt: int, policy: PointsPolicy = DEFAULT_POINTS_POLICY
) -> PointsChange:
    """Credit ``points`` (> 0) earned by a sale: debt is paid off first and the rest fills a new lot.

    The lot is created even when debt absorbs all of it (``remaining`` 0), so every earn has a
    lot to name, and a later reversal can look for it as the sale's own lot.
    """
    _require_positive(points)
    if debt < 0:
        raise ValueError(f"debt must not be negative, got {debt}")
    settled = min(points, debt)
    lot = PointsLot(lot_id, earned_at, policy.expires_at(earned_at), points - settled)
    return PointsChange(PointsEntryKind.EARN, points, new_lot=lot, debt_change=-settled)


def plan_redemption(lots: Sequence[PointsLot], points: int, balance: int) -> PointsChange:
    """Take ``points`` (> 0) from the soonest-expiring lots; never takes the balance below zero.

    Raises :class:`InsufficientPoints` when ``balance < points``. The caller expires
    due lots first (:func:`plan_expiry`, same transaction), so points past their expiry are
    not spent. Raises :class:`PointsOutOfBalance` if the lots cannot cover a balance that
    says they should.
    """
    _require_positive(points)
    if balance < points:
        raise InsufficientPoints(requested=points, available=max(balance, 0))
    draws = _draw(_soonest_expiring_first(lots), points)
    if sum(draw.points for draw in draws) != points:
        raise PointsOutOfBalance(f"balance {balance} but lots hold only {sum(lot.remaining for lot in lots)}")
    return PointsChange(PointsEntryKind.REDEEM, -points, draws=draws)


def plan_expiry(lots: Sequence[PointsLot], now: datetime) -> PointsChange | None:
    """Expire what remains of every lot with ``expires_at <= now``, oldest first; ``None`` if nothing is due."""
    due = [lot for lot in _soonest_expiring_first(lots) if lot.expires_at <= now and lot.remaining > 0]
    draws = tuple(LotDraw(lot.lot_id, lot.remaining) for lot in due)
    if not draws:
        return None
    return PointsChange(PointsEntryKind.EXPIRE, -sum(draw.points for draw in draws), draws=draws)


def reversal_points(earned_for_sale: int, reversed_so_far: int, returned_minor: int, sale_minor: int) -> int:
    """Points to take back for one return of ``returned_minor`` fen out of a ``sale_minor`` fen sale.

    ``ceil(earned × returned ÷ sale)``, capped at ``earned − reversed_so_far``, so the
    reversals of a sale never add up to more than it earned, and returns that add up to the
    whole sale reverse exactly what it earned. A return larger than the sale counts as a
    full return (the journal is fact, so this never raises on it).
    """
    if earned_for_sale < 0 or not 0 <= reversed_so_far <= earned_for_sale:
        raise ValueError(f"reversed_so_far {reversed_so_far} must be within 0..earned {earned_for_sale}")
    if returned_minor <= 0 or sale_minor <= 0:
        raise InvalidArgument("returned and sale amounts must be positive", reason="invalid-amount")
    left = earned_for_sale - reversed_so_far
    share = Fraction(min(returned_minor, sale_minor), sale_minor)
    return min(left, math.ceil(earned_for_sale * share))


def plan_reversal(lots: Sequence[PointsLot], points: int, sale_lot_id: str | None) -> PointsChange:
    """Take back ``points`` (> 0) for a return: from the sale's own lot, then the soonest-expiring
    other lots. Whatever no lot can give becomes debt, and the balance goes negative.

    Taking the shortfall as debt is what stops buy → earn → redeem → return loops: the
    redeemed points are still owed, and the next earns pay them off first.
    """
    _require_positive(points)
    own = [lot for lot in lots if lot.lot_id == sale_lot_id]
    others = _soonest_expiring_first(lot for lot in lots if lot.lot_id != sale_lot_id)
    draws = _draw([*own, *others], points)
    shortfall = points - sum(draw.points for draw in draws)
    return PointsChange(PointsEntryKind.REVERSE, -points, draws=draws, debt_change=shortfall)


def plan_adjustment(
    lots: Sequence[PointsLot],
    points: int,
    *,
    balance: int,
    debt: int,
    reason: str,
    lot_id: str,
    at: datetime,
    policy: PointsPolicy = DEFAULT_POINTS_POLICY,
) -> PointsChange:
    """A staff correction of ``points`` (non-zero) with a mandatory ``reason``.

    A positive adjustment works like an earn: it pays off debt first, then fills a new lot
    ``lot_id`` that expires like any earned lot. A negative one draws like a redemption and
    raises :class:`InsufficientPoints` rather than take the balance below zero.
    """
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise AdjustmentReasonRequired(f"an adjustment needs a reason of 1 to {MAX_REASON_LENGTH} characters")
    if points == 0:
        raise InvalidPointsAmount("an adjustment must change the balance")
    if points > 0:
        earn = plan_earn(points, lot_id=lot_id, earned_at=at, debt=debt, policy=policy)
        return replace(earn, kind=PointsEntryKind.ADJUST, reason=reason)
    redemption = plan_redemption(lots, -points, balance)
    return replace(redemption, kind=PointsEntryKind.ADJUST, reason=reason)


def plan_debt_settlement(lots: Sequence[PointsLot], debt: int) -> PointsChange | None:
    """Net debt against lots (soonest-expiring first); a zero ``delta`` entry. ``None`` if there is nothing to net.

    The plans never leave debt beside a non-empty lot, but summing two accounts (a member
    merge) can; this restores invariant 2 without changing the balance.
    """
    if debt < 0:
        raise ValueError(f"debt must not be negative, got {debt}")
    draws = _draw(_soonest_expiring_first(lots), debt)
    if not draws:
        return None
    return PointsChange(PointsEntryKind.SETTLE_DEBT, 0, draws=draws, debt_change=-sum(d.points for d in draws))


def points_balance_problems(balance: int, ledger_total: int, lots_remaining_total: int, debt: int) -> list[str]:
    """What is wrong with a member's stored points (empty when ``balance == ledger == lots − debt``)."""
    problems = []
    if balance != ledger_total:
        problems.append(f"balance {balance} != ledger total {ledger_total}")
    if balance != lots_remaining_total - debt:
        problems.append(f"balance {balance} != lots {lots_remaining_total} − debt {debt}")
    if debt < 0:
        problems.append(f"debt {debt} is negative")
    if debt > 0 and lots_remaining_total > 0:
        problems.append(f"debt {debt} while lots still hold {lots_remaining_total}")
    return problems


def _soonest_expiring_first(lots: Iterable[PointsLot]) -> list[PointsLot]:
    return sorted(lots, key=lambda lot: (lot.expires_at, lot.earned_at, lot.lot_id))


def _draw(ordered: Iterable[PointsLot], points: int) -> tuple[LotDraw, ...]:
    """Take up to ``points`` from the lots in order; may take less if they run dry."""
    draws = []
    wanted = points
    for lot in ordered:
        if wanted == 0:
            break
        take = min(lot.remaining, wanted)
        if take > 0:
            draws.append(LotDraw(lot.lot_id, take))
            wanted -= take
    return tuple(draws)


def _category_multiplier(category: str | None, policy: PointsPolicy) -> Decimal:
    if category is None:
        return Decimal(1)
    return policy.category_multipliers.get(category, Decimal(1))


def _require_positive(points: int) -> None:
    if points <= 0:
        raise InvalidPointsAmount(f"points must be positive, got {points}")
