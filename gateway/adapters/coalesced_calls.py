"""Backend calls coalesced across requests: one batched call for many concurrent callers.

Some calls come in floods: identity resolutions (apps and mini-programs resolve a member on
almost every request) and reservations (a flash sale's buyers on one SKU). Sent one by one,
each pays a whole gRPC round trip on both sides: the call's machinery was a quarter of the
gateway's CPU per resolution and 17% per reservation, and much of the backends'. Here
concurrent calls of one kind queue up (:class:`servicekit.coalescing.Coalescer`): one
batched call is in flight at a time, carrying everything that queued while the previous one
ran, and each caller gets its own answer. An idle gateway adds no delay: the first call goes
at once.

An item the backend refuses fails only its own caller, with the error the unary call would
have raised (:func:`gateway.http.grpc_errors.refusal_error`), so the problem answer is the
same; a batched call that fails as a whole (the service unavailable, the deadline passed)
fails every caller in it, as each unary call would have failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.inventory.v1 import inventory_service_pb2_grpc
from retail.member.v1 import member_service_pb2 as member_pb
from retail.member.v1 import member_service_pb2_grpc

from gateway.http.grpc_errors import refusal_error
from servicekit.coalescing import Coalescer

# Items per batched call at most (the services accept up to 500).
BATCH_MAX = 200

Reservation = inventory_pb.Reservation
ItemT = TypeVar("ItemT")
AnswerT = TypeVar("AnswerT")


class CoalescedCalls(Generic[ItemT, AnswerT]):
    """Concurrent calls of one kind, sent ``send_batch`` at a time; awaiting one gives its own answer."""

    def __init__(
        self,
        send_batch: Callable[[Sequence[ItemT]], Awaitable[Sequence[AnswerT | BaseException]]],
        *,
        max_batch: int = BATCH_MAX,
    ) -> None:
        async def run(_: None, items: Sequence[ItemT]) -> Sequence[AnswerT | BaseException]:
            answers = await send_batch(items)
            if len(answers) != len(items):
                raise RuntimeError(f"{len(answers)} answers for {len(items)} items")
            return answers

        self._coalescer: Coalescer[None, ItemT, AnswerT] = Coalescer(run, max_batch=max_batch)

    @property
    def stats(self) -> tuple[int, int]:
        """(batched calls made, items answered through them) so far."""
        return self._coalescer.stats.batches, self._coalescer.stats.items

    async def __call__(self, item: ItemT) -> AnswerT:
        return await self._coalescer.submit(None, item)


def member_resolutions(stub: member_service_pb2_grpc.MemberServiceAsyncStub) -> CoalescedCalls[member_pb.Identity, str]:
    """``ResolveMember`` for one identity, sent as ``ResolveMembers`` calls: the member id."""

    async def send(identities: Sequence[member_pb.Identity]) -> list[str | BaseException]:
        answer = await stub.ResolveMembers(member_pb.ResolveMembersRequest(identities=identities))
        return [
            refusal_error(resolution.refusal) if resolution.HasField("refusal") else resolution.member_id
            for resolution in answer.resolutions
        ]

    return CoalescedCalls(send)


def stock_reservations(
    stub: inventory_service_pb2_grpc.InventoryServiceAsyncStub,
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

    return CoalescedCalls(send)
