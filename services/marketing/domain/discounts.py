"""What a basket's coupons take off, line by line, to the fen.

:func:`price_coupons` prices every coupon of a basket together and keeps these promises:

* **Never below zero.** No line, and so no basket, is discounted below zero: two coupons worth
  more than the cart take off what the cart is worth, not more (Medusa #14899).
* **Independent of the order codes were entered** (Odoo PR #63106). Coupons are priced in one
  canonical order — those aimed at SKUs or categories first, so a basket-wide coupon takes what
  is left after them, then by code — whatever order they arrived in; whether they stack is a
  symmetric rule (:meth:`Offer.stacks_with_offer`).
* **Percentages do not compound.** Each coupon's discount is measured on the original amounts of
  the lines it covers; what it may take is then capped by what the coupons before it left.
* **Lines add up.** Each coupon's discount is spread over its lines in proportion to what is left
  of them, by largest remainder (ties to the earlier line), so the line discounts of a coupon add
  up to its discount exactly and the basket discount is their sum.

Rounding: a percentage off is rounded half up to the fen on the coupon's eligible amount
(``(amount × basis points + 5,000) // 10,000``), then capped by the offer's ``max_discount_fen``.
The minimum spend is compared with the original amount of the lines the coupon covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from servicekit.errors import FailedPrecondition, InvalidArgument
from services.marketing.domain.offers import BASIS_POINTS, MAX_FEN, DiscountKind, Offer

MAX_LINES = 500


class InvalidBasket(InvalidArgument):
    reason = "invalid-basket"


class BelowMinimumSpend(FailedPrecondition):
    reason = "coupon-below-minimum-spend"


class NoEligibleItems(FailedPrecondition):
    reason = "coupon-no-eligible-items"


class DoesNotStack(FailedPrecondition):
    reason = "coupon-does-not-stack"


@dataclass(frozen=True, slots=True)
class BasketLine:
    sku: str
    category: str
    amount_fen: int  # what the line costs before coupons (quantity × price, after price promotions)


@dataclass(frozen=True, slots=True)
class CouponDiscount:
    code: str
    discount_fen: int
    line_discounts_fen: tuple[int, ...]  # one per basket line, 0 where the coupon does not apply


@dataclass(frozen=True, slots=True)
class BasketDiscount:
    coupons: tuple[CouponDiscount, ...]  # in the order the codes were given
    line_discounts_fen: tuple[int, ...]

    @property
    def discount_fen(self) -> int:
        return sum(coupon.discount_fen for coupon in self.coupons)


def check_basket(lines: Sequence[BasketLine]) -> None:
    if not lines:
        raise InvalidBasket("a basket has at least one line", details={"field": "lines"})
    if len(lines) > MAX_LINES:
        raise InvalidBasket(f"a basket has at most {MAX_LINES} lines", details={"field": "lines"})
    for index, line in enumerate(lines):
        if not 0 <= line.amount_fen <= MAX_FEN:
            raise InvalidBasket(f"a line's amount is 0 to {MAX_FEN} fen", details={"field": f"lines[{index}]"})


def check_stacking(offers: Sequence[tuple[str, Offer]]) -> None:
    """Raise :class:`DoesNotStack` naming the first pair of codes that may not be used together."""
    for index, (code, offer) in enumerate(offers):
        for other_code, other in offers[index + 1 :]:
            if code == other_code:
                raise DoesNotStack(f"coupon {code} is given twice", details={"code": code})
            if not offer.stacks_with_offer(other):
                raise DoesNotStack(
                    f"coupon {other_code} does not stack with {code}", details={"code": other_code, "with": code}
                )


def offer_discount(offer: Offer, eligible_fen: int) -> int:
    """What ``offer`` takes off an eligible amount on its own (before other coupons), in fen."""
    if offer.kind is DiscountKind.AMOUNT_OFF:
        discount = offer.value
    else:
        discount = (eligible_fen * offer.value + BASIS_POINTS // 2) // BASIS_POINTS
    if offer.max_discount_fen is not None:
        discount = min(discount, offer.max_discount_fen)
    return min(discount, eligible_fen)


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` over ``weights`` in proportion, by largest remainder, ties to the earlier index.

    ``0 <= total <= sum(weights)``; each share is at most its weight, and the shares add up to ``total``.
    """
    weight_sum = sum(weights)
    if total == 0 or weight_sum == 0:
        return [0] * len(weights)
    shares = [total * weight // weight_sum for weight in weights]
    remainders = [total * weight % weight_sum for weight in weights]
    short = total - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:short]:
        shares[index] += 1
    return shares


def _canonical_order(item: tuple[int, str, Offer]) -> tuple[bool, str]:
    _, code, offer = item
    return offer.targets_whole_basket, code


def price_coupons(lines: Sequence[BasketLine], offers: Sequence[tuple[str, Offer]]) -> BasketDiscount:
    """Every coupon of a basket priced together; refuses a coupon the basket does not qualify for.

    ``offers`` are (code, offer) pairs in the order the codes were given.
    """
    check_basket(lines)
    check_stacking(offers)
    left = [line.amount_fen for line in lines]
    priced: dict[int, CouponDiscount] = {}
    for position, code, offer in sorted(
        ((position, code, offer) for position, (code, offer) in enumerate(offers)), key=_canonical_order
    ):
        covered = [offer.covers(line.sku, line.category) for line in lines]
        eligible = sum(line.amount_fen for line, covers in zip(lines, covered, strict=True) if covers)
        if not any(covered) or eligible == 0:
            raise NoEligibleItems(f"nothing in the basket is covered by coupon {code}", details={"code": code})
        if eligible < offer.min_spend_fen:
            raise BelowMinimumSpend(
                f"coupon {code} needs {offer.min_spend_fen} fen of eligible items; the basket has {eligible}",
                details={"code": code, "min_spend_fen": offer.min_spend_fen, "eligible_fen": eligible},
            )
        room = [amount if covers else 0 for amount, covers in zip(left, covered, strict=True)]
        discount = min(offer_discount(offer, eligible), sum(room))
        shares = allocate(discount, room)
        left = [amount - share for amount, share in zip(left, shares, strict=True)]
        priced[position] = CouponDiscount(code, discount, tuple(shares))
    coupons = tuple(priced[position] for position in range(len(offers)))
    line_discounts = tuple(line.amount_fen - amount for line, amount in zip(lines, left, strict=True))
    return BasketDiscount(coupons, line_discounts)
