"""The kit's gRPC bootstrap and request-id store against real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import create_engine
from servicekit.grpc_server import LIVENESS_SERVICE, GrpcServer, database_and_broker_checks
from servicekit.nats_connection import NatsConnection
from tests.conftest import Infra
from tests.support.faults import frozen
from tests.support.notes import SERVICE, NoteService, call


@pytest.fixture
async def running(infra: Infra, database_url: str) -> AsyncIterator[tuple[GrpcServer, grpc.aio.Channel, AsyncEngine]]:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE note (id text primary key, body text)"))
    nats = NatsConnection(infra.nats_url, name="grpc-test")
    nats.start()
    assert await nats.wait_connected(10)
    notes = NoteService(engine)
    server = GrpcServer(
        name="notes",
        port=0,
        host="127.0.0.1",
        registrations=[notes.register],
        service_names=[SERVICE],
        # What every service's composition root wires.
        readiness_checks=database_and_broker_checks(engine, nats),
        readiness_interval=0.1,
        shutdown_grace=5,
    )
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.bound_port}")
    server.notes = notes  # type: ignore[attr-defined]
    yield server, channel, engine
    await channel.close(None)
    await server.stop()
    await nats.close()
    await engine.dispose()


def reason_of(error: grpc.aio.AioRpcError) -> str | None:
    """The machine-readable reason the kit's interceptor puts in the trailing metadata."""
    metadata: Any = error.trailing_metadata() or ()  # grpc.aio.Metadata: (key, value) pairs
    return {str(key): str(value) for key, value in metadata}.get("retail-error-reason")


async def wait_for_health(channel: grpc.aio.Channel, wanted: int, service: str = "") -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    async with asyncio.timeout(30):
        while (await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)).status != wanted:
            await asyncio.sleep(0.05)


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_the_same_request_id_returns_the_first_answer_and_changes_nothing_again(running: Any) -> None:
    _, channel, engine = running
    metadata = (("request-id", "req-1"),)
    first = await call(channel, "Add")(StringValue(value="milk"), metadata=metadata, timeout=5)
    again = await call(channel, "Add")(StringValue(value="milk"), metadata=metadata, timeout=5)
    assert first == again
    assert (await count(engine, "note"), await count(engine, "outbox")) == (1, 1)


async def test_fifty_concurrent_calls_with_one_request_id_apply_once_and_all_get_the_same_answer(running: Any) -> None:
    _, channel, engine = running
    metadata = (("request-id", "req-concurrent"),)
    answers = await asyncio.gather(
        *(call(channel, "Add")(StringValue(value="eggs"), metadata=metadata, timeout=20) for _ in range(50))
    )
    assert len({answer.value for answer in answers}) == 1
    assert (await count(engine, "note"), await count(engine, "outbox")) == (1, 1)


async def test_a_request_id_reused_for_a_different_request_is_refused_and_changes_nothing(running: Any) -> None:
    _, channel, engine = running
    metadata = (("request-id", "req-reused"),)
    await call(channel, "Add")(StringValue(value="bread"), metadata=metadata, timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(channel, "Add")(StringValue(value="butter"), metadata=metadata, timeout=5)
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason_of(refused.value) == "request-id-reused"
    assert await count(engine, "note") == 1


async def test_a_refused_effect_stores_nothing_so_a_corrected_retry_with_the_same_id_succeeds(running: Any) -> None:
    _, channel, engine = running
    metadata = (("request-id", "req-retry"),)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(channel, "Add")(StringValue(value="reject"), metadata=metadata, timeout=5)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await count(engine, "note"), await count(engine, "outbox"), await count(engine, "request_log")) == (0, 0, 0)
    with pytest.raises(grpc.aio.AioRpcError) as still_refused:
        await call(channel, "Add")(StringValue(value="reject"), metadata=metadata, timeout=5)
    assert still_refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_missing_request_id_is_an_invalid_argument(running: Any) -> None:
    _, channel, _ = running
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(channel, "Add")(StringValue(value="tea"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id is required" in (refused.value.details() or "")


async def test_domain_errors_map_to_precise_codes_with_their_reason(running: Any) -> None:
    _, channel, _ = running
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await call(channel, "FailNotFound")(StringValue(value="n-9"), timeout=5)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert missing.value.details() == "note n-9 does not exist"
    assert reason_of(missing.value) == "note-not-found"


async def test_unexpected_errors_are_internal_and_leak_no_details(running: Any) -> None:
    _, channel, _ = running
    with pytest.raises(grpc.aio.AioRpcError) as broken:
        await call(channel, "FailUnexpectedly")(StringValue(value="x"), timeout=5)
    assert broken.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (broken.value.details() or "")


async def test_reflection_lists_the_service_and_health(running: Any) -> None:
    _, channel, _ = running
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    responses = [response async for response in stub.ServerReflectionInfo(ask(), timeout=5)]
    names = {service.name for service in responses[0].list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


async def test_health_is_not_serving_while_postgres_is_down_and_serving_when_it_returns(
    infra: Infra, running: Any
) -> None:
    if infra.postgres is None:
        pytest.fail("this test restarts PostgreSQL, so it needs the test run's own server")
    _, channel, _ = running
    await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING, SERVICE)
    infra.postgres.stop()
    try:
        await wait_for_health(channel, health_pb2.HealthCheckResponse.NOT_SERVING, SERVICE)
        # Unready, but alive: Kubernetes must not restart the pod for a database outage.
        await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING, LIVENESS_SERVICE)
    finally:
        infra.postgres.start()
    await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING, SERVICE)


async def test_health_is_not_serving_while_nats_is_down_and_serving_when_it_returns(infra: Infra, running: Any) -> None:
    if infra.nats is None:
        pytest.fail("this test restarts NATS, so it needs the test run's own server")
    _, channel, _ = running
    await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING)
    infra.nats.stop()
    try:
        await wait_for_health(channel, health_pb2.HealthCheckResponse.NOT_SERVING)
    finally:
        infra.nats.start()
    await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING)


async def test_health_is_not_serving_while_nats_is_frozen_and_serving_once_it_resumes(
    infra: Infra, running: Any
) -> None:
    if infra.nats is None:
        pytest.fail("this test freezes NATS, so it needs the test run's own server")
    _, channel, _ = running
    await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING)
    # Frozen, the server keeps the client's connection open: only a round trip tells.
    with frozen(infra.nats.process):
        await wait_for_health(channel, health_pb2.HealthCheckResponse.NOT_SERVING)
        await wait_for_health(channel, health_pb2.HealthCheckResponse.NOT_SERVING, SERVICE)
        await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING, LIVENESS_SERVICE)
    await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING)
    await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING, SERVICE)


async def test_health_is_not_serving_while_postgres_is_frozen_and_serving_once_it_resumes(
    infra: Infra, running: Any
) -> None:
    if infra.postgres is None:
        pytest.fail("this test freezes PostgreSQL, so it needs the test run's own server")
    _, channel, _ = running
    await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING)
    with frozen(infra.postgres.process):
        await wait_for_health(channel, health_pb2.HealthCheckResponse.NOT_SERVING)
        await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING, LIVENESS_SERVICE)
    await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING)


async def test_a_health_watch_sees_each_change_and_ends_cleanly_when_the_server_stops(
    infra: Infra, running: Any
) -> None:
    """The gateway's channels watch this stream to send no calls to a server that is not serving."""
    if infra.nats is None:
        pytest.fail("this test freezes NATS, so it needs the test run's own server")
    server, channel, _ = running
    seen: list[int] = []
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
    statuses = aiter(watch)

    async def next_status(wanted: int) -> None:
        async with asyncio.timeout(30):
            while not seen or seen[-1] != wanted:
                seen.append((await anext(statuses)).status)

    await next_status(health_pb2.HealthCheckResponse.SERVING)
    with frozen(infra.nats.process):
        await next_status(health_pb2.HealthCheckResponse.NOT_SERVING)
    await next_status(health_pb2.HealthCheckResponse.SERVING)
    await server.stop()
    await next_status(health_pb2.HealthCheckResponse.NOT_SERVING)
    # The stream ends with OK rather than being cut when the shutdown grace runs out.
    assert [response async for response in statuses] == []
    assert await watch.code() == grpc.StatusCode.OK


async def test_graceful_stop_finishes_calls_in_flight_and_reports_not_serving(running: Any) -> None:
    server, channel, _ = running
    await wait_for_health(channel, health_pb2.HealthCheckResponse.SERVING)
    in_flight = asyncio.ensure_future(call(channel, "Slow")(StringValue(value="0.5"), timeout=10))
    await asyncio.wait_for(server.notes.slow_started.wait(), 5)
    stopping = asyncio.ensure_future(server.stop())
    assert (await in_flight).value == "finished"
    await stopping
    assert server.stop_event.is_set()
    status = await server.health.Check(health_pb2.HealthCheckRequest(service=SERVICE), None)  # type: ignore[arg-type]
    assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
