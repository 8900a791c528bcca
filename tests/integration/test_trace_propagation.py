"""One trace from a gRPC call through the outbox and NATS into a consumer."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from servicekit.consumer import EventConsumer, EventHandlers, InboundEvent
from servicekit.db import UnitOfWork, create_engine
from servicekit.grpc_server import GrpcServer
from servicekit.messaging import ConsumerSpec, StreamSpec, ensure_consumer, ensure_stream
from servicekit.outbox import OutboxRelay
from servicekit.telemetry import configure_tracing
from tests.support.messaging import jetstream
from tests.support.notes import SERVICE, NoteService, call


async def test_a_trace_runs_from_the_grpc_call_through_outbox_and_nats_into_the_consumer(
    database_url: str, nats_url: str, unique: str
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing("trace-test", extra_processors=(SimpleSpanProcessor(exporter),))
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE note (id text primary key, body text)"))
    server = GrpcServer(
        name="notes", port=0, host="127.0.0.1", registrations=[NoteService(engine).register], service_names=[SERVICE]
    )
    await server.start()
    handled = asyncio.Event()
    seen_trace: list[int] = []

    async def on_note(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
        seen_trace.append(trace.get_current_span().get_span_context().trace_id)
        handled.set()

    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, StreamSpec(f"TR{unique}", ["retail.test.v1.note_added"]))
        spec = ConsumerSpec(stream=f"TR{unique}", durable=f"tr{unique}")
        await ensure_consumer(js, spec)
        with trace.get_tracer("test").start_as_current_span("gateway request") as root:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.bound_port}") as channel:
                await call(channel, "Add")(
                    StringValue(value="traced"), metadata=(("request-id", unique), *carrier.items()), timeout=5
                )
        trace_id = root.get_span_context().trace_id
        relay = OutboxRelay(database_url, js)
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, on_note)
        consumer = EventConsumer(js, spec, handlers, lambda: UnitOfWork(async_sessionmaker(engine)))
        stop = asyncio.Event()
        tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(consumer.run(stop))]
        await asyncio.wait_for(handled.wait(), 20)
        stop.set()
        await asyncio.gather(*tasks)
    await server.stop()
    await engine.dispose()

    spans = {span.name: span for span in exporter.get_finished_spans() if span.context.trace_id == trace_id}
    assert seen_trace == [trace_id]
    assert f"/{SERVICE}/Add" in spans or any(name.endswith("/Add") for name in spans)
    assert "publish retail.test.v1.note_added" in spans
    assert "consume retail.test.v1.note_added" in spans
    consume = spans["consume retail.test.v1.note_added"]
    assert consume.parent is not None
    assert consume.parent.span_id == spans["publish retail.test.v1.note_added"].context.span_id
