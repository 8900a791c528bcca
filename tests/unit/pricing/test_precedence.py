"""The precedence table of rules.py, one row per situation: which regular price and promotion win."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from servicekit.errors import InvalidArgument
from services.pricing.domain.promotions import FixedPrice, MultiBuy, PercentOff
from services.pricing.domain.rules import Channel, NoPrice, PriceRule, RuleSet, Scope, effective_price
from tests.unit.pricing import DAY, GROUP, NOW, STORE, context, promotion, regular

BASE = regular("base", 1000)
AT_STORE = Scope(store_id=STORE)
AT_GROUP = Scope(store_group=GROUP)
GOLD = Scope(member_tier="gold")
ONLINE = Scope(channel=Channel.ONLINE)


@dataclass(frozen=True)
class Expected:
    regular_rule: str
    unit_price_fen: int
    line_total_fen: int
    promotion: str | None = None
    applied: bool = False


def row(
    case_id: str,
    rules: list[PriceRule],
    expected: Expected,
    *,
    quantity: str = "1",
    weighed: bool = False,
    **ctx: Any,
) -> Any:
    return pytest.param(rules, ctx, Decimal(quantity), weighed, expected, id=case_id)


PRECEDENCE_TABLE = [
    # --- regular price: location, tier, channel ---
    row("base price only", [BASE], Expected("base", 1000, 1000)),
    row("store override beats chain base", [BASE, regular("store", 900, AT_STORE)], Expected("store", 900, 900)),
    row(
        "another store's override is ignored",
        [BASE, regular("other-store", 900, Scope(store_id="S002"))],
        Expected("base", 1000, 1000),
    ),
    row(
        "store override beats store group",
        [regular("store", 990, AT_STORE), regular("group", 950, AT_GROUP), BASE],
        Expected("store", 990, 990),
    ),
    row("store group beats chain", [BASE, regular("group", 950, AT_GROUP)], Expected("group", 950, 950)),
    row(
        "group the store is not in is ignored",
        [BASE, regular("west", 950, Scope(store_group="G-WEST"))],
        Expected("base", 1000, 1000),
    ),
    row(
        "tier beats all-members at the same location",
        [BASE, regular("gold", 950, GOLD)],
        Expected("gold", 950, 950),
        member_tier="gold",
    ),
    row(
        "tier rule does not match another tier",
        [BASE, regular("gold", 950, GOLD)],
        Expected("base", 1000, 1000),
        member_tier="platinum",
    ),
    row("tier rule does not match a non-member", [BASE, regular("gold", 950, GOLD)], Expected("base", 1000, 1000)),
    row(
        "store-level all-members beats chain-level tier",
        [BASE, regular("gold", 900, GOLD), regular("store", 990, AT_STORE)],
        Expected("store", 990, 990),
        member_tier="gold",
    ),
    row(
        "tier beats channel at the same location",
        [BASE, regular("online", 940, ONLINE), regular("gold", 950, GOLD)],
        Expected("gold", 950, 950),
        member_tier="gold",
        channel=Channel.ONLINE,
    ),
    row(
        "channel rule beats all-channels",
        [BASE, regular("online", 950, ONLINE)],
        Expected("online", 950, 950),
        channel=Channel.ONLINE,
    ),
    row(
        "another channel's rule is ignored",
        [BASE, regular("online", 950, ONLINE)],
        Expected("base", 1000, 1000),
        channel=Channel.MINI_PROGRAM,
    ),
    # --- hard filters: validity window and currency ---
    row(
        "expired window is ignored (valid_to is exclusive)",
        [BASE, regular("store", 900, AT_STORE, valid_from=NOW - 7 * DAY, valid_to=NOW)],
        Expected("base", 1000, 1000),
    ),
    row(
        "window starting right now applies (valid_from is inclusive)",
        [BASE, regular("store", 900, AT_STORE, valid_from=NOW, valid_to=NOW + DAY)],
        Expected("store", 900, 900),
    ),
    row(
        "future window is ignored",
        [BASE, regular("store", 900, AT_STORE, valid_from=NOW + DAY)],
        Expected("base", 1000, 1000),
    ),
    row(
        "rule in another currency is ignored",
        [BASE, regular("store-hkd", 900, AT_STORE, currency="HKD")],
        Expected("base", 1000, 1000),
    ),
    # --- tie-breaks at equal specificity ---
    row(
        "specificity beats priority",
        [regular("chain-high", 800, priority=99), regular("store", 990, AT_STORE)],
        Expected("store", 990, 990),
    ),
    row(
        "higher priority wins",
        [regular("high", 950, priority=5, sequence=1), regular("low", 900, priority=0, sequence=2)],
        Expected("high", 950, 950),
    ),
    row(
        "later valid_from wins at equal priority",
        [
            regular("older", 950, valid_from=NOW - 10 * DAY, sequence=2),
            regular("newer", 970, valid_from=NOW - DAY, sequence=1),
        ],
        Expected("newer", 970, 970),
    ),
    row(
        "open start counts as the earliest",
        [regular("open", 950, sequence=2), regular("dated", 970, valid_from=NOW - 30 * DAY, sequence=1)],
        Expected("dated", 970, 970),
    ),
    row(
        "higher sequence wins when all else ties",
        [regular("first", 950, sequence=1), regular("second", 960, sequence=2)],
        Expected("second", 960, 960),
    ),
    row(
        "two groups of the store tie on specificity, priority decides",
        [BASE, regular("east", 950, AT_GROUP, priority=1), regular("north", 940, Scope(store_group="G-NORTH"))],
        Expected("east", 950, 950),
        store_groups=frozenset({GROUP, "G-NORTH"}),
    ),
    # --- promotions on top of the winning regular price ---
    row(
        "percent off applies to the winning store price",
        [BASE, regular("store", 900, AT_STORE), promotion("pct", PercentOff(Decimal(20)))],
        Expected("store", 720, 720, "pct", applied=True),
    ),
    row(
        "percent off rounds half up to the fen",
        [regular("base", 1005), promotion("pct", PercentOff(Decimal(10)))],
        Expected("base", 905, 905, "pct", applied=True),  # 904.5 → 905
    ),
    row(
        "percent off that rounds back to the regular price is not applied",
        [regular("base", 5), promotion("pct", PercentOff(Decimal(10)))],
        Expected("base", 5, 5, "pct", applied=False),  # 4.5 → 5
    ),
    row(
        "fixed price below regular applies",
        [BASE, promotion("fixed", FixedPrice(799))],
        Expected("base", 799, 3 * 799, "fixed", applied=True),
        quantity="3",
    ),
    row(
        "fixed price equal to regular is not applied",
        [BASE, promotion("fixed", FixedPrice(1000))],
        Expected("base", 1000, 1000, "fixed", applied=False),
    ),
    row(
        "fixed price above the store's lower regular price is not applied",
        [BASE, regular("store", 700, AT_STORE), promotion("fixed", FixedPrice(799))],
        Expected("store", 700, 700, "fixed", applied=False),
    ),
    row(
        "store promotion beats a deeper chain promotion",
        [
            BASE,
            promotion("chain-half", PercentOff(Decimal(50))),
            promotion("store-10", PercentOff(Decimal(10)), AT_STORE),
        ],
        Expected("base", 900, 900, "store-10", applied=True),
    ),
    row(
        "expired promotion is ignored",
        [BASE, promotion("old", PercentOff(Decimal(20)), valid_to=NOW - DAY)],
        Expected("base", 1000, 1000),
    ),
    row(
        "tier promotion for gold members only",
        [BASE, promotion("gold-fixed", FixedPrice(880), GOLD)],
        Expected("base", 880, 880, "gold-fixed", applied=True),
        member_tier="gold",
    ),
    # --- multi-buy ---
    row(
        "multi-buy at quantity 1 is reported but not applied",
        [BASE, promotion("2for15", MultiBuy(2, 1500))],
        Expected("base", 1000, 1000, "2for15", applied=False),
    ),
    row(
        "multi-buy at quantity 2 is one bundle",
        [BASE, promotion("2for15", MultiBuy(2, 1500))],
        Expected("base", 1000, 1500, "2for15", applied=True),
        quantity="2",
    ),
    row(
        "multi-buy at quantity 5 is two bundles and one at the regular price",
        [BASE, promotion("2for15", MultiBuy(2, 1500))],
        Expected("base", 1000, 2 * 1500 + 1000, "2for15", applied=True),
        quantity="5",
    ),
    row(
        "multi-buy never applies to a fractional kg quantity",
        [BASE, promotion("2for15", MultiBuy(2, 1500))],
        Expected("base", 1000, 2500, "2for15", applied=False),
        quantity="2.5",
    ),
    row(
        "multi-buy never applies to weighed goods, even at a whole 2.000 kg",
        [BASE, promotion("2for15", MultiBuy(2, 1500))],
        Expected("base", 1000, 2000, "2for15", applied=False),
        quantity="2.000",
        weighed=True,
    ),
    row(
        "multi-buy dearer than buying singly is not applied",
        [BASE, promotion("2for20", MultiBuy(2, 2000))],
        Expected("base", 1000, 2000, "2for20", applied=False),
        quantity="2",
    ),
    # --- weighed goods ---
    row(
        "kg line total rounds half up",
        [regular("base", 1500)],
        Expected("base", 1500, 500),  # 1500 × 0.333 = 499.5 → 500
        quantity="0.333",
        weighed=True,
    ),
    row(
        "kg line with percent off uses the rounded unit price",
        [regular("base", 1999), promotion("pct", PercentOff(Decimal(20)))],
        Expected("base", 1599, 532, "pct", applied=True),  # 1599.2 → 1599; × 0.333 = 532.467 → 532
        quantity="0.333",
        weighed=True,
    ),
]


@pytest.mark.parametrize(("rules", "ctx", "quantity", "weighed", "expected"), PRECEDENCE_TABLE)
def test_precedence_table(
    rules: list[PriceRule], ctx: dict[str, Any], quantity: Decimal, weighed: bool, expected: Expected
) -> None:
    sale = context(**ctx)
    for ordering in (rules, list(reversed(rules))):
        price = effective_price(ordering, sale, quantity, weighed=weighed)
        assert price.regular_rule.rule_id == expected.regular_rule
        assert price.unit_price_fen == expected.unit_price_fen
        assert price.line_total_fen == expected.line_total_fen
        assert (price.promotion.rule_id if price.promotion else None) == expected.promotion
        assert price.promotion_applied is expected.applied
        assert price.quantity == quantity
        assert price.currency == sale.currency
        assert bool(price.promotion_note) is (price.promotion is not None and not expected.applied)


@pytest.mark.parametrize(
    ("rules", "ctx"),
    [
        pytest.param([], {}, id="no rules at all"),
        pytest.param([promotion("pct", PercentOff(Decimal(20)))], {}, id="promotion without a regular price"),
        pytest.param([regular("store", 900, Scope(store_id="S002"))], {}, id="only another store's price"),
        pytest.param([BASE], {"currency": "HKD"}, id="only a price in another currency"),
        pytest.param([regular("later", 900, valid_from=NOW + DAY)], {}, id="only a future price"),
    ],
)
def test_no_regular_price_is_a_failed_precondition(rules: list[PriceRule], ctx: dict[str, Any]) -> None:
    with pytest.raises(NoPrice, match=r"no price for SKU SKU-1001 in store S001"):
        effective_price(rules, context(**ctx))


def test_rule_set_prices_many_skus_from_one_index() -> None:
    other = PriceRule(rule_id="other-base", sku="SKU-2002", kind=BASE.kind, price_fen=300)
    rules = RuleSet.of([BASE, other, promotion("pct", PercentOff(Decimal(20)))])
    assert len(rules) == 3
    assert rules.price(context()).unit_price_fen == 800
    assert rules.price(context(sku="SKU-2002"), Decimal(4)).line_total_fen == 1200


def test_saving_is_regular_line_total_minus_line_total() -> None:
    price = effective_price([BASE, promotion("2for15", MultiBuy(2, 1500))], context(), Decimal(5))
    assert price.regular_line_total_fen == 5000
    assert price.saving_fen == 1000


@pytest.mark.parametrize(
    ("mechanic", "label"),
    [
        (FixedPrice(990), "特价"),
        (PercentOff(Decimal(20)), "8折"),
        (PercentOff(Decimal(15)), "8.5折"),
        (PercentOff(Decimal(50)), "5折"),
        (PercentOff(Decimal("12.5")), "8.75折"),
        (PercentOff(Decimal("20.00")), "8折"),
        (MultiBuy(2, 1000), "2件10.00元"),
        (MultiBuy(3, 2990), "3件29.90元"),
    ],
)
def test_shelf_label_text(mechanic: FixedPrice | PercentOff | MultiBuy, label: str) -> None:
    assert mechanic.display_text() == label


@pytest.mark.parametrize(
    "quantity",
    [Decimal(0), Decimal(-1), Decimal("0.0005"), Decimal("NaN"), Decimal("Infinity"), Decimal(1_000_001), 1.5],
)
def test_bad_quantities_are_refused(quantity: Any) -> None:
    with pytest.raises(InvalidArgument, match="quantity"):
        effective_price([BASE], context(), quantity)
