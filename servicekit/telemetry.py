"""OpenTelemetry set-up and W3C trace-context propagation across NATS messages.

One trace runs gateway → gRPC → outbox → NATS → consumer: gRPC and FastAPI are
instrumented, the outbox stores the caller's ``traceparent`` with each row, the relay
publishes it as a message header and the consumer continues the trace from it.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

_configured: TracerProvider | None = None


def configure_tracing(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    sample_ratio: float = 1.0,
    extra_processors: tuple[SpanProcessor, ...] = (),
) -> TracerProvider:
    """Install the process-wide tracer provider (once; later calls return the first).

    Spans are exported over OTLP only when an endpoint is configured; sampling follows
    the parent's decision and otherwise keeps ``sample_ratio`` of new traces.
    """
    global _configured
    if _configured is not None:
        for processor in extra_processors:
            _configured.add_span_processor(processor)
        return _configured
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _configured = provider
    return provider


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span, empty outside a trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context a message carries, to parent the span that handles it."""
    return propagate.extract(dict(headers or {}))


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x")
