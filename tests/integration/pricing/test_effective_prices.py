"""The effective-price read path narrows a SKU's rules in SQL to one store and moment; whatever
it leaves out must be what the domain would have ruled out anyway. The oracle here is the
domain ranking every stored rule of the SKU."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

from retail.common.v1 import money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from services.pricing.adapters import pricing_store
from services.pricing.bootstrap import PricingApp
from services.pricing.domain.rules import Channel, PriceContext, RuleSet
from tests.integration.pricing.conftest import Clock, cny, put_item, put_store, set_prices, stamp

STORES = {"S1": ("EAST",), "S2": ("WEST",), "S3": (), "S4": ("EAST", "WEST")}
CHANNELS = {Channel.STORE: pb.CHANNEL_STORE, Channel.ONLINE: pb.CHANNEL_ONLINE}


async def test_the_store_narrowed_rules_price_every_store_tier_channel_and_moment_like_the_whole_rule_set(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    now = clock.now()
    for store_id, groups in STORES.items():
        await put_store(app, store_id, price_groups=groups)
    await put_store(app, "S9", price_groups=("EAST",))  # its own override must never leak into the others
    await put_item(app, "SKU-N", cost_fen=400)
    hours = [now + timedelta(hours=h) for h in range(6)]
    await set_prices(
        app,
        "SKU-N",
        1000,
        overrides=[
            pb.RegularPrice(scope=pb.RuleScope(store_group="EAST"), price=cny(950)),
            pb.RegularPrice(scope=pb.RuleScope(store_group="WEST"), price=cny(960), priority=1),
            pb.RegularPrice(scope=pb.RuleScope(store_id="S2"), price=cny(900), valid_to=stamp(hours[1])),
            pb.RegularPrice(scope=pb.RuleScope(store_id="S3"), price=cny(880), valid_from=stamp(hours[2])),
            pb.RegularPrice(scope=pb.RuleScope(member_tier="gold"), price=cny(870)),
            pb.RegularPrice(scope=pb.RuleScope(store_id="S4", channel=pb.CHANNEL_ONLINE), price=cny(860)),
            pb.RegularPrice(scope=pb.RuleScope(store_id="S9"), price=cny(500)),
        ],
        promotions=[
            pb.Promotion(
                name="west week",
                scope=pb.RuleScope(store_group="WEST"),
                percent_off=money_pb2.Decimal(value="10"),
                valid_from=stamp(now - timedelta(days=1)),
                valid_to=stamp(hours[3]),
            ),
            pb.Promotion(
                name="s1 evening",
                scope=pb.RuleScope(store_id="S1"),
                fixed_price=cny(700),
                valid_from=stamp(hours[3]),
                valid_to=stamp(hours[5]),
            ),
            pb.Promotion(
                name="gold",
                scope=pb.RuleScope(member_tier="gold"),
                fixed_price=cny(820),
                valid_from=stamp(hours[1]),
                valid_to=stamp(hours[4]),
            ),
            pb.Promotion(
                name="ended",
                percent_off=money_pb2.Decimal(value="50"),
                valid_from=stamp(now - timedelta(days=2)),
                valid_to=stamp(now - timedelta(days=1)),
            ),
        ],
    )
    async with app.services.pricing._uow() as uow:
        every_rule = RuleSet.of((await pricing_store.rules_of(uow.session, ["SKU-N"]))["SKU-N"])

    compared = 0
    moments = [*hours, hours[1] - timedelta(seconds=1), hours[3] - timedelta(seconds=1)]
    for (store_id, groups), tier, channel, at in itertools.product(STORES.items(), ["", "gold"], CHANNELS, moments):
        expected = every_rule.price(
            PriceContext(
                sku="SKU-N",
                store_id=store_id,
                store_groups=frozenset(groups),
                channel=channel,
                member_tier=tier or None,
                at=at,
                currency="CNY",
            ),
            Decimal(2),
        )
        question = pb.PriceQuestion(store_id=store_id, channel=CHANNELS[channel], member_tier=tier, at=stamp(at))
        answer = await stub.PriceBasket(
            pb.PriceBasketRequest(
                question=question, lines=[pb.BasketLine(sku="SKU-N", quantity=money_pb2.Decimal(value="2"))]
            )
        )
        [line] = answer.lines
        got = (
            line.unit_price.minor_units,
            line.regular_price.minor_units,
            line.regular_rule_id,
            line.promotion.rule_id if line.promotion_applied else "",
            line.line_total.minor_units,
        )
        wanted = (
            expected.unit_price_fen,
            expected.regular_price_fen,
            expected.regular_rule.rule_id,
            expected.promotion.rule_id if expected.promotion_applied and expected.promotion else "",
            expected.line_total_fen,
        )
        assert got == wanted, (store_id, tier, channel, at)
        compared += 1
    assert compared == len(STORES) * 2 * len(CHANNELS) * len(moments)
