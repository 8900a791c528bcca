"""Backend calls coalesced across requests: one batched call for many concurrent callers.

Some calls come in floods: identity resolutions (apps and mini-programs resolve a member on
almost every request), reservations (a flash sale's buyers on one SKU) and basket prices
(every cart and checkout page). Sent one by one, each pays a whole gRPC round trip on both
sides: the call's machinery was a quarter of the gateway's CPU per resolution and 17% per
reservation, and much of the backends'. Here
concurrent calls of one kind queue up (:class:`servicekit.coalescing.Coalescer`): a batched
call carries everything that queued while the previous one ran, and each caller gets its own
answer. An idle gateway adds no delay: the first call goes at once. Resolutions and
reservations have one call in flight at a time (a reservation batch is a transaction on hot
rows: the next one waits its turn anyway). Baskets, pure reads that cost the pricing service
about as much CPU as the gateway, have two: the pricing service prices one batch while the
gateway writes the answers of the other, instead of each waiting for the other in turn.

An item the backend refuses fails only its own caller, with the error the unary call would
have raised (:func:`gateway.http.grpc_errors.refusal_error`), so the problem answer is the
same; a batched call that fails as a whole (the service unavailable, the deadline passed)
fails every caller in it, as each unary call would have failed.

A backend of an older release, which has the unary call but not yet the batched one (a
gateway rolled out before its services), answers the batched call ``UNIMPLEMENTED``: the
batch is then sent as unary calls side by side, and so is every batch for the next
:data:`UNARY_FOR_SECONDS`, after which the batched call is tried again. Callers see the
unary call's answers and errors either way; nothing fails during such a rollout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import grpc
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.inventory.v1 import inventory_service_pb2_grpc
from retail.member.v1 import member_service_pb2 as member_pb
from retail.member.v1 import member_service_pb2_grpc
from retail.pricing.v1 import pricing_service_pb2 as pricing_pb
from retail.pricing.v1 import pricing_service_pb2_grpc

from gateway.http.grpc_errors import refusal_error
from servicekit.coalescing import Coalescer

# Items per batched call at most (the services accept up to 500).
BATCH_MAX = 200
# Baskets per batched call at most: 16 of the largest (200 lines) answer well inside the
# 4 MiB a gRPC client accepts.
BASKETS_MAX = 16
# Basket calls in flight at once (see the module's docstring).
BASKET_LANES = 2
# After a backend answered a batched call UNIMPLEMENTED, how long to send unary calls instead.
UNARY_FOR_SECONDS = 60.0

log = logging.getLogger(__name__)

Reservation = inventory_pb.Reservation
ItemT = TypeVar("ItemT")
AnswerT = TypeVar("AnswerT")


class CoalescedCalls(Generic[ItemT, AnswerT]):
    """Concurrent calls of one kind, sent ``send_batch`` at a time; awaiting one gives its own answer."""

    def __init__(
        self,
        send_batch: Callable[[Sequence[ItemT]], Awaitable[Sequence[AnswerT | BaseException]]],
        send_one: Callable[[ItemT], Awaitable[AnswerT]],
        *,
        max_batch: int = BATCH_MAX,
        lanes: int = 1,
        unary_for_seconds: float = UNARY_FOR_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send_one = send_one
        self._unary_until = float("-inf")  # until when batches go as unary calls

        async def run(_: None, items: Sequence[ItemT]) -> Sequence[AnswerT | BaseException]:
            if clock() < self._unary_until:
                return await self._one_by_one(items)
            try:
                answers = await send_batch(items)
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.UNIMPLEMENTED:
                    raise
                log.warning(
                    "the backend has no batched call yet (an older release?): unary calls for %.0f s",
                    unary_for_seconds,
                )
                self._unary_until = clock() + unary_for_seconds
                return await self._one_by_one(items)
            if len(answers) != len(items):
                raise RuntimeError(f"{len(answers)} answers for {len(items)} items")
            return answers

        self._coalescer: Coalescer[None, ItemT, AnswerT] = Coalescer(run, max_batch=max_batch, lanes=lanes)

    async def _one_by_one(self, items: Sequence[ItemT]) -> list[AnswerT | BaseException]:
        """Each item as its unary call, side by side: its answer, or the error it raised."""
        answers = await asyncio.gather(*(self._send_one(item) for item in items), return_exceptions=True)
        return list(answers)

    @property
    def stats(self) -> tuple[int, int]:
        """(batched calls made, items answered through them) so far."""
        return self._coalescer.stats.batches, self._coalescer.stats.items

    async def __call__(self, item: ItemT) -> AnswerT:
        return await self._coalescer.submit(None, item)


def member_resolutions(
    stub: member_service_pb2_grpc.MemberServiceAsyncStub, *, clock: Callable[[], float] = time.monotonic
) -> CoalescedCalls[member_pb.Identity, str]:
    """``ResolveMember`` for one identity, sent as ``ResolveMembers`` calls: the member id."""

    async def send(identities: Sequence[member_pb.Identity]) -> list[str | BaseException]:
        answer = await stub.ResolveMembers(member_pb.ResolveMembersRequest(identities=identities))
        return [
            refusal_error(resolution.refusal) if resolution.HasField("refusal") else resolution.member_id
            for resolution in answer.resolutions
        ]

    async def send_one(identity: member_pb.Identity) -> str:
        return (await stub.ResolveMember(member_pb.ResolveMemberRequest(identity=identity))).member_id

    return CoalescedCalls(send, send_one, clock=clock)


def stock_reservations(
    stub: inventory_service_pb2_grpc.InventoryServiceAsyncStub, *, clock: Callable[[], float] = time.monotonic
) -> CoalescedCalls[inventory_pb.ReserveStockRequest, Reservation]:
    """``ReserveStock`` for one request, sent as ``ReserveStocks`` calls: the reservation."""

    async def send(
        requests: Sequence[inventory_pb.ReserveStockRequest],
    ) -> list[inventory_pb.Reservation | BaseException]:
        answer = await stub.ReserveStocks(inventory_pb.ReserveStocksRequest(requests=requests))
        return [
            refusal_error(outcome.refusal) if outcome.HasField("refusal") else outcome.reservation
            for outcome in answer.outcomes
        ]

    async def send_one(request: inventory_pb.ReserveStockRequest) -> Reservation:
        return (await stub.ReserveStock(request)).reservation

    return CoalescedCalls(send, send_one, clock=clock)


def basket_prices(
    stub: pricing_service_pb2_grpc.PricingServiceAsyncStub, *, clock: Callable[[], float] = time.monotonic
) -> CoalescedCalls[pricing_pb.PriceBasketRequest, pricing_pb.PriceBasketResponse]:
    """``PriceBasket`` for one basket, sent as ``PriceBaskets`` calls: the priced basket."""

    async def send(
        baskets: Sequence[pricing_pb.PriceBasketRequest],
    ) -> list[pricing_pb.PriceBasketResponse | BaseException]:
        answer = await stub.PriceBaskets(pricing_pb.PriceBasketsRequest(baskets=baskets))
        return [
            refusal_error(outcome.refusal) if outcome.HasField("refusal") else outcome.basket
            for outcome in answer.outcomes
        ]

    async def send_one(basket: pricing_pb.PriceBasketRequest) -> pricing_pb.PriceBasketResponse:
        answer: pricing_pb.PriceBasketResponse = await stub.PriceBasket(basket)
        return answer

    return CoalescedCalls(send, send_one, max_batch=BASKETS_MAX, lanes=BASKET_LANES, clock=clock)
