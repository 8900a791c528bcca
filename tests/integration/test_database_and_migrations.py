"""The kit's engine, unit of work and migrations against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import sys
import uuid

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from servicekit import migrations
from servicekit.db import UnitOfWork, create_engine
from servicekit.outbox import OutboxEvent
from servicekit.settings import to_plain_url
from tests.conftest import Infra


async def test_committed_unit_of_work_writes_state_and_outbox_together(database_url: str) -> None:
    engine = create_engine(database_url)
    uow = UnitOfWork(async_sessionmaker(engine, expire_on_commit=False))
    async with uow:
        await uow.session.execute(text("CREATE TABLE note (body text)"))
        await uow.session.execute(text("INSERT INTO note VALUES ('kept')"))
        uow.publish(OutboxEvent("retail.test.v1.noted", "retail.test.v1.Noted", "note-1", b"\x01"))
        await uow.commit()
    async with uow:
        notes = (await uow.session.execute(text("SELECT count(*) FROM note"))).scalar_one()
        events = (await uow.session.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
    await engine.dispose()
    assert (notes, events) == (1, 1)


async def test_unit_of_work_left_without_commit_changes_nothing(database_url: str) -> None:
    engine = create_engine(database_url)
    uow = UnitOfWork(async_sessionmaker(engine, expire_on_commit=False))

    async def failing_handler() -> None:
        async with uow:
            uow.publish(OutboxEvent("retail.test.v1.noted", "retail.test.v1.Noted", "note-1", b"\x01"))
            await uow.session.execute(
                text("INSERT INTO request_log (request_id, method, request_digest) VALUES ('r', 'm', '')")
            )
            await uow.session.flush()
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        await failing_handler()
    async with uow:
        outbox_rows = (await uow.session.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
        logged = (await uow.session.execute(text("SELECT count(*) FROM request_log"))).scalar_one()
    await engine.dispose()
    assert (outbox_rows, logged) == (0, 0)


async def test_concurrent_migrators_take_turns_and_a_second_upgrade_is_a_no_op(infra: Infra) -> None:
    infra_suffix = uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(to_plain_url(infra.postgres_admin_url))
    await admin.execute(f'CREATE DATABASE "migrate_race_{infra_suffix}"')
    await admin.close()
    url = infra.database_url(f"migrate_race_{infra_suffix}")
    # Separate processes, as two pods and a migration Job would be.
    migrators = [
        await asyncio.create_subprocess_exec(sys.executable, "-m", "servicekit.migrations", "--database-url", url)
        for _ in range(4)
    ]
    assert [await migrator.wait() for migrator in migrators] == [0, 0, 0, 0]
    await asyncio.to_thread(migrations.upgrade, url)
    connection = await asyncpg.connect(url)
    tables = {
        r["tablename"] for r in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    version = await connection.fetch("SELECT version_num FROM alembic_version")
    await connection.close()
    assert {"outbox", "inbox", "request_log"} <= tables
    assert [r["version_num"] for r in version] == ["kit_0001"]
