"""A basket's coupons: never below zero, independent of entry order, lines adding up to the fen."""

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.marketing.domain.discounts import (
    BasketLine,
    BelowMinimumSpend,
    DoesNotStack,
    InvalidBasket,
    NoEligibleItems,
    allocate,
    offer_discount,
    price_coupons,
)
from services.marketing.domain.offers import DiscountKind, InvalidOffer, Offer

FRUIT = BasketLine("SKU-APPLE", "fruit", 1_000)
MILK = BasketLine("SKU-MILK", "dairy", 2_599)
RICE = BasketLine("SKU-RICE", "grain", 6_401)


def amount_off(fen: int, **kwargs: Any) -> Offer:
    return Offer(DiscountKind.AMOUNT_OFF, fen, **kwargs)


def percent_off(basis_points: int, **kwargs: Any) -> Offer:
    return Offer(DiscountKind.PERCENT_OFF, basis_points, **kwargs)


def stackable(group: str, *others: str) -> dict[str, Any]:
    return {"stacking_group": group, "stacks_with": frozenset(others)}


def test_an_amount_off_above_a_minimum_spend_is_spread_over_the_lines_in_proportion() -> None:
    priced = price_coupons([FRUIT, MILK, RICE], [("C1", amount_off(2_000, min_spend_fen=10_000))])
    assert priced.discount_fen == 2_000
    assert priced.line_discounts_fen == (200, 520, 1_280)
    assert sum(priced.coupons[0].line_discounts_fen) == 2_000


def test_a_percentage_is_rounded_half_up_on_the_eligible_amount_and_capped() -> None:
    # 15% of 2,599 fen is 389.85 → 390; of 1,000 + 2,599 it is 539.85 → 540.
    assert offer_discount(percent_off(1_500), 2_599) == 390
    assert price_coupons([FRUIT, MILK], [("C", percent_off(1_500))]).discount_fen == 540
    assert price_coupons([FRUIT, MILK], [("C", percent_off(1_500, max_discount_fen=500))]).discount_fen == 500
    # Exactly half a fen rounds up: 50% of 1 fen is 1 fen.
    assert offer_discount(percent_off(5_000), 1) == 1


def test_a_category_coupon_takes_only_from_its_category_and_checks_its_minimum_on_it() -> None:
    dairy = amount_off(1_000, categories=frozenset({"dairy"}), min_spend_fen=2_500)
    priced = price_coupons([FRUIT, MILK, RICE], [("D", dairy)])
    assert priced.line_discounts_fen == (0, 1_000, 0)
    with pytest.raises(BelowMinimumSpend) as refused:
        price_coupons([FRUIT, MILK], [("D", amount_off(1_000, categories=frozenset({"dairy"}), min_spend_fen=3_000))])
    assert refused.value.details == {"code": "D", "min_spend_fen": 3_000, "eligible_fen": 2_599}
    with pytest.raises(NoEligibleItems):
        price_coupons([FRUIT, RICE], [("D", dairy)])


def test_two_coupons_worth_more_than_the_basket_take_it_to_zero_and_no_further() -> None:
    basket = [FRUIT, MILK]
    priced = price_coupons(
        basket, [("A", amount_off(3_000, **stackable("a", "b"))), ("B", amount_off(3_000, **stackable("b", "a")))]
    )
    assert priced.discount_fen == FRUIT.amount_fen + MILK.amount_fen
    assert priced.line_discounts_fen == (FRUIT.amount_fen, MILK.amount_fen)
    assert [coupon.discount_fen for coupon in priced.coupons] == [3_000, 599]


def test_stacking_is_refused_unless_both_name_each_other_and_never_with_an_exclusive_offer() -> None:
    one_way = [("A", amount_off(100, **stackable("a", "b"))), ("B", amount_off(100, **stackable("b")))]
    for offers in (one_way, one_way[::-1]):
        with pytest.raises(DoesNotStack):
            price_coupons([FRUIT], offers)
    exclusive = [("A", amount_off(100, exclusive=True)), ("B", amount_off(100, **stackable("b", "default")))]
    with pytest.raises(DoesNotStack):
        price_coupons([FRUIT], exclusive)
    with pytest.raises(DoesNotStack):
        price_coupons([FRUIT], [("A", amount_off(100)), ("A", amount_off(100))])
    with pytest.raises(InvalidOffer):
        amount_off(100, exclusive=True, stacks_with=frozenset({"x"}))


def test_bad_baskets_and_offers_are_refused() -> None:
    with pytest.raises(InvalidBasket):
        price_coupons([], [("A", amount_off(100))])
    with pytest.raises(InvalidBasket):
        price_coupons([BasketLine("S", "c", -1)], [("A", amount_off(100))])
    for value in (0, -5, 10**13):
        with pytest.raises(InvalidOffer):
            amount_off(value)
    for value in (0, 10_001):
        with pytest.raises(InvalidOffer):
            percent_off(value)


def test_allocation_adds_up_never_exceeds_a_weight_and_breaks_ties_to_the_earlier_line() -> None:
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(10, [3, 3, 4]) == [3, 3, 4]
    assert allocate(0, [5, 5]) == [0, 0]


GROUPS = ["a", "b", "c"]


@st.composite
def baskets_and_offers(draw: st.DrawFn) -> tuple[list[BasketLine], list[tuple[str, Offer]]]:
    lines = draw(
        st.lists(
            st.builds(
                BasketLine,
                sku=st.sampled_from(["S1", "S2", "S3", "S4"]),
                category=st.sampled_from(["fruit", "dairy"]),
                amount_fen=st.integers(1, 50_000),
            ),
            min_size=1,
            max_size=6,
        )
    )
    offers = []
    for index, group in enumerate(draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3, unique=True))):
        kind = draw(st.sampled_from(DiscountKind))
        value = draw(st.integers(1, 80_000) if kind is DiscountKind.AMOUNT_OFF else st.integers(1, 10_000))
        skus, categories = draw(
            st.sampled_from(
                [
                    (frozenset(), frozenset()),
                    (frozenset(), frozenset({"fruit"})),
                    (frozenset({"S1", "S2"}), frozenset()),
                ]
            )
        )
        offer = Offer(
            kind, value, skus=skus, categories=categories, stacking_group=group, stacks_with=frozenset(GROUPS)
        )
        offers.append((f"CODE{index}", offer))
    return lines, offers


@settings(max_examples=300, deadline=None)
@given(baskets_and_offers())
def test_whatever_the_coupons_and_their_order_lines_stay_at_or_above_zero_and_add_up(
    case: tuple[list[BasketLine], list[tuple[str, Offer]]],
) -> None:
    lines, offers = case
    results: set[object] = set()
    for order in itertools.permutations(offers):
        try:
            priced = price_coupons(lines, list(order))
        except (NoEligibleItems, BelowMinimumSpend) as refusal:
            results.add(("refused", refusal.reason, refusal.details.get("code")))
            continue
        for line, discount in zip(lines, priced.line_discounts_fen, strict=True):
            assert 0 <= discount <= line.amount_fen
        assert sum(priced.line_discounts_fen) == priced.discount_fen
        for coupon in priced.coupons:
            assert sum(coupon.line_discounts_fen) == coupon.discount_fen >= 0
        results.add(("priced", tuple(sorted((c.code, c.discount_fen, c.line_discounts_fen) for c in priced.coupons))))
    assert len(results) == 1, results
