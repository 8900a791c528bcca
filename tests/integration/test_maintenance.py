"""Pruning of the kit's request log and inbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text

from servicekit.db import create_engine
from servicekit.maintenance import kit_maintenance, prune_kit_tables


async def test_expired_request_log_and_inbox_rows_are_pruned_and_recent_ones_kept(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        for request_id, age_days in (("old", 8), ("recent", 1)):
            await connection.execute(
                text(
                    "INSERT INTO request_log (request_id, method, request_digest, created_at) "
                    "VALUES (:id, 'M', '', now() - make_interval(days => :age))"
                ),
                {"id": request_id, "age": age_days},
            )
        for event_id, age_days in (("e-old", 40), ("e-recent", 20)):
            await connection.execute(
                text(
                    "INSERT INTO inbox (consumer, event_id, subject, handled_at) "
                    "VALUES ('c', :id, 's', now() - make_interval(days => :age))"
                ),
                {"id": event_id, "age": age_days},
            )
    deleted = await prune_kit_tables(engine)
    async with engine.connect() as connection:
        requests = (await connection.execute(text("SELECT request_id FROM request_log"))).scalars().all()
        events = (await connection.execute(text("SELECT event_id FROM inbox"))).scalars().all()
    await engine.dispose()
    assert deleted == {"request_log": 1, "inbox": 1}
    assert (requests, events) == (["recent"], ["e-recent"])


async def test_pruning_works_through_more_rows_than_one_batch(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO request_log (request_id, method, request_digest, created_at) "
                "SELECT 'r' || n, 'M', '', now() - interval '30 days' FROM generate_series(1, 12001) AS n"
            )
        )
    deleted = await prune_kit_tables(engine, request_log_retention=timedelta(days=1))
    await engine.dispose()
    assert deleted["request_log"] == 12001


async def test_the_background_task_prunes_and_stops_when_asked(database_url: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO request_log (request_id, method, request_digest, created_at) "
                "VALUES ('stale', 'M', '', now() - interval '9 days')"
            )
        )
    stop = asyncio.Event()
    task = asyncio.create_task(kit_maintenance(engine, interval_seconds=3600)(stop))
    async with asyncio.timeout(10):
        while True:
            async with engine.connect() as connection:
                if not (await connection.execute(text("SELECT count(*) FROM request_log"))).scalar_one():
                    break
            await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    await engine.dispose()
