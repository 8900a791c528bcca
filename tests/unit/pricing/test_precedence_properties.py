"""Random rule sets: the winner follows the documented steps one by one, whatever the input order."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.pricing.domain.promotions import FixedPrice, MultiBuy, PercentOff
from services.pricing.domain.rules import (
    MEMBER_TIERS,
    Channel,
    NoPrice,
    PriceContext,
    PriceRule,
    RuleKind,
    RuleSet,
    Scope,
)
from tests.unit.pricing import DAY, NOW, SKU, context

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scopes = st.builds(
    Scope,
    store_id=st.sampled_from([None, None, "S001", "S002"]),
    channel=st.sampled_from([None, Channel.STORE, Channel.ONLINE]),
    member_tier=st.sampled_from([None, "gold", "silver"]),
) | st.builds(
    Scope,
    store_group=st.sampled_from(["G-EAST", "G-WEST"]),
    channel=st.sampled_from([None, Channel.STORE]),
    member_tier=st.sampled_from([None, "gold"]),
)
windows = st.tuples(st.sampled_from([None, -3, -1, 0, 1]), st.sampled_from([None, 0, 1, 2])).filter(
    lambda window: window[0] is None or window[1] is None or window[1] > window[0]
)
mechanics = st.one_of(
    st.builds(FixedPrice, st.integers(0, 3000)),
    st.builds(PercentOff, st.sampled_from([Decimal(10), Decimal("12.5"), Decimal(50)])),
    st.builds(MultiBuy, st.integers(2, 4), st.integers(0, 6000)),
)


@st.composite
def rule_sets(draw: Callable[..., Any]) -> list[PriceRule]:
    count = draw(st.integers(0, 12))
    rules = []
    for index in range(count):
        kind = draw(st.sampled_from(list(RuleKind)))
        start, end = draw(windows)
        rules.append(
            PriceRule(
                rule_id=f"r{index}",
                sku=SKU,
                kind=kind,
                scope=draw(scopes),
                currency=draw(st.sampled_from(["CNY", "CNY", "HKD"])),
                valid_from=None if start is None else NOW + start * DAY,
                valid_to=None if end is None else NOW + end * DAY,
                priority=draw(st.integers(0, 2)),
                # Sequences may repeat, to reach the last tie-break (rule_id) as well.
                sequence=draw(st.integers(0, 3)),
                price_fen=draw(st.integers(0, 3000)) if kind is RuleKind.REGULAR else None,
                mechanic=draw(mechanics) if kind is RuleKind.PROMOTION else None,
            )
        )
    return rules


contexts = st.builds(
    context,
    store_id=st.sampled_from(["S001", "S002"]),
    store_groups=st.sampled_from([frozenset(), frozenset({"G-EAST"}), frozenset({"G-EAST", "G-WEST"})]),
    channel=st.sampled_from(list(Channel)),
    member_tier=st.sampled_from([None, *MEMBER_TIERS]),
)


def reference_winner(rules: list[PriceRule], ctx: PriceContext, kind: RuleKind) -> PriceRule | None:
    """The precedence table applied literally, one narrowing step after another."""
    candidates = [
        rule
        for rule in rules
        if rule.kind is kind
        and rule.sku == ctx.sku
        and rule.currency == ctx.currency
        and (rule.valid_from is None or rule.valid_from <= ctx.at)
        and (rule.valid_to is None or ctx.at < rule.valid_to)
        and (rule.scope.store_id in (None, ctx.store_id))
        and (rule.scope.store_group is None or rule.scope.store_group in ctx.store_groups)
        and (rule.scope.channel in (None, ctx.channel))
        and (rule.scope.member_tier is None or rule.scope.member_tier == ctx.member_tier)
    ]
    steps: list[Callable[[PriceRule], Any]] = [
        lambda rule: 2 if rule.scope.store_id else 1 if rule.scope.store_group else 0,
        lambda rule: rule.scope.member_tier is not None,
        lambda rule: rule.scope.channel is not None,
        lambda rule: rule.priority,
        lambda rule: (rule.valid_from - NOW).total_seconds() if rule.valid_from else float("-inf"),
        lambda rule: rule.sequence,
        lambda rule: rule.rule_id,
    ]
    for step in steps:
        if not candidates:
            return None
        best = max(step(rule) for rule in candidates)
        candidates = [rule for rule in candidates if step(rule) == best]
    assert len(candidates) <= 1
    return candidates[0] if candidates else None


@FAST
@given(rules=rule_sets(), ctx=contexts, data=st.data())
def test_winner_follows_the_documented_steps_in_any_order(
    rules: list[PriceRule], ctx: PriceContext, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(rules))
    for ordering in (rules, shuffled):
        index = RuleSet.of(ordering)
        expected_regular = reference_winner(rules, ctx, RuleKind.REGULAR)
        if expected_regular is None:
            try:
                index.regular_rule(ctx)
            except NoPrice:
                pass
            else:
                raise AssertionError("expected NoPrice")
        else:
            assert index.regular_rule(ctx) is expected_regular
        assert index.promotion_rule(ctx) is reference_winner(rules, ctx, RuleKind.PROMOTION)


@FAST
@given(rules=rule_sets(), ctx=contexts, quantity=st.integers(1, 9_999).map(lambda grams: Decimal(grams) / 1000))
def test_a_promotion_never_makes_a_line_dearer(rules: list[PriceRule], ctx: PriceContext, quantity: Decimal) -> None:
    index = RuleSet.of(rules)
    for amount in (quantity, quantity.to_integral_value() or Decimal(1)):
        try:
            price = index.price(ctx, amount)
        except NoPrice:
            return
        assert 0 <= price.line_total_fen <= price.regular_line_total_fen
        assert price.unit_price_fen <= price.regular_price_fen
        if not price.promotion_applied:
            assert price.line_total_fen == price.regular_line_total_fen
