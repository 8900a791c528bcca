"""PriceBaskets (the gateway's coalesced baskets) answers each basket as PriceBasket alone would:
the same answer, or the same refusal, while the other baskets of the call are answered."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import grpc
import pytest
from retail.common.v1 import money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from servicekit.protowire import timestamp
from services.pricing.bootstrap import PricingApp
from tests.integration.pricing.conftest import Clock, cny, put_item, put_store, set_prices


def basket(store_id: str, *lines: tuple[str, str], tier: str = "") -> pb.PriceBasketRequest:
    return pb.PriceBasketRequest(
        question=pb.PriceQuestion(store_id=store_id, member_tier=tier),
        lines=[pb.BasketLine(sku=sku, quantity=money_pb2.Decimal(value=quantity)) for sku, quantity in lines],
    )


async def test_a_batch_of_baskets_answers_each_as_price_basket_alone_would(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    await put_store(app, "S1")
    await put_store(app, "S2", price_groups=("EAST",))
    for sku, fen in (("SKU-B1", 1000), ("SKU-B2", 250)):
        await put_item(app, sku, cost_fen=100)
        await set_prices(
            app,
            sku,
            fen,
            overrides=[
                pb.RegularPrice(scope=pb.RuleScope(member_tier="gold"), price=cny(fen - 10)),
                pb.RegularPrice(scope=pb.RuleScope(store_group="EAST"), price=cny(fen - 20)),
            ],
        )
    await put_item(app, "SKU-UNPRICED", cost_fen=100)
    baskets = [
        basket("S1", ("SKU-B1", "2"), ("SKU-B2", "1")),
        basket("S9", ("SKU-B1", "1")),  # unknown store
        basket("S1", ("SKU-B2", "3"), tier="gold"),
        basket("S1", ("SKU-NONE", "1")),  # unknown SKU
        basket("S1", ("SKU-B1", "1e3")),  # not a plain decimal
        basket("S1", ("SKU-B1", "0")),  # no quantity
        basket("S1", ("SKU-UNPRICED", "1")),  # no price
        basket("", ("SKU-B1", "1")),  # no store
        basket("S1"),  # no lines
        basket("S1", ("SKU-B2", "1"), ("SKU-B1", "1"), ("SKU-B2", "2")),
        basket("S2", ("SKU-B1", "2"), ("SKU-B2", "1")),  # another store in the same call
        basket("S2", ("SKU-B2", "5"), tier="gold"),
    ]
    earlier = basket("S2", ("SKU-B1", "1"))  # a moment of the caller's: read apart from the others
    earlier.question.at.CopyFrom(timestamp(clock.now() - timedelta(hours=1)))
    baskets.append(earlier)

    answer = await stub.PriceBaskets(pb.PriceBasketsRequest(baskets=baskets), timeout=10)

    assert len(answer.outcomes) == len(baskets)
    refused = 0
    for one, outcome in zip(baskets, answer.outcomes, strict=True):
        alone = await price_alone(stub, one)
        if isinstance(alone, pb.PriceBasketResponse):
            assert outcome.HasField("basket"), one
            assert outcome.basket.SerializeToString() == alone.SerializeToString()
            continue
        refused += 1
        assert outcome.HasField("refusal"), one
        metadata: Any = alone.trailing_metadata() or ()
        trailers = {str(key): str(value) for key, value in metadata}
        assert (outcome.refusal.code, outcome.refusal.reason, outcome.refusal.message) == (
            alone.code().value[0],
            trailers.get("retail-error-reason", ""),
            alone.details(),
        )
        details = trailers.get("retail-error-details")
        assert json.loads(outcome.refusal.details_json or "{}") == json.loads(details or "{}")
    assert refused == 7


async def price_alone(
    stub: pb_grpc.PricingServiceAsyncStub, one: pb.PriceBasketRequest
) -> pb.PriceBasketResponse | grpc.aio.AioRpcError:
    try:
        answer: pb.PriceBasketResponse = await stub.PriceBasket(one, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error
    return answer


async def test_more_baskets_than_a_call_may_carry_are_refused(stub: pb_grpc.PricingServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PriceBaskets(pb.PriceBasketsRequest(baskets=[basket("S1", ("SKU-B1", "1"))] * 501), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
