"""The gateway application wired by its bootstrap, against real PostgreSQL, NATS and gRPC servers."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy.exc
from fastapi import APIRouter, FastAPI, Request
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer  # type: ignore[import-untyped]
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel, Field
from sqlalchemy import text

from devstack.servers import NatsServer, free_port
from gateway.bootstrap import build_app
from gateway.domain.clients import (
    ClientKind,
    ClientRegistration,
    InvalidClientRegistration,
    StaffRole,
    hash_client_secret,
)
from gateway.http import problems
from gateway.http.resources import GatewayResources, Resources
from gateway.migrate import GATEWAY_VERSIONS
from gateway.settings import GatewaySettings
from servicekit import errors, migrations
from servicekit.grpc_server import ErrorMappingInterceptor
from servicekit.health import HealthService
from servicekit.settings import load_settings
from servicekit.telemetry import configure_tracing
from tests.conftest import Infra, create_database_from, run_in_fresh_loop
from tests.support.faults import frozen

PROBLEM = "application/problem+json"
TYPE = "https://problems.retail-platform.dev/"
BODY_LIMIT = 1024

# ---- a test-only router, standing in for the business routes of later issues ---------------------


class StockLine(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)


stand_in_routes = APIRouter(prefix="/test")


@stand_in_routes.post("/stores/{store_id}/lines", status_code=201)
async def add_stock_line(store_id: int, line: StockLine) -> dict[str, Any]:
    """Accepts a validated JSON body."""
    return {"store_id": store_id, "sku": line.sku}


@stand_in_routes.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    """Reads a raw body, however it is framed."""
    return {"received": len(await request.body())}


@stand_in_routes.get("/boom")
async def boom() -> None:
    """Fails in a way nobody foresaw."""
    raise RuntimeError("password=hunter2 on db-primary.internal")


@stand_in_routes.get("/reservations/{reservation_id}:release")
async def release(reservation_id: str) -> None:
    """Refuses with a problem of its own."""
    raise problems.ProblemError(
        problems.FAILED_PRECONDITION,
        f"reservation {reservation_id} was already committed",
        extensions={"reservation_state": "committed"},
    )


@stand_in_routes.get("/skus/{sku}")
async def find_sku(sku: str, resources: Resources) -> dict[str, str]:
    """Asks the catalogue backend and lets its errors propagate."""
    find = resources.backends["catalogue"].unary_unary(
        "/retail.test.v1.Catalogue/FindSku", request_serializer=None, response_deserializer=None
    )
    answer = await find(sku.encode(), timeout=resources.grpc_deadline)
    return {"name": bytes(answer).decode()}


# ---- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway_template(infra: Infra, kit_template: str) -> str:
    """A database migrated with the gateway's schema, copied for each test."""
    url = create_database_from(infra, kit_template)
    run_in_fresh_loop(lambda: asyncio.to_thread(migrations.upgrade, url, GATEWAY_VERSIONS))
    return url.rsplit("/", 1)[1]


@pytest.fixture
def gateway_database_url(infra: Infra, gateway_template: str) -> str:
    return create_database_from(infra, gateway_template)


@pytest.fixture
def settings_for(gateway_database_url: str, nats_url: str) -> Callable[..., GatewaySettings]:
    def settings(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "app_env": "test",
            "database_url": gateway_database_url,
            "nats_url": nats_url,
            "max_request_body_bytes": BODY_LIMIT,
            "readiness_timeout_seconds": 1.0,
        }
        return load_settings(GatewaySettings, **(values | overrides))

    return settings


@asynccontextmanager
async def serving(settings: GatewaySettings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The gateway with the test routes, started (lifespan) and reachable in-process."""
    app = build_app(settings, routers=[stand_in_routes])
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client, app


@pytest.fixture
async def gateway(settings_for: Callable[..., GatewaySettings]) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(settings_for()) as (client, _):
        yield client


@asynccontextmanager
async def grpc_server(
    port: int = 0, *handlers: grpc.GenericRpcHandler[Any, Any], interceptors: Sequence[Any] = ()
) -> AsyncIterator[tuple[int, Any]]:
    """A real grpc.aio server with the kit's standard health service reporting SERVING."""
    server = grpc.aio.server(interceptors=interceptors)
    health = HealthService()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_generic_rpc_handlers(handlers)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    try:
        yield bound, health
    finally:
        await server.stop(None)


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == TYPE + slug
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert "trace_id" in body
    return body


# ---- errors are problems -----------------------------------------------------------------------------


async def test_an_invalid_body_is_answered_with_a_validation_problem_listing_each_field(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.post("/test/stores/12/lines", json={"sku": "", "quantity": 0, "phone": "13800138000"})
    body = assert_problem(response, 422, "validation-error")
    assert body["instance"] == "/test/stores/12/lines"
    assert sorted(body["errors"], key=lambda error: error["location"]) == [
        {"location": "body.quantity", "message": "Input should be greater than 0", "type": "greater_than"},
        {"location": "body.sku", "message": "String should have at least 1 character", "type": "string_too_short"},
    ]
    assert "13800138000" not in response.text


async def test_malformed_json_is_a_validation_problem_too(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post(
        "/test/stores/12/lines", content=b'{"sku": ', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["type"] == "json_invalid"


async def test_an_unknown_route_is_a_not_found_problem(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/v1/nowhere?phone=13800138000")
    body = assert_problem(response, 404, "not-found")
    assert body["instance"] == "/v1/nowhere"
    assert "13800138000" not in response.text


async def test_a_wrong_method_is_a_method_not_allowed_problem_naming_the_allowed_ones(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.delete("/test/stores/12/lines")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "POST"


async def test_a_problem_raised_by_a_route_keeps_its_type_and_extensions(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/test/reservations/r-9:release")
    body = assert_problem(response, 409, "failed-precondition")
    assert body["detail"] == "reservation r-9 was already committed"
    assert body["reservation_state"] == "committed"


async def test_an_unexpected_error_is_a_500_problem_that_hides_internals_but_is_logged_with_its_stack(
    gateway: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        response = await gateway.get("/test/boom")
    body = assert_problem(response, 500, "internal-error")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert "db-primary" not in body["detail"]
    [logged] = [record for record in caplog.records if record.name == "gateway.errors"]
    assert logged.exc_info is not None
    assert "hunter2" in str(logged.exc_info[1])
    assert logged.route == "/test/boom"  # type: ignore[attr-defined]


# ---- request body limit ------------------------------------------------------------------------------------


async def test_a_declared_body_over_the_limit_is_refused_before_any_of_it_is_read(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    app = build_app(settings_for(), routers=[stand_in_routes])
    reads: list[dict[str, Any]] = []
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        message = {"type": "http.request", "body": b"x" * 4096, "more_body": False}
        reads.append(message)
        return message

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/test/upload",
        "raw_path": b"/test/upload",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"gw"), (b"content-length", str(BODY_LIMIT + 1).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("gw", 80),
    }
    await app(scope, receive, send)

    start, body = sent[0], b"".join(message.get("body", b"") for message in sent[1:])
    assert start["status"] == 413
    assert (b"content-type", PROBLEM.encode()) in start["headers"]
    assert (b"connection", b"close") in start["headers"]
    assert json.loads(body)["type"] == TYPE + "content-too-large"
    assert reads == []


async def test_a_body_over_the_limit_by_content_length_is_a_413_problem(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post("/test/upload", content=b"x" * (BODY_LIMIT + 1))
    body = assert_problem(response, 413, "content-too-large")
    assert str(BODY_LIMIT) in body["detail"]


async def test_a_chunked_body_is_refused_while_streaming_once_it_passes_the_limit(gateway: httpx.AsyncClient) -> None:
    chunks_sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        for _ in range(20):
            chunks_sent += 1
            yield b"x" * 400

    response = await gateway.post("/test/upload", content=chunks())
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "content-too-large")
    assert chunks_sent < 20  # the rest was never read


async def test_a_chunked_body_over_the_limit_is_refused_on_a_validated_route_too(gateway: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"sku": "'
        for _ in range(10):
            yield b"A" * 400
        yield b'", "quantity": 1}'

    response = await gateway.post(
        "/test/stores/1/lines", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "content-too-large")


async def test_a_chunked_body_within_the_limit_is_passed_through_whole(gateway: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 256

    response = await gateway.post("/test/upload", content=chunks())
    assert response.status_code == 200
    assert response.json() == {"received": BODY_LIMIT}


# ---- health and readiness ----------------------------------------------------------------------------------


async def test_healthz_answers_even_before_any_dependency_is_opened(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    app = build_app(settings_for())  # lifespan never run: no database, NATS or backend
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        healthz = await client.get("/healthz")
        readyz = await client.get("/readyz")
    assert (healthz.status_code, healthz.json()) == (200, {"status": "alive"})
    assert_problem(readyz, 503, "not-ready")
    assert readyz.headers["Retry-After"] == "2"


async def test_readyz_is_ready_when_postgres_and_nats_answer(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"postgres": "ok", "nats": "ok"}, "backends": {}}


async def test_readyz_reports_a_frozen_nats_and_is_ready_again_once_it_resumes(
    infra: Infra, gateway: httpx.AsyncClient
) -> None:
    if infra.nats is None:
        pytest.fail("this test freezes NATS, so it needs the test run's own server")
    await poll_until_ready(gateway)
    # Frozen, the server keeps the gateway's connection open: only a round trip tells.
    with frozen(infra.nats.process):
        refused = await gateway.get("/readyz")
    body = assert_problem(refused, 503, "not-ready")
    assert body["failing"] == ["nats"]
    assert body["checks"]["postgres"] == "ok"
    assert refused.headers["Retry-After"]
    assert (await poll_until_ready(gateway)).json()["checks"] == {"postgres": "ok", "nats": "ok"}


async def test_readyz_reports_a_frozen_postgres_within_its_timeout_and_is_ready_again_once_it_resumes(
    infra: Infra, gateway: httpx.AsyncClient
) -> None:
    if infra.postgres is None:
        pytest.fail("this test freezes PostgreSQL, so it needs the test run's own server")
    await poll_until_ready(gateway)
    with frozen(infra.postgres.process):
        refused = await gateway.get("/readyz")
    body = assert_problem(refused, 503, "not-ready")
    assert body["failing"] == ["postgres"]
    assert body["checks"] == {"postgres": "timed out after 1s", "nats": "ok"}
    assert (await poll_until_ready(gateway)).json()["checks"] == {"postgres": "ok", "nats": "ok"}


async def test_the_gateway_starts_without_nats_names_it_in_readyz_and_is_ready_once_nats_comes_up(
    settings_for: Callable[..., GatewaySettings], tmp_path: Path
) -> None:
    port = free_port()
    nats = NatsServer(tmp_path / "late-nats", port=port, durable=False)
    settings = settings_for(nats_url=f"nats://127.0.0.1:{port}", nats_startup_wait_seconds=0.2)
    try:
        async with serving(settings) as (client, _):
            healthz = await client.get("/healthz")
            refused = await client.get("/readyz")
            await asyncio.to_thread(nats.start)
            ready = await poll_until_ready(client)
    finally:
        await asyncio.to_thread(nats.stop)
    assert healthz.status_code == 200
    body = assert_problem(refused, 503, "not-ready")
    assert body["failing"] == ["nats"]
    assert body["checks"] == {"postgres": "ok", "nats": "not connected"}
    assert ready.json()["checks"]["nats"] == "ok"


async def test_readyz_stays_ready_and_reports_each_backend_beside_its_own_checks(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    port = free_port()
    async with serving(settings_for(gateway_backends=f"inventory=127.0.0.1:{port}")) as (client, _):
        # One service's outage must not take the gateway (and every other service's routes) out of rotation.
        down = await client.get("/readyz")
        assert down.status_code == 200, down.text
        assert down.json() == {
            "status": "ready",
            "checks": {"postgres": "ok", "nats": "ok"},
            "backends": {"inventory": "unavailable"},
        }

        async with grpc_server(port) as (_, health):
            serving_backend = await poll_until_backend(client, "inventory", "ok")
            assert serving_backend.json()["checks"] == {"postgres": "ok", "nats": "ok"}

            await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
            draining = await poll_until_backend(client, "inventory", "unavailable")
            assert draining.status_code == 200


async def test_a_backend_that_reports_not_serving_gets_no_calls_and_its_routes_answer_503_until_it_serves(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    calls: list[bytes] = []

    async def find_sku(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        calls.append(request)
        return b"Oat milk 1L"

    catalogue = grpc.method_handlers_generic_handler(
        "retail.test.v1.Catalogue", {"FindSku": grpc.unary_unary_rpc_method_handler(find_sku)}
    )
    async with (
        grpc_server(0, catalogue) as (port, health),
        serving(settings_for(gateway_backends=f"catalogue=127.0.0.1:{port}")) as (client, _),
    ):
        assert (await client.get("/test/skus/4711")).json() == {"name": "Oat milk 1L"}
        # The process still serves, but says it cannot (its database or NATS does not answer).
        await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        refused = await poll_until_status(client, "/test/skus/4711", 503)
        calls_before = len(calls)
        again = await client.get("/test/skus/4711")
        readiness = await client.get("/readyz")
        calls_after = len(calls)

        await health.set("", health_pb2.HealthCheckResponse.SERVING)
        recovered = await poll_until_status(client, "/test/skus/4711", 200)
    body = assert_problem(refused, 503, "service-unavailable")
    assert refused.headers["Retry-After"] == "2"
    assert str(port) not in body["detail"]
    assert_problem(again, 503, "service-unavailable")
    assert calls_after == calls_before, "a call reached a backend that reports NOT_SERVING"
    assert (readiness.status_code, readiness.json()["backends"]) == (200, {"catalogue": "unavailable"})
    assert recovered.json() == {"name": "Oat milk 1L"}


async def poll_until_backend(client: httpx.AsyncClient, name: str, state: str, within: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response = await client.get("/readyz")
        if response.json().get("backends", {}).get(name) == state or time.monotonic() > deadline:
            assert response.json()["backends"][name] == state, response.text
            return response
        await asyncio.sleep(0.1)


async def poll_until_status(client: httpx.AsyncClient, path: str, status: int, within: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response = await client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response
        await asyncio.sleep(0.1)


async def poll_until_ready(client: httpx.AsyncClient, within: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response = await client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response
        await asyncio.sleep(0.2)


# ---- backend errors ------------------------------------------------------------------------------------------


async def test_a_backend_not_found_with_a_reason_becomes_a_404_problem_with_that_reason(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    async def find_sku(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        raise errors.NotFound(f"sku {request.decode()} is not in the catalogue", reason="sku-unknown")

    catalogue = grpc.method_handlers_generic_handler(
        "retail.test.v1.Catalogue", {"FindSku": grpc.unary_unary_rpc_method_handler(find_sku)}
    )
    # The kit's interceptor is what real services use to turn domain errors into statuses.
    async with (
        grpc_server(0, catalogue, interceptors=[ErrorMappingInterceptor()]) as (port, _),
        serving(settings_for(gateway_backends=f"catalogue=127.0.0.1:{port}")) as (client, _),
    ):
        response = await client.get("/test/skus/4711")
    body = assert_problem(response, 404, "not-found")
    assert body["reason"] == "sku-unknown"
    assert body["detail"] == "sku 4711 is not in the catalogue"
    assert body["instance"] == "/test/skus/4711"


async def test_an_unreachable_backend_is_a_503_problem_that_does_not_name_its_address(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    port = free_port()
    async with serving(settings_for(gateway_backends=f"catalogue=127.0.0.1:{port}")) as (client, _):
        response = await client.get("/test/skus/4711")
    body = assert_problem(response, 503, "service-unavailable")
    assert str(port) not in body["detail"]
    # Every 503 says when to retry.
    assert response.headers["Retry-After"] == "2"


# ---- tracing and access log ------------------------------------------------------------------------------


async def test_the_trace_continues_from_the_gateway_into_the_grpc_backend(
    settings_for: Callable[..., GatewaySettings],
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing("gateway-test", extra_processors=(SimpleSpanProcessor(exporter),))
    server_instrumentor = GrpcAioInstrumentorServer()  # type: ignore[no-untyped-call]
    instrumented_here = not server_instrumentor.is_instrumented_by_opentelemetry
    if instrumented_here:
        server_instrumentor.instrument()
    try:
        async with (
            grpc_server() as (port, _),
            serving(settings_for(gateway_backends=f"inventory=127.0.0.1:{port}")) as (client, _),
        ):
            response = await client.get("/readyz")
    finally:
        if instrumented_here:
            server_instrumentor.uninstrument()
    spans = exporter.get_finished_spans()
    exporter.shutdown()

    assert response.status_code == 200, response.text
    [http_span] = [span for span in spans if span.kind is SpanKind.SERVER and span.name == "GET /readyz"]
    [grpc_span] = [span for span in spans if span.kind is SpanKind.SERVER and "Health/Check" in span.name]
    assert http_span.context is not None
    assert grpc_span.context is not None
    assert grpc_span.context.trace_id == http_span.context.trace_id


async def test_each_request_is_logged_once_with_route_template_status_latency_and_trace_id_but_no_body(
    gateway: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        await gateway.post("/test/stores/12/lines?phone=13800138000", json={"sku": "SKU-SECRET-1", "quantity": 2})
        await gateway.get("/v1/members/13800138000")
    created, missing = [record for record in caplog.records if record.name == "gateway.access"]
    assert (created.method, created.route, created.status) == ("POST", "/test/stores/{store_id}/lines", 201)  # type: ignore[attr-defined]
    assert isinstance(created.latency_ms, float)  # type: ignore[attr-defined]
    assert created.client_id is None  # type: ignore[attr-defined]
    assert hasattr(created, "trace_id")
    assert (missing.route, missing.status) == (None, 404)  # type: ignore[attr-defined]
    logged = json.dumps([record.__dict__ for record in (created, missing)], default=str)
    assert "SKU-SECRET-1" not in logged
    assert "13800138000" not in logged


async def test_the_access_log_sees_the_answers_the_gateway_gives_itself_500_and_413(
    gateway: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        await gateway.get("/test/boom")
        await gateway.post("/test/upload", content=b"x" * (BODY_LIMIT + 1))
    failed, refused = [record for record in caplog.records if record.name == "gateway.access"]
    assert (failed.method, failed.route, failed.status) == ("GET", "/test/boom", 500)  # type: ignore[attr-defined]
    assert (refused.method, refused.status) == ("POST", 413)  # type: ignore[attr-defined]
    assert re.fullmatch(r"[0-9a-f]{32}", str(failed.trace_id))  # type: ignore[attr-defined]


def traced_spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    configure_tracing("gateway-test", extra_processors=(SimpleSpanProcessor(exporter),))
    return exporter


async def test_the_http_span_is_named_after_the_route_template_and_never_carries_the_raw_path_or_query(
    gateway: httpx.AsyncClient,
) -> None:
    exporter = traced_spans()
    trace_id = uuid.uuid4().hex
    traced = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
    created = await gateway.post(
        "/test/stores/12/lines?phone=13800138000", json={"sku": "SKU-1", "quantity": 2}, headers=traced
    )
    failed = await gateway.get("/test/boom", headers=traced)
    spans = [
        span for span in exporter.get_finished_spans() if span.context and span.context.trace_id == int(trace_id, 16)
    ]
    exporter.shutdown()

    assert created.status_code == 201, created.text
    assert failed.json()["trace_id"] == trace_id
    [line] = [span for span in spans if span.name == "POST /test/stores/{store_id}/lines"]
    assert line.kind is SpanKind.SERVER
    assert line.attributes is not None
    assert line.attributes["http.route"] == "/test/stores/{store_id}/lines"
    assert line.attributes["http.response.status_code"] == 201
    assert line.status.status_code is StatusCode.UNSET
    assert "13800138000" not in json.dumps(dict(line.attributes))
    [boom] = [span for span in spans if span.name == "GET /test/boom"]
    assert boom.status.status_code is StatusCode.ERROR
    assert boom.attributes is not None
    assert boom.attributes["http.response.status_code"] == 500


async def test_an_unsampled_request_records_no_span_but_answers_with_the_callers_trace_id(
    gateway: httpx.AsyncClient,
) -> None:
    exporter = traced_spans()
    trace_id = uuid.uuid4().hex
    not_sampled = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-00"}
    response = await gateway.get("/test/boom", headers=not_sampled)
    spans = exporter.get_finished_spans()
    exporter.shutdown()

    assert assert_problem(response, 500, "internal-error")["trace_id"] == trace_id
    assert [span for span in spans if span.context and span.context.trace_id == int(trace_id, 16)] == []


# ---- OpenAPI ---------------------------------------------------------------------------------------------


async def test_openapi_documents_problem_answers_for_every_operation(gateway: httpx.AsyncClient) -> None:
    document = (await gateway.get("/openapi.json")).json()
    assert document["info"]["title"] == "Retail platform API"
    assert document["info"]["version"]
    assert {tag["name"] for tag in document["tags"]} >= {"operations"}
    schemas = document["components"]["schemas"]
    assert {"Problem", "ValidationProblem", "FieldError", "NotReadyProblem"} <= set(schemas)
    assert "HTTPValidationError" not in schemas

    add_line = document["paths"]["/test/stores/{store_id}/lines"]["post"]["responses"]
    assert add_line["422"]["content"][PROBLEM]["schema"]["$ref"] == "#/components/schemas/ValidationProblem"
    assert PROBLEM in add_line["413"]["content"]
    readyz = document["paths"]["/readyz"]["get"]["responses"]
    assert readyz["503"]["content"][PROBLEM]["schema"]["$ref"] == "#/components/schemas/NotReadyProblem"
    assert "503" not in document["paths"]["/healthz"]["get"]["responses"]
    for path, path_item in document["paths"].items():
        for operation in path_item.values():
            assert PROBLEM in operation["responses"]["500"]["content"]
            assert operation.get("description"), operation["summary"]
            if path != "/healthz":
                assert "Retry-After" in operation["responses"]["503"]["headers"], path


async def test_swagger_ui_at_docs_needs_nothing_but_the_gateway_and_the_start_page_leads_there(
    gateway: httpx.AsyncClient,
) -> None:
    page = await gateway.get("/docs")
    assert (page.status_code, page.headers["content-type"]) == (200, "text/html; charset=utf-8")
    referenced = set(re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text))
    referenced |= set(re.findall(r"""\b(?:url|oauth2RedirectUrl)\s*:\s*["']([^"']+)["']""", page.text))
    assert "/openapi.json" in referenced
    assert re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+", page.text) == [], "the page loads something from elsewhere"
    assert all(url.startswith("/") for url in referenced), referenced
    kinds = {}
    for url in sorted(referenced):
        asset = await gateway.get(url)
        assert asset.status_code == 200, url
        kinds[url.rsplit(".", 1)[-1]] = asset.headers["content-type"].split(";")[0]
    assert kinds["js"] == "text/javascript"
    assert kinds["css"] == "text/css"
    start = await gateway.get("/", follow_redirects=False)
    assert (start.status_code, start.headers["location"]) == (307, "/docs")


# ---- client registrations -----------------------------------------------------------------------------------


def resources_of(app: FastAPI) -> GatewayResources:
    resources = app.state.resources
    assert isinstance(resources, GatewayResources)
    return resources


async def test_registering_a_client_twice_keeps_the_first_registration(
    settings_for: Callable[..., GatewaySettings], unique: str
) -> None:
    secret = f"till-secret-{unique}-0123456789"
    terminal = ClientRegistration(
        client_id=f"pos-{unique.lower()}",
        kind=ClientKind.POS_TERMINAL,
        display_name="Store 1, till 3",
        secret_hash=hash_client_secret(secret),
        scopes=frozenset({"pos.sales:write", "pricing.price_book:read"}),
        store_id="S001",
        terminal_id="T03",
    )
    async with serving(settings_for()) as (_, app):
        registry = resources_of(app).clients
        first = await registry.register(terminal)
        second = await registry.register(replace(terminal, display_name="Impostor", store_id="S002"))
        stored = await registry.get(terminal.client_id)
        nobody = await registry.get(f"nobody-{unique.lower()}")

    assert (first, second) == (True, False)
    assert stored is not None
    assert nobody is None
    assert replace(stored, created_at=None) == terminal
    assert stored.created_at is not None
    assert stored.is_active
    assert stored.verify_secret(secret)
    assert not stored.verify_secret(secret + "!")


async def test_staff_registrations_keep_their_role_and_store(
    settings_for: Callable[..., GatewaySettings], unique: str
) -> None:
    guide = ClientRegistration(
        client_id=f"staff-{unique.lower()}",
        kind=ClientKind.STAFF,
        display_name="Store guide",
        secret_hash=hash_client_secret("staff-secret-0123456789"),
        scopes=frozenset({"member.profile:read"}),
        store_id="S001",
        staff_role=StaffRole.STORE_GUIDE,
    )
    async with serving(settings_for()) as (_, app):
        registry = resources_of(app).clients
        assert await registry.register(guide)
        stored = await registry.get(guide.client_id)
    assert stored is not None
    assert (stored.staff_role, stored.store_id) == (StaffRole.STORE_GUIDE, "S001")


async def test_the_database_refuses_bindings_the_domain_refuses(
    settings_for: Callable[..., GatewaySettings], unique: str
) -> None:
    hashed = hash_client_secret("some-secret-0123456789")
    with pytest.raises(InvalidClientRegistration, match="needs a terminal_id"):
        ClientRegistration(
            client_id="pos-no-till", kind=ClientKind.POS_TERMINAL, display_name="x", secret_hash=hashed, store_id="S1"
        )
    insert = text(
        "INSERT INTO client_registration (client_id, kind, display_name, secret_hash, scopes, store_id, staff_role)"
        " VALUES (:client_id, :kind, 'x', :secret_hash, '{}', :store_id, :staff_role)"
    )
    refused = [
        ("pos_terminal", hashed, "S1", None, "terminal_only_for_pos_terminal"),
        ("staff", hashed, None, "store_manager", "store_for_terminals_and_store_staff"),
        ("staff", hashed, "S1", "headquarters", "store_for_terminals_and_store_staff"),
        ("app", "plaintext-secret", None, None, "secret_is_scrypt_hash"),
        ("robot", hashed, None, None, "kind_known"),
    ]
    async with serving(settings_for()) as (_, app):
        engine = resources_of(app).engine
        for number, (kind, secret_hash, store_id, staff_role, constraint) in enumerate(refused):
            values = {
                "client_id": f"bad-{number}-{unique.lower()}",
                "kind": kind,
                "secret_hash": secret_hash,
                "store_id": store_id,
                "staff_role": staff_role,
            }
            with pytest.raises(sqlalchemy.exc.IntegrityError, match=constraint):
                async with engine.begin() as connection:
                    await connection.execute(insert, values)
