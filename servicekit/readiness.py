"""Readiness checks that prove a round trip, each within a hard time limit.

A connected client proves nothing: a frozen (SIGSTOPped, paused, partitioned) NATS server or
PostgreSQL keeps its TCP connections open, so a client's "connected" flag stays true while
nothing it sends is answered. Each check here asks the server something and waits for the
answer; :func:`within` bounds it, so a server that never answers reads as not ready in the
time allowed instead of hanging the probe.

The gateway's ``/readyz`` and every service's gRPC health status are built from these.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import ServiceUnavailableError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.nats_connection import NatsConnection

log = logging.getLogger("servicekit.readiness")

T = TypeVar("T")

# Checks given up on but still unwinding (a cancelled query to a frozen PostgreSQL takes a
# moment to let go of its connection); held here so they are not garbage-collected mid-way.
_abandoned: set[asyncio.Task[Any]] = set()


class NotReady(Exception):
    """A dependency answered, but not in a usable way; the message says how (a short token)."""


async def within(check: Callable[[], Awaitable[T]], timeout: float) -> T:  # noqa: ASYNC109 - the bound is the point
    """``check()``'s result, or :class:`TimeoutError` once ``timeout`` seconds have passed.

    Unlike :func:`asyncio.wait_for`, this returns at the deadline even when the check is
    slow to cancel: the cancelled check finishes unwinding in the background.
    """
    task: asyncio.Task[T] = asyncio.ensure_future(check())
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if done:
        return task.result()
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_forget)
    raise TimeoutError(f"no answer within {timeout:g}s")


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.debug("an abandoned readiness check failed", extra={"error": repr(task.exception())})


async def postgres_answers(engine: AsyncEngine) -> None:
    """Raise unless PostgreSQL answers ``SELECT 1`` on a connection from ``engine``'s pool."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def nats_answers(nats: NatsConnection, timeout: float) -> None:  # noqa: ASYNC109
    """Raise :class:`NotReady` unless the NATS server answers a JetStream account-info request.

    A request, not ``flush()``: nats-py (2.16) leaves a timed-out flush's PING waiting for its
    PONG, and that late PONG, once a frozen server resumes, stops the client's read loop for good.
    A timed-out request is simply forgotten. JetStream answering also proves more than a PONG:
    it is what the outbox relay, the consumers and the sales journal need.
    """
    if not nats.is_connected:
        raise NotReady("not connected")
    try:
        await nats.client.jetstream(timeout=timeout).account_info()
    except NatsTimeoutError as exc:
        raise NotReady("no answer") from exc
    except (ServiceUnavailableError, NoRespondersError) as exc:
        raise NotReady("jetstream unavailable") from exc
