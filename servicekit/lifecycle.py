"""Small asyncio helpers for long-running workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""A background task as :class:`servicekit.grpc_server.GrpcServer` runs it: until ``stop`` is set."""


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when ``stop`` is set; returns whether it was set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


def every(
    what: str,
    interval: float,
    step: Callable[[], Awaitable[T]],
    *,
    again: Callable[[T], bool] | None = None,
    first_run_now: bool = True,
    wake: asyncio.Event | None = None,
    due_in: Callable[[], Awaitable[float | None]] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Background:
    """A background loop running ``step`` every ``interval`` seconds until stopped (0 switches it off).

    The interval runs from a round's start: a round that took part of it is followed by the next
    once the rest has passed, and a round that took longer by the next at once (a poll stays a
    poll every ``interval``, however long its rounds take under load). A failing round is
    followed after the whole interval, so that a system that is down is not asked again at once.

    ``again`` drains a backlog: while it says so of what ``step`` returned (a full batch, a cursor
    not yet at the end), ``step`` runs again at once rather than after the interval. The first
    round runs at once unless ``first_run_now`` is false. A failing round (database or a remote
    system down) is logged and tried again next round.

    Two ways to run sooner than the interval, so that work known to be due does not wait for the
    next poll: ``wake``, an event another part of the process sets when it has just made work (a
    set during a round runs the next one at once), and ``due_in``, asked after each round, the
    seconds until the next known work is due (``None``, or a moment already past: the interval).
    """

    async def run(stop: asyncio.Event) -> None:
        if not interval or (not first_run_now and await sleep_unless(stop, interval)):
            return
        while not stop.is_set():
            if wake is not None:
                wake.clear()
            wait = interval
            started = clock()
            try:
                result = await step()
                while again is not None and again(result) and not stop.is_set():
                    result = await step()
                wait = max(0.0, interval - (clock() - started))
                if due_in is not None:
                    due = await due_in()
                    if due is not None and 0 < due < wait:
                        wait = due
            except Exception as exc:
                log.warning("background round failed", extra={"what": what, "error": error_text(exc)})
            if await _sleep_unless(stop, wait, wake):
                return

    return run


def error_text(exc: BaseException) -> str:
    """What went wrong, for a log line: an exception group (a TaskGroup's failure, which says only
    how many sub-exceptions it has) as the texts of the exceptions inside it."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(error_text(inner) for inner in exc.exceptions)
    return str(exc)


async def _sleep_unless(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None) -> bool:
    """Sleep until ``stop`` or ``wake`` is set or ``seconds`` passed; returns whether ``stop`` was set."""
    if wake is None:
        return await sleep_unless(stop, seconds)
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return stop.is_set()
