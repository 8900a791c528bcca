"""servicekit.coalescing: concurrent submissions go as batches, at most ``lanes`` of a key at once,
taken in arrival order, and each submitter gets its own outcome."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

import pytest

from servicekit.coalescing import Coalescer


class HeldBatches:
    """A batch runner whose batches wait until the test lets them finish; it counts how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most_at_once = 0
        self.started: asyncio.Queue[tuple[list[int], asyncio.Event]] = asyncio.Queue()
        self.taken: list[list[int]] = []

    async def __call__(self, key: str, items: Sequence[int]) -> list[int | BaseException]:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.taken.append(list(items))
        finish = asyncio.Event()
        await self.started.put((list(items), finish))
        await finish.wait()
        self.running -= 1
        return [ValueError(f"item {item} refused") if item % 7 == 3 else item * 10 for item in items]


@pytest.mark.parametrize("lanes", [1, 2, 3])
async def test_at_most_lanes_batches_of_a_key_run_at_once_and_each_submitter_gets_its_own_outcome(lanes: int) -> None:
    runner = HeldBatches()
    coalescer: Coalescer[str, int, int] = Coalescer(runner, max_batch=4, lanes=lanes)
    submitted = [asyncio.create_task(coalescer.submit("hot", n)) for n in range(40)]
    # The lanes fill at once; then the oldest batch is let finish only while every lane is busy,
    # so a batch started beyond the lanes would show in most_at_once.
    held = deque([await runner.started.get() for _ in range(lanes)])
    assert runner.running == lanes
    while held:
        items, finish = held.popleft()
        assert len(items) <= 4
        finish.set()
        if sum(len(batch) for batch in runner.taken) < 40:  # its lane takes the next batch at once
            held.append(await runner.started.get())

    outcomes = await asyncio.gather(*submitted, return_exceptions=True)
    for n, outcome in enumerate(outcomes):
        if n % 7 == 3:
            assert isinstance(outcome, ValueError)
            assert str(outcome) == f"item {n} refused"
        else:
            assert outcome == n * 10
    assert runner.most_at_once == lanes
    # Batches are taken in arrival order: together they are every item once, in order.
    assert [item for batch in runner.taken for item in batch] == list(range(40))
    assert coalescer.stats.items == 40
