"""Small asyncio helpers for long-running workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
) -> Background:
    """A background loop running ``step`` every ``interval`` seconds until stopped (0 switches it off).

    ``again`` drains a backlog: while it says so of what ``step`` returned (a full batch, a cursor
    not yet at the end), ``step`` runs again at once rather than after the interval. The first
    round runs at once unless ``first_run_now`` is false. A failing round (database or a remote
    system down) is logged and tried again next round.
    """

    async def run(stop: asyncio.Event) -> None:
        if not interval or (not first_run_now and await sleep_unless(stop, interval)):
            return
        while not stop.is_set():
            try:
                result = await step()
                while again is not None and again(result) and not stop.is_set():
                    result = await step()
            except Exception as exc:
                log.warning("background round failed", extra={"what": what, "error": str(exc)})
            if await sleep_unless(stop, interval):
                return

    return run
