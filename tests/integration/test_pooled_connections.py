"""Pooled connections: pinged only after sitting idle, a dead one costs one retryable failure;
one-statement reads run outside a transaction."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import create_engine, is_infrastructure_failure, units_of_work
from servicekit.grpc_server import GrpcServer
from tests.support.notes import SERVICE, NoteService, call


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(database_url: str, pid: int) -> None:
    """Kill one server process behind a pooled connection, as a PostgreSQL restart would."""
    other = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with other.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            # Wait until it is gone, so that the pool's connection is surely dead.
            await connection.execute(
                text(
                    "DO $$ BEGIN WHILE EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :pid) LOOP "
                    "PERFORM pg_sleep(0.01); END LOOP; END $$".replace(":pid", str(pid))
                )
            )
    finally:
        await other.dispose()


async def test_a_connection_that_sat_idle_and_died_is_replaced_before_it_is_handed_out(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_after_idle_seconds=0.0)
    try:
        first = await backend_pid(engine)
        await terminate(database_url, first)

        second = await backend_pid(engine)  # no error: the ping found it dead and the pool reconnected

        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_used_a_moment_ago_that_died_fails_once_as_infrastructure_then_the_pool_recovers(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=2, max_overflow=0, ping_after_idle_seconds=3600)
    try:
        async with engine.connect() as one, engine.connect() as two:  # two pooled connections
            pids = [
                int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())
                for connection in (one, two)
            ]
        for pid in pids:
            await terminate(database_url, pid)

        with pytest.raises(DBAPIError) as failed:  # not pinged: it was used a moment ago
            await backend_pid(engine)
        assert is_infrastructure_failure(failed.value)

        # The failure discarded every connection opened before it: the next ones are new.
        async with engine.connect() as one, engine.connect() as two:
            again = {
                int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())
                for connection in (one, two)
            }
        assert not again & set(pids)
    finally:
        await engine.dispose()


async def test_grpc_answers_unavailable_for_a_connection_that_died_and_the_retry_succeeds(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_after_idle_seconds=3600)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE note (id text primary key, body text)"))
    server = GrpcServer(
        name="notes", port=0, host="127.0.0.1", registrations=[NoteService(engine).register], service_names=[SERVICE]
    )
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.bound_port}")
    try:
        add = call(channel, "Add")
        await add(StringValue(value="first"), metadata=(("request-id", "r1"),))
        await terminate(database_url, await backend_pid(engine))

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await add(StringValue(value="second"), metadata=(("request-id", "r2"),))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

        assert (await add(StringValue(value="second"), metadata=(("request-id", "r2"),))).value
        async with engine.connect() as connection:
            bodies = (await connection.execute(text("SELECT body FROM note ORDER BY body"))).scalars().all()
        assert bodies == ["first", "second"]
    finally:
        await channel.close(None)
        await server.stop()
        await engine.dispose()


async def test_a_one_statement_read_runs_outside_a_transaction_and_a_unit_of_work_inside_one(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    unit_of_work = units_of_work(engine)
    current = text("SELECT txid_current()")
    try:
        async with unit_of_work().read() as session:
            # Each statement is a transaction of its own: no BEGIN and ROLLBACK around them.
            assert (await session.execute(current)).scalar_one() != (await session.execute(current)).scalar_one()
        async with unit_of_work() as uow:
            assert (await uow.session.execute(current)).scalar_one() == (
                await uow.session.execute(current)
            ).scalar_one()
        # The pool's connection went back as it was: the next unit of work is one transaction again.
        async with unit_of_work() as uow:
            first = (await uow.session.execute(current)).scalar_one()
            assert (await uow.session.execute(current)).scalar_one() == first
    finally:
        await engine.dispose()
