"""Housekeeping of the kit's own tables, run by every service in the background.

``request_log`` rows only matter while a caller may still retry (hours; kept a week).
``inbox`` rows must outlive every possible redelivery: JetStream drops messages after the
stream's ``max_age`` (30 days by default), so an inbox row older than that plus a margin
can never be asked about again. Published ``outbox`` rows are pruned by the relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.lifecycle import sleep_unless

log = logging.getLogger("servicekit.maintenance")

REQUEST_LOG_RETENTION = timedelta(days=7)
INBOX_RETENTION = timedelta(days=35)
_BATCH = 5000


async def _prune(engine: AsyncEngine, table: str, column: str, older_than: timedelta) -> int:
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
        "request_log": await _prune(engine, "request_log", "created_at", request_log_retention),
        "inbox": await _prune(engine, "inbox", "handled_at", inbox_retention),
    }


def kit_maintenance(
    engine: AsyncEngine, *, interval_seconds: float = 3600.0
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """A background task for ``GrpcServer``: prune now and then until stopped."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                deleted = await prune_kit_tables(engine)
                if any(deleted.values()):
                    log.info("pruned kit tables", extra=deleted)
            except Exception as exc:  # a database outage must not end the task
                log.warning("kit table pruning failed; will retry", extra={"error": str(exc)})
            await sleep_unless(stop, interval_seconds)

    return run
