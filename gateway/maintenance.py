"""Housekeeping of the gateway's own tables, run in the background of every gateway pod.

``idempotency_record`` rows matter while a client may still retry a request (hours; kept
a week). ``journaled_sale`` rows answer "duplicate" to a terminal replaying old sales;
they are kept longer than the SALES stream keeps messages (90 days), after which a
replay would be a new journal entry that every consumer still drops by its sale id.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.lifecycle import sleep_unless

log = logging.getLogger("gateway.maintenance")

IDEMPOTENCY_RETENTION = timedelta(days=7)
JOURNALED_SALE_RETENTION = timedelta(days=120)
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


async def prune_gateway_tables(
    engine: AsyncEngine,
    *,
    idempotency_retention: timedelta = IDEMPOTENCY_RETENTION,
    journaled_sale_retention: timedelta = JOURNALED_SALE_RETENTION,
) -> dict[str, int]:
    """Delete expired idempotency records and journaled sale ids in small batches; counts per table."""
    return {
        "idempotency_record": await _prune(engine, "idempotency_record", "claimed_at", idempotency_retention),
        "journaled_sale": await _prune(engine, "journaled_sale", "recorded_at", journaled_sale_retention),
    }


async def run_maintenance(
    engine: AsyncEngine, stop: asyncio.Event, *, first_after_seconds: float = 60.0, interval_seconds: float = 3600.0
) -> None:
    """Prune a minute after start-up (start-up stays quick), then hourly until ``stop`` is set;
    a database outage only delays it."""
    if await sleep_unless(stop, first_after_seconds):
        return
    while not stop.is_set():
        try:
            deleted = await prune_gateway_tables(engine)
            if any(deleted.values()):
                log.info("pruned gateway tables", extra=deleted)
        except Exception as exc:
            log.warning("gateway table pruning failed; will retry", extra={"error": str(exc)})
        await sleep_unless(stop, interval_seconds)
