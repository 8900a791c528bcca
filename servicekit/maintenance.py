"""Housekeeping of the kit's own tables, run by every service in the background.

``request_log`` rows only matter while a caller may still retry (hours; kept a week).
``inbox`` rows must outlive every possible redelivery: JetStream drops messages after the
stream's ``max_age`` (30 days by default), so an inbox row older than that plus a margin
can never be asked about again. Published ``outbox`` rows are pruned by the relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.lifecycle import sleep_unless

log = logging.getLogger("servicekit.maintenance")

REQUEST_LOG_RETENTION = timedelta(days=7)
INBOX_RETENTION = timedelta(days=35)
_BATCH = 5000


async def prune_older_than(engine: AsyncEngine, table: str, column: str, older_than: timedelta) -> int:
    """Delete rows whose ``column`` is older than ``older_than``, in batches; returns how many."""
    deleted_total = 0
    while True:
        async with engine.begin() as connection:
            result = await connection.execute(
                text(
                    f"DELETE FROM {table} WHERE ctid IN "
                    f"(SELECT ctid FROM {table} WHERE {column} < now() - CAST(:age AS interval) LIMIT {_BATCH})"
                ),
                {"age": older_than},
            )
        deleted_total += result.rowcount
        if result.rowcount < _BATCH:
            return deleted_total


async def prune_kit_tables(
    engine: AsyncEngine,
    *,
    request_log_retention: timedelta = REQUEST_LOG_RETENTION,
    inbox_retention: timedelta = INBOX_RETENTION,
) -> dict[str, int]:
    """Delete expired request-log and inbox rows in small batches; returns counts per table."""
    return {
        "request_log": await prune_older_than(engine, "request_log", "created_at", request_log_retention),
        "inbox": await prune_older_than(engine, "inbox", "handled_at", inbox_retention),
    }


async def prune_periodically(
    what: str,
    prune: Callable[[], Awaitable[dict[str, int]]],
    stop: asyncio.Event,
    *,
    interval_seconds: float = 3600.0,
    first_after_seconds: float = 0.0,
) -> None:
    """Run ``prune`` now and then until ``stop`` is set; a database outage only delays it."""
    if first_after_seconds and await sleep_unless(stop, first_after_seconds):
        return
    while not stop.is_set():
        try:
            deleted = await prune()
            if any(deleted.values()):
                log.info("pruned %s", what, extra=deleted)
        except Exception as exc:  # a database outage must not end the task
            log.warning("pruning %s failed; will retry", what, extra={"error": str(exc)})
        await sleep_unless(stop, interval_seconds)


def kit_maintenance(
    engine: AsyncEngine, *, interval_seconds: float = 3600.0
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """A background task for ``GrpcServer``: prune the kit's tables now and then until stopped."""

    async def run(stop: asyncio.Event) -> None:
        await prune_periodically(
            "kit tables", lambda: prune_kit_tables(engine), stop, interval_seconds=interval_seconds
        )

    return run
