"""Baskets priced "now" reuse the read cache's decisions (which rules win for a SKU in a store,
channel and tier, and the window of moments they keep winning in). Whatever they answer must be
what evaluating every stored rule says at that moment: when a rule's window opens or closes, when
a price change commits, and when the cache keeps fewer decisions than a basket needs.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

from retail.common.v1 import money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from services.pricing.adapters import pricing_store
from services.pricing.adapters.price_read_cache import PriceReadCache
from services.pricing.bootstrap import PricingApp
from services.pricing.domain.rules import Channel, PriceContext, RuleSet
from tests.integration.pricing.conftest import Clock, cny, put_item, put_store, set_prices, stamp

STORES = {"S1": ("EAST",), "S2": ("WEST",), "S3": ()}
CHANNELS = {Channel.STORE: pb.CHANNEL_STORE, Channel.ONLINE: pb.CHANNEL_ONLINE}
SKUS = ("SKU-D1", "SKU-D2")
QUANTITIES = ("1", "2", "3")


async def every_rule(app: PricingApp) -> RuleSet:
    async with app.services.pricing._uow() as uow:
        rules = await pricing_store.rules_of(uow.session, list(SKUS))
    return RuleSet.of(rule for sku_rules in rules.values() for rule in sku_rules)


async def check_every_context(app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock) -> int:
    """Price every store, tier and channel now (through the cache) and compare with the oracle."""
    oracle = await every_rule(app)
    compared = 0
    for (store_id, groups), tier, channel in itertools.product(STORES.items(), ["", "gold"], CHANNELS):
        answer = await stub.PriceBasket(
            pb.PriceBasketRequest(
                question=pb.PriceQuestion(store_id=store_id, channel=CHANNELS[channel], member_tier=tier),
                lines=[
                    pb.BasketLine(sku=sku, quantity=money_pb2.Decimal(value=quantity))
                    for sku, quantity in itertools.product(SKUS, QUANTITIES)
                ],
            )
        )
        for line, (sku, quantity) in zip(answer.lines, itertools.product(SKUS, QUANTITIES), strict=True):
            expected = oracle.price(
                PriceContext(
                    sku=sku,
                    store_id=store_id,
                    store_groups=frozenset(groups),
                    channel=channel,
                    member_tier=tier or None,
                    at=clock.now(),
                    currency="CNY",
                ),
                Decimal(quantity),
            )
            got = (
                line.unit_price.minor_units,
                line.regular_rule_id,
                line.promotion.rule_id if line.HasField("promotion") else "",
                line.promotion_applied,
                line.line_total.minor_units,
            )
            wanted = (
                expected.unit_price_fen,
                expected.regular_rule.rule_id,
                expected.promotion.rule_id if expected.promotion else "",
                expected.promotion_applied,
                expected.line_total_fen,
            )
            assert got == wanted, (store_id, tier, channel, sku, quantity, clock.now())
            compared += 1
    return compared


async def test_kept_decisions_follow_rule_windows_and_committed_changes(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    now = clock.now()
    for store_id, groups in STORES.items():
        await put_store(app, store_id, price_groups=groups)
    hours = [now + timedelta(hours=h) for h in range(5)]
    for sku in SKUS:
        await put_item(app, sku, cost_fen=300)
    await set_prices(
        app,
        SKUS[0],
        1000,
        overrides=[
            pb.RegularPrice(scope=pb.RuleScope(store_group="EAST"), price=cny(950), valid_to=stamp(hours[2])),
            pb.RegularPrice(scope=pb.RuleScope(store_id="S3"), price=cny(880), valid_from=stamp(hours[1])),
            pb.RegularPrice(scope=pb.RuleScope(member_tier="gold"), price=cny(870), valid_from=stamp(hours[3])),
        ],
        promotions=[
            pb.Promotion(
                name="west",
                scope=pb.RuleScope(store_group="WEST"),
                percent_off=money_pb2.Decimal(value="10"),
                valid_from=stamp(hours[1]),
                valid_to=stamp(hours[3]),
            ),
            pb.Promotion(
                name="2 for 15",
                multi_buy=pb.MultiBuy(quantity=2, bundle_price=cny(1500)),
                valid_from=stamp(now - timedelta(hours=1)),
                valid_to=stamp(hours[2]),
            ),
        ],
    )
    await set_prices(
        app,
        SKUS[1],
        500,
        promotions=[
            pb.Promotion(
                name="online",
                scope=pb.RuleScope(channel=pb.CHANNEL_ONLINE),
                fixed_price=cny(450),
                valid_from=stamp(hours[2]),
                valid_to=stamp(hours[4]),
            )
        ],
    )
    cache = app.services.pricing.read_cache

    # Each moment around the windows' bounds: the decisions kept at the previous one must give way.
    for at in [now, *(moment + offset for moment in hours[1:] for offset in (-timedelta(seconds=1), timedelta()))]:
        clock.advance(at - clock.now())
        assert await check_every_context(app, stub, clock) == len(STORES) * 2 * len(CHANNELS) * 6
        assert cache.decisions_kept > 0, "the baskets were not priced through kept decisions"

    # A committed change replaces every decision kept for its SKU, in every store.
    await set_prices(app, SKUS[0], 990)
    await set_prices(app, SKUS[1], 480, overrides=[pb.RegularPrice(scope=pb.RuleScope(store_id="S2"), price=cny(470))])
    await check_every_context(app, stub, clock)


async def test_a_cache_keeping_fewer_decisions_than_a_basket_needs_still_prices_it_right(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    for store_id, groups in STORES.items():
        await put_store(app, store_id, price_groups=groups)
    for index, sku in enumerate(SKUS):
        await put_item(app, sku, cost_fen=300)
        await set_prices(app, sku, 1000 + index)
    cache = app.services.pricing.read_cache = PriceReadCache(max_skus=10, max_decisions=3)
    for _ in range(2):
        await check_every_context(app, stub, clock)
    assert cache.decisions_kept <= 3 + 1
    assert cache.stats.decisions_dropped > 0
