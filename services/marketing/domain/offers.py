"""What a coupon gives, on what, and with which other coupons it may be used.

An :class:`Offer` is the money side of a coupon definition: a fixed amount off (满100减20)
or a percentage off (8.5折 is 1,500 basis points off), on the whole basket or only on
some SKUs or categories, above a minimum spend, with an optional cap. Its stacking rule
says which other coupons may be used in the same basket:

* an **exclusive** offer is used alone;
* otherwise an offer belongs to one stacking group and names the groups it stacks with;
  two offers stack only when each names the other's group (the rule is symmetric, so
  whether a basket's coupons are accepted never depends on the order they were entered).

:class:`CouponTerms` is the rest of a definition: when, where and how often.

Money is integer fen; a percentage is integer basis points (1 to 10,000).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from servicekit.errors import InvalidArgument

BASIS_POINTS = 10_000
MAX_FEN = 10**12  # ten billion yuan: anything above is a mistake, not an offer
GROUP_NAME_MAX = 64


class InvalidOffer(InvalidArgument):
    reason = "invalid-offer"


class DiscountKind(StrEnum):
    AMOUNT_OFF = "amount_off"
    PERCENT_OFF = "percent_off"


class Channel(StrEnum):
    APP = "app"
    MINI_PROGRAM = "mini_program"
    STORE = "store"


@dataclass(frozen=True, slots=True)
class Offer:
    kind: DiscountKind
    # AMOUNT_OFF: fen taken off the eligible amount. PERCENT_OFF: basis points of it.
    value: int
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    min_spend_fen: int = 0
    max_discount_fen: int | None = None
    stacking_group: str = "default"
    exclusive: bool = False
    stacks_with: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.kind is DiscountKind.AMOUNT_OFF and not 0 < self.value <= MAX_FEN:
            raise InvalidOffer(f"an amount off is 1 to {MAX_FEN} fen", details={"field": "value"})
        if self.kind is DiscountKind.PERCENT_OFF and not 0 < self.value <= BASIS_POINTS:
            raise InvalidOffer("a percentage off is 1 to 10000 basis points", details={"field": "value"})
        if not 0 <= self.min_spend_fen <= MAX_FEN:
            raise InvalidOffer(f"a minimum spend is 0 to {MAX_FEN} fen", details={"field": "min_spend_fen"})
        if self.max_discount_fen is not None and not 0 < self.max_discount_fen <= MAX_FEN:
            raise InvalidOffer(f"a discount cap is 1 to {MAX_FEN} fen", details={"field": "max_discount_fen"})
        for group in (self.stacking_group, *self.stacks_with):
            if not group or len(group) > GROUP_NAME_MAX:
                raise InvalidOffer(f"a stacking group is 1 to {GROUP_NAME_MAX} characters", details={"field": "group"})
        if self.exclusive and self.stacks_with:
            raise InvalidOffer("an exclusive offer stacks with nothing", details={"field": "stacks_with"})

    @property
    def targets_whole_basket(self) -> bool:
        return not self.skus and not self.categories

    def covers(self, sku: str, category: str) -> bool:
        return self.targets_whole_basket or sku in self.skus or category in self.categories

    def stacks_with_offer(self, other: Offer) -> bool:
        """Whether the two may be used in one basket (symmetric)."""
        if self.exclusive or other.exclusive:
            return False
        return other.stacking_group in self.stacks_with and self.stacking_group in other.stacks_with


@dataclass(frozen=True, slots=True)
class CouponTerms:
    """When, where, for whom and how often a coupon definition may be used."""

    valid_from: datetime
    valid_until: datetime
    stores: frozenset[str] = frozenset()  # empty: every store
    channels: frozenset[Channel] = field(default_factory=lambda: frozenset(Channel))
    per_member_limit: int = 1  # redemptions of this definition per member
    total_issue_limit: int | None = None

    def __post_init__(self) -> None:
        if self.valid_from.tzinfo is None or self.valid_until.tzinfo is None:
            raise InvalidOffer("validity moments carry their time zone", details={"field": "valid_from"})
        if self.valid_until <= self.valid_from:
            raise InvalidOffer("a coupon is valid until after it becomes valid", details={"field": "valid_until"})
        if not self.channels:
            raise InvalidOffer("a coupon is usable in at least one channel", details={"field": "channels"})
        if self.per_member_limit < 1:
            raise InvalidOffer("a member may use a coupon at least once", details={"field": "per_member_limit"})
        if self.total_issue_limit is not None and self.total_issue_limit < 1:
            raise InvalidOffer("an issue limit is at least 1", details={"field": "total_issue_limit"})
