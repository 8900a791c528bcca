"""The kit's gRPC interceptors: refusals answered without tracebacks, span work only for sampled calls.

A business refusal (a :mod:`servicekit.errors` subclass) is an answer, not a fault: it gets its
precise status and reason, one concise log line, and no traceback formatted anywhere (log or
span). An unexpected error still logs and records its full traceback. A sampled caller's trace
continues in the service's span; an unsampled call records no span at all, yet carries its trace
context into the service (down to the outbox), so the trace id still ties the hops together.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import create_engine
from servicekit.grpc_server import REASON_METADATA_KEY, GrpcServer
from servicekit.telemetry import ClientTracing, configure_tracing
from tests.support.notes import SERVICE, NoteService, call


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    configure_tracing("grpc-tracing-test", extra_processors=(SimpleSpanProcessor(spans),))
    yield spans
    spans.shutdown()


@pytest.fixture
async def notes(database_url: str) -> AsyncIterator[tuple[grpc.aio.Channel, AsyncEngine]]:
    """A notes server behind the kit's interceptors, and a channel that traces its calls as the gateway's do."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE note (id text primary key, body text)"))
    server = GrpcServer(
        name="notes", port=0, host="127.0.0.1", registrations=[NoteService(engine).register], service_names=[SERVICE]
    )
    await server.start()
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{server.bound_port}", interceptors=[cast(grpc.aio.ClientInterceptor, ClientTracing())]
    )
    yield channel, engine
    await channel.close(None)
    await server.stop()
    await engine.dispose()


def reason_of(error: grpc.aio.AioRpcError) -> str | None:
    metadata: Any = error.trailing_metadata() or ()
    return {str(key): str(value) for key, value in metadata}.get(REASON_METADATA_KEY)


def spans_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.context and span.context.trace_id == trace_id]


def under_remote_parent(trace_id: int, *, sampled: bool) -> otel_context.Context:
    """The context a request arriving with this ``traceparent`` runs in."""
    parent = SpanContext(
        trace_id,
        int(uuid.uuid4().hex[:16], 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info or record.stack_info]


async def test_a_refusal_answers_its_status_and_reason_with_one_concise_log_line_and_no_traceback(
    notes: Any, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    channel, _ = notes
    with (
        caplog.at_level(logging.DEBUG),
        trace.get_tracer("test").start_as_current_span("caller") as caller,
        pytest.raises(grpc.aio.AioRpcError) as refused,
    ):
        await call(channel, "FailNotFound")(StringValue(value="n-9"), timeout=5)

    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert refused.value.details() == "note n-9 does not exist"
    assert reason_of(refused.value) == "note-not-found"
    assert tracebacks(caplog) == []
    [line] = [record for record in caplog.records if record.name == "servicekit.grpc" and record.msg == "rpc"]
    assert line.levelno == logging.INFO
    assert (line.code, line.reason) == ("NOT_FOUND", "note-not-found")  # type: ignore[attr-defined]
    # Nor is a traceback formatted into the (sampled) span: a refusal is an answer, not a server fault.
    [served] = [span for span in spans_of(exporter, caller.get_span_context().trace_id) if span.kind is SpanKind.SERVER]
    assert served.attributes is not None
    assert served.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert served.status.status_code is StatusCode.UNSET
    assert [event.name for event in served.events] == []


async def test_a_refusal_inside_a_unit_of_work_is_answered_precisely_without_a_traceback(
    notes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    channel, engine = notes
    with caplog.at_level(logging.DEBUG), pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(channel, "Add")(StringValue(value="reject"), metadata=(("request-id", "r-1"),), timeout=5)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(refused.value) == "note-rejected"
    assert tracebacks(caplog) == []
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM note"))).scalar_one() == 0


async def test_an_unexpected_error_still_logs_and_records_its_full_traceback(
    notes: Any, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    channel, _ = notes
    with (
        caplog.at_level(logging.DEBUG),
        trace.get_tracer("test").start_as_current_span("caller") as caller,
        pytest.raises(grpc.aio.AioRpcError) as broken,
    ):
        await call(channel, "FailUnexpectedly")(StringValue(value="x"), timeout=5)

    assert broken.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (broken.value.details() or "")
    [logged] = tracebacks(caplog)
    assert logged.levelno == logging.ERROR
    assert logged.exc_info is not None
    assert isinstance(logged.exc_info[1], KeyError)
    [served] = [span for span in spans_of(exporter, caller.get_span_context().trace_id) if span.kind is SpanKind.SERVER]
    assert served.status.status_code is StatusCode.ERROR
    [event] = served.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert "KeyError" in str(event.attributes["exception.stacktrace"])


async def test_a_sampled_callers_trace_continues_in_the_client_and_service_spans(
    notes: Any, exporter: InMemorySpanExporter
) -> None:
    channel, _ = notes
    trace_id = int(uuid.uuid4().hex, 16)
    token = otel_context.attach(under_remote_parent(trace_id, sampled=True))
    try:
        answer = await call(channel, "Add")(StringValue(value="kept"), metadata=(("request-id", "s-1"),), timeout=5)
    finally:
        otel_context.detach(token)

    assert answer.value
    spans = spans_of(exporter, trace_id)
    [client] = [span for span in spans if span.kind is SpanKind.CLIENT]
    [server] = [span for span in spans if span.kind is SpanKind.SERVER]
    assert client.name == server.name == f"/{SERVICE}/Add"
    assert server.parent is not None
    assert client.context is not None
    assert server.parent.span_id == client.context.span_id
    assert server.attributes is not None
    assert (server.attributes["rpc.service"], server.attributes["rpc.method"]) == (SERVICE, "Add")
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert client.attributes is not None
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]


async def test_an_unsampled_call_records_no_span_but_carries_its_trace_context_into_the_service(
    notes: Any, exporter: InMemorySpanExporter
) -> None:
    channel, engine = notes
    trace_id = int(uuid.uuid4().hex, 16)
    token = otel_context.attach(under_remote_parent(trace_id, sampled=False))
    try:
        await call(channel, "Add")(StringValue(value="quiet"), metadata=(("request-id", "u-1"),), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError):
            await call(channel, "FailNotFound")(StringValue(value="n-1"), timeout=5)
    finally:
        otel_context.detach(token)

    assert spans_of(exporter, trace_id) == []
    # The service ran inside the caller's trace: its outbox row carries the unsampled traceparent.
    async with engine.connect() as connection:
        headers = (await connection.execute(text("SELECT headers FROM outbox"))).scalar_one()
    traceparent = (json.loads(headers) if isinstance(headers, str) else headers)["traceparent"]
    _, carried_trace, _, flags = traceparent.split("-")
    assert (int(carried_trace, 16), flags) == (trace_id, "00")
