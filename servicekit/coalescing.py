"""Coalescing of concurrent requests on one hot key into one batch.

When thousands of buyers hit one SKU at one location, one UPDATE per request serialises
on the row lock and pays one WAL flush each. Instead, requests for the same key queue
up; whoever finds the key idle becomes the drainer and hands everything queued so far to
``run_batch`` as one batch (one transaction, one row lock, one commit), then the next
batch, until the queue is empty. Each caller still gets its own answer, and batches are
processed in arrival order, so earlier requests are served before later ones.

The coalescing is per process; across processes the row lock keeps it correct.

The same holds for a call to another service: the gateway hands concurrent identity
resolutions, reservations and baskets to their service as batched calls
(``gateway.adapters.coalesced_calls``), the next batch gathering while one is in flight. An
idle system pays no delay: the first request finds the key idle and goes at once.

``lanes`` is how many batches of one key may run at once (one by default). One lane keeps
the batches in order, each after the one before: what a transaction on one hot row wants
(a reservation batch), since a second would only wait for the first's lock. Batches that do
not wait for each other may take two (the gateway's basket calls, its Idempotency-Key
groups): the second is sent while the first is answered, so the two processes work side by
side rather than in turns. Every lane takes its batch from the head of the same queue, so
items still leave in arrival order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

KeyT = TypeVar("KeyT", bound=Hashable)
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

# run_batch returns one outcome per item, in order: a result, or an exception to raise.
BatchRunner = Callable[[KeyT, Sequence[ItemT]], Awaitable[Sequence[ResultT | BaseException]]]


@dataclass
class CoalescingStats:
    batches: int = 0
    items: int = 0
    largest_batch: int = 0


@dataclass
class _Queue(Generic[ItemT, ResultT]):
    waiting: deque[tuple[ItemT, asyncio.Future[ResultT]]] = field(default_factory=deque)
    draining: int = 0  # batches of this key running now


class Coalescer(Generic[KeyT, ItemT, ResultT]):
    """Batches concurrent submissions per key; at most ``lanes`` batches of a key run at a time."""

    def __init__(self, run_batch: BatchRunner[KeyT, ItemT, ResultT], *, max_batch: int = 256, lanes: int = 1) -> None:
        if max_batch < 1 or lanes < 1:
            raise ValueError(f"a coalescer needs at least one item per batch and one lane: {max_batch}, {lanes}")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._lanes = lanes
        self._queues: dict[KeyT, _Queue[ItemT, ResultT]] = {}
        self._drainers: set[asyncio.Task[None]] = set()  # held so the loop cannot collect them
        self.stats = CoalescingStats()

    async def submit(self, key: KeyT, item: ItemT) -> ResultT:
        queue = self._queues.setdefault(key, _Queue())
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        queue.waiting.append((item, future))
        if queue.draining < self._lanes:
            queue.draining += 1
            drainer = asyncio.create_task(self._drain(key, queue))
            self._drainers.add(drainer)
            drainer.add_done_callback(self._drainers.discard)
        return await future

    async def _drain(self, key: KeyT, queue: _Queue[ItemT, ResultT]) -> None:
        try:
            while queue.waiting:
                batch = [queue.waiting.popleft() for _ in range(min(self._max_batch, len(queue.waiting)))]
                self.stats.batches += 1
                self.stats.items += len(batch)
                self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
                try:
                    outcomes = await self._run_batch(key, [item for item, _ in batch])
                except BaseException as exc:  # the whole batch failed (database down...)
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue  # the caller gave up (cancelled); the effect stands and is replayable
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            queue.draining -= 1
            if not queue.waiting and not queue.draining:
                self._queues.pop(key, None)
