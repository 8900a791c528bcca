"""A coupon's life: issued, held for a basket, redeemed by a sale, given back — each use counted once.

Vocabulary
----------
* **definition**: an :class:`~services.marketing.domain.offers.Offer` and its
  :class:`~services.marketing.domain.offers.CouponTerms`, usually a campaign's offer.
* **coupon**: one code. A *personal* coupon is issued to one member and used once; a *generic*
  coupon (one code on a poster) may be used by many members up to ``use_limit`` times in total.
* **hold**: a use reserved for one basket while the member pays (``POST /v1/coupons/{code}/hold``).
  It counts against every limit at once — the coupon's uses, the member's limit for the
  definition and the campaign's budget — so two baskets cannot both be promised the last use.
  A hold becomes a **redemption** when the sale that used the code arrives in the SALES journal,
  and is given back when released or when it expires first.
* **redemption**: one use, by one sale. A sale is a fact: when a till that was offline accepted
  a code that had meanwhile been used elsewhere, the sale still happened, so the second use is
  recorded as a **redemption conflict** (its value and store, for the store to follow up) and
  never counted as a redemption or against the budget.

The member is always known by member id, never by a phone number or an e-mail address, so
changing one does not reset a per-member limit (Saleor #18563).

Invariants the adapter keeps under concurrency (with the rows named locked in one transaction):
``uses + holds ≤ use_limit`` per coupon; per member and definition ``redeemed + held ≤
per_member_limit``; per campaign ``spent + held ≤ max_discount`` and ``issued ≤ max_coupons``;
a sale's use of a code is counted once however often the journal delivers it.

Returns (documented policy): a full return of the sale that redeemed a coupon gives the use
back if the coupon is still within its validity window — the coupon can be used again and the
campaign's spend goes down by its discount; an expired coupon is not revived, and a partial
return keeps the redemption (the basket it was priced on was bought).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from servicekit.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.marketing.domain.offers import Channel, CouponTerms

HOLD_FOR = timedelta(minutes=15)
MAX_HOLD_FOR = timedelta(hours=24)


class CouponExpired(FailedPrecondition):
    reason = "coupon-expired"


class CouponNotYetValid(FailedPrecondition):
    reason = "coupon-not-yet-valid"


class NotYourCoupon(PermissionDenied):
    reason = "coupon-not-yours"


class NotInThisStore(FailedPrecondition):
    reason = "coupon-not-in-this-store"


class NotInThisChannel(FailedPrecondition):
    reason = "coupon-not-in-this-channel"


class CouponAlreadyUsed(FailedPrecondition):
    reason = "coupon-already-used"


class CouponVoid(FailedPrecondition):
    reason = "coupon-void"


class MemberLimitReached(FailedPrecondition):
    reason = "coupon-member-limit-reached"


class BudgetExhausted(FailedPrecondition):
    reason = "campaign-budget-exhausted"


class InvalidHold(InvalidArgument):
    reason = "invalid-hold"


class CouponState(StrEnum):
    ACTIVE = "active"  # usable while uses + holds < use_limit
    VOID = "void"  # withdrawn by staff, or its member was erased


@dataclass(frozen=True, slots=True)
class CouponUse:
    """Where a coupon stands: how often it may be used, and how often it is used or held now."""

    member_id: str | None  # None: a generic code
    use_limit: int
    used: int
    held: int
    state: CouponState = CouponState.ACTIVE

    @property
    def uses_left(self) -> int:
        return self.use_limit - self.used - self.held


@dataclass(frozen=True, slots=True)
class UseRequest:
    member_id: str
    store_id: str | None  # None: an online order not tied to a store
    channel: Channel
    at: datetime


def check_use(coupon: CouponUse, terms: CouponTerms, request: UseRequest, *, member_uses: int) -> None:
    """Raise the precise refusal when ``request`` may not use (hold or redeem) the coupon now.

    ``member_uses`` is how often the member has already used or holds a coupon of the same
    definition. Checks run from the most to the least fundamental, so the answer names the
    reason a person can act on (a coupon that is not yours is "not yours", not "expired").
    """
    if coupon.state is CouponState.VOID:
        raise CouponVoid("the coupon was withdrawn")
    if coupon.member_id is not None and coupon.member_id != request.member_id:
        raise NotYourCoupon("the coupon was issued to another member")
    if request.at < terms.valid_from:
        raise CouponNotYetValid("the coupon is not valid yet", details={"valid_from": terms.valid_from.isoformat()})
    if request.at >= terms.valid_until:
        raise CouponExpired("the coupon has expired", details={"valid_until": terms.valid_until.isoformat()})
    if terms.stores and request.store_id not in terms.stores:
        raise NotInThisStore("the coupon cannot be used in this store")
    if request.channel not in terms.channels:
        raise NotInThisChannel(f"the coupon cannot be used in the {request.channel.value} channel")
    if coupon.uses_left <= 0:
        raise CouponAlreadyUsed("the coupon has already been used")
    if member_uses >= terms.per_member_limit:
        raise MemberLimitReached(
            f"a member may use this coupon {terms.per_member_limit} time(s)",
            details={"per_member_limit": terms.per_member_limit},
        )


@dataclass(frozen=True, slots=True)
class Budget:
    """A campaign's limits and what is committed against them (spent by redemptions, held by holds)."""

    max_coupons: int | None
    max_discount_fen: int | None
    issued: int = 0
    spent_fen: int = 0
    held_fen: int = 0

    def check_issue(self, coupons: int = 1) -> None:
        if self.max_coupons is not None and self.issued + coupons > self.max_coupons:
            raise BudgetExhausted(
                "the campaign has issued all the coupons its budget allows",
                details={"max_coupons": self.max_coupons},
            )

    def check_discount(self, discount_fen: int) -> None:
        if self.max_discount_fen is not None and self.spent_fen + self.held_fen + discount_fen > self.max_discount_fen:
            raise BudgetExhausted(
                "the campaign's discount budget is exhausted",
                details={"left_fen": max(0, self.max_discount_fen - self.spent_fen - self.held_fen)},
            )


def hold_until(now: datetime, requested: timedelta | None) -> datetime:
    """When a hold made ``now`` lapses: after ``requested`` (default 15 minutes, at most a day)."""
    duration = HOLD_FOR if requested is None else requested
    if not timedelta(seconds=30) <= duration <= MAX_HOLD_FOR:
        raise InvalidHold("a hold lasts 30 seconds to 24 hours", details={"field": "hold_seconds"})
    return now + duration


def gives_back_on_return(terms: CouponTerms, *, returned_at: datetime, full_return: bool) -> bool:
    """Whether returning the sale that redeemed a coupon gives its use back (see the module's policy)."""
    return full_return and returned_at < terms.valid_until
