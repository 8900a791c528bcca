"""Baskets through the gateway's coalesced calls: a pricing service of an older release, without
PriceBaskets, is sent each basket as PriceBasket, and every caller gets its own answer or error."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from retail.common.v1 import money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb

from gateway.adapters.coalesced_calls import basket_prices


class OlderPricing:
    """A pricing service's calls as a stub makes them: PriceBasket answers (a basket of store S0 is
    refused), PriceBaskets does not exist yet."""

    def __init__(self) -> None:
        self.unary_calls = 0

    async def PriceBaskets(self, request: pb.PriceBasketsRequest) -> pb.PriceBasketsResponse:  # noqa: N802 - the stub's method name
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNIMPLEMENTED,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            details="Method not found!",
            debug_error_string="",
        )

    async def PriceBasket(self, request: pb.PriceBasketRequest) -> pb.PriceBasketResponse:  # noqa: N802 - the stub's method name
        self.unary_calls += 1
        await asyncio.sleep(0)  # let the other callers queue up
        if request.question.store_id == "S0":
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.NOT_FOUND,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details="unknown store S0",
                debug_error_string="",
            )
        return pb.PriceBasketResponse(total=money_pb2.Money(currency_code="CNY", minor_units=len(request.lines)))


async def test_baskets_fall_back_to_the_unary_call_of_an_older_pricing_service() -> None:
    stub = OlderPricing()
    calls = basket_prices(stub)  # type: ignore[arg-type]  # the two calls the coalesced baskets make
    baskets = [
        pb.PriceBasketRequest(question=pb.PriceQuestion(store_id=f"S{n % 5}"), lines=[pb.BasketLine()] * n)
        for n in range(10)
    ]

    answers: list[Any] = await asyncio.gather(*(calls(basket) for basket in baskets), return_exceptions=True)

    assert stub.unary_calls == len(baskets)
    for n, answer in enumerate(answers):
        if n % 5 == 0:
            assert isinstance(answer, grpc.aio.AioRpcError)
            assert answer.code() is grpc.StatusCode.NOT_FOUND
        else:
            assert answer.total.minor_units == n


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="gateway.adapters.coalesced_calls")
