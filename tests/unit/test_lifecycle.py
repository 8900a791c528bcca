"""servicekit.lifecycle.every: the background loop every service's periodic work runs in."""

from __future__ import annotations

import asyncio
import logging

import pytest

from servicekit.lifecycle import every

HOUR = 3600.0


async def test_a_full_batch_runs_again_at_once_and_the_loop_then_waits_for_the_interval() -> None:
    stop = asyncio.Event()
    backlog = [500, 500, 120]  # two full batches, then the rest
    calls: list[int] = []

    async def step() -> int:
        done = backlog.pop(0) if backlog else 0
        calls.append(done)
        if not backlog:
            stop.set()  # the round's last batch: nothing else may run within the hour
        return done

    await asyncio.wait_for(every("sweep", HOUR, step, again=lambda n: n == 500)(stop), timeout=5)

    assert calls == [500, 500, 120]


async def test_without_again_one_step_per_round() -> None:
    stop = asyncio.Event()
    rounds = 0

    async def step() -> int:
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            stop.set()
        return 500

    await asyncio.wait_for(every("tick", 0.001, step)(stop), timeout=5)

    assert rounds == 3


async def test_a_failing_round_is_logged_and_the_next_round_runs(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    attempts = 0

    async def step() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("database down")
        stop.set()

    with caplog.at_level(logging.WARNING, logger="servicekit.lifecycle"):
        await asyncio.wait_for(every("schedule", 0.001, step)(stop), timeout=5)

    assert attempts == 2
    [record] = [r for r in caplog.records if r.getMessage() == "background round failed"]
    assert (record.what, record.error) == ("schedule", "database down")  # type: ignore[attr-defined]


async def test_a_round_failing_inside_a_task_group_logs_what_failed_not_only_how_many(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    attempts = 0

    async def push(store: str) -> None:
        if store != "S2":
            raise ConnectionError(f"station {store} unreachable")

    async def step() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 2:
            stop.set()
            return
        async with asyncio.TaskGroup() as group:
            for store in ("S1", "S2", "S3"):
                group.create_task(push(store))

    with caplog.at_level(logging.WARNING, logger="servicekit.lifecycle"):
        await asyncio.wait_for(every("labels", 0.001, step)(stop), timeout=5)

    [record] = [r for r in caplog.records if r.getMessage() == "background round failed"]
    assert record.error == "station S1 unreachable; station S3 unreachable"  # type: ignore[attr-defined]


async def test_stopping_ends_a_drain_between_batches() -> None:
    stop = asyncio.Event()
    calls = 0

    async def step() -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            stop.set()
        return True  # always more

    await asyncio.wait_for(every("review", HOUR, step, again=bool)(stop), timeout=5)

    assert calls == 2


async def test_an_interval_of_zero_switches_the_loop_off() -> None:
    async def step() -> None:
        raise AssertionError("a switched-off loop ran")

    await asyncio.wait_for(every("replenishment", 0, step)(asyncio.Event()), timeout=5)


async def test_first_run_after_one_interval_runs_nothing_when_stopped_before() -> None:
    stop = asyncio.Event()
    ran = False

    async def step() -> None:
        nonlocal ran
        ran = True

    loop = asyncio.create_task(every("replenishment", HOUR, step, first_run_now=False)(stop))
    await asyncio.sleep(0)  # let the loop start waiting for its first interval
    stop.set()
    await asyncio.wait_for(loop, timeout=5)

    assert not ran


async def test_wake_runs_the_next_round_at_once_rather_than_after_the_interval() -> None:
    stop = asyncio.Event()
    wake = asyncio.Event()
    rounds = 0

    async def step() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            wake.set()  # work made while the round ran: the loop must not sleep the hour
        else:
            stop.set()

    await asyncio.wait_for(every("label push", HOUR, step, wake=wake)(stop), timeout=5)

    assert rounds == 2


async def test_due_in_shortens_the_wait_to_the_next_known_work() -> None:
    stop = asyncio.Event()
    rounds = 0

    async def step() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 2:
            stop.set()

    async def due_in() -> float | None:
        return 0.001

    await asyncio.wait_for(every("price schedule", HOUR, step, due_in=due_in)(stop), timeout=5)

    assert rounds == 2  # the hour was cut to the next due moment


async def test_work_due_already_waits_the_interval_rather_than_spinning() -> None:
    stop = asyncio.Event()
    rounds = 0

    async def step() -> None:
        nonlocal rounds
        rounds += 1

    async def due_in() -> float | None:
        return -5.0  # due, yet the round took nothing (another replica holds it)

    loop = asyncio.create_task(every("price schedule", HOUR, step, due_in=due_in)(stop))
    for _ in range(20):  # event-loop turns, each enough for another round if the loop spun
        await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)

    assert rounds == 1


class StepClock:
    """A monotonic clock that only the rounds move: each round says how long it took."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_round_longer_than_the_interval_is_followed_by_the_next_at_once() -> None:
    stop = asyncio.Event()
    clock = StepClock()
    rounds = 0

    async def step() -> None:
        nonlocal rounds
        rounds += 1
        clock.now += 2 * HOUR  # a round of two hours, under load
        if rounds == 3:
            stop.set()

    await asyncio.wait_for(every("label acknowledgements", HOUR, step, clock=clock)(stop), timeout=5)

    assert rounds == 3  # no hour waited between them


async def test_a_round_that_took_most_of_the_interval_waits_only_the_rest() -> None:
    stop = asyncio.Event()
    clock = StepClock()
    rounds = 0

    async def step() -> None:
        nonlocal rounds
        rounds += 1
        clock.now += HOUR - 0.001  # the next round is due a millisecond after this one ends
        if rounds == 2:
            stop.set()

    await asyncio.wait_for(every("label acknowledgements", HOUR, step, clock=clock)(stop), timeout=5)

    assert rounds == 2


async def test_a_failing_round_waits_the_whole_interval_however_long_it_took() -> None:
    stop = asyncio.Event()
    clock = StepClock()
    rounds = 0

    async def step() -> None:
        nonlocal rounds
        rounds += 1
        clock.now += 2 * HOUR  # a timeout against a station that is down
        raise ConnectionError("station down")

    loop = asyncio.create_task(every("label acknowledgements", HOUR, step, clock=clock)(stop))
    for _ in range(20):  # event-loop turns, each enough for another round if the loop did not wait
        await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)

    assert rounds == 1
