"""Housekeeping of the gateway's own tables, run in the background of every gateway pod.

``idempotency_record`` rows matter while a client may still retry a request (hours; kept
a week). ``journaled_sale`` rows answer "duplicate" to a terminal replaying old sales;
they are kept a month longer than the SALES stream keeps messages (its retention, which
is also the oldest a sale may be when it enters), after which a replay would be a new
journal entry that every consumer still drops by its sale id.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.domain.sales import SALES_JOURNAL_RETENTION
from servicekit.maintenance import prune_older_than, prune_periodically

IDEMPOTENCY_RETENTION = timedelta(days=7)
JOURNALED_SALE_RETENTION = SALES_JOURNAL_RETENTION + timedelta(days=30)


async def prune_gateway_tables(
    engine: AsyncEngine,
    *,
    idempotency_retention: timedelta = IDEMPOTENCY_RETENTION,
    journaled_sale_retention: timedelta = JOURNALED_SALE_RETENTION,
) -> dict[str, int]:
    """Delete expired idempotency records and journaled sale ids in small batches; counts per table."""
    return {
        "idempotency_record": await prune_older_than(engine, "idempotency_record", "claimed_at", idempotency_retention),
        "journaled_sale": await prune_older_than(engine, "journaled_sale", "recorded_at", journaled_sale_retention),
    }


async def run_maintenance(
    engine: AsyncEngine, stop: asyncio.Event, *, first_after_seconds: float = 60.0, interval_seconds: float = 3600.0
) -> None:
    """Prune a minute after start-up (start-up stays quick), then hourly until ``stop`` is set;
    a database outage only delays it."""
    await prune_periodically(
        "gateway tables",
        lambda: prune_gateway_tables(engine),
        stop,
        interval_seconds=interval_seconds,
        first_after_seconds=first_after_seconds,
    )
