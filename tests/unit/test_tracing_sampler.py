"""Spans are started only while something receives them, and a collected trace is never cut."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from servicekit.telemetry import _WhileExported


def provider_with(root: _WhileExported) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(root))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_a_new_trace_records_no_span_while_nothing_is_exported_but_keeps_its_trace_id() -> None:
    root = _WhileExported(ALWAYS_ON)
    provider, exporter = provider_with(root)
    span = provider.get_tracer("test").start_span("GET /healthz")
    assert not span.is_recording()
    assert span.get_span_context().is_valid  # logs, problem documents and backends still get a trace id
    assert not span.get_span_context().trace_flags.sampled
    span.end()
    assert exporter.get_finished_spans() == ()


def test_a_new_trace_follows_the_ratio_once_something_exports() -> None:
    root = _WhileExported(ALWAYS_ON)
    root.exporting = True
    provider, exporter = provider_with(root)
    span = provider.get_tracer("test").start_span("GET /healthz")
    assert span.is_recording()
    span.end()
    assert [finished.name for finished in exporter.get_finished_spans()] == ["GET /healthz"]


def test_a_callers_sampled_trace_is_continued_even_while_nothing_is_exported_here() -> None:
    root = _WhileExported(ALWAYS_ON)
    provider, _ = provider_with(root)
    parent = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    context = trace.set_span_in_context(NonRecordingSpan(parent))
    span = provider.get_tracer("test").start_span("POST /v1/pos/sales/batch", context)
    assert span.is_recording()
    assert span.get_span_context().trace_id == 0x1234
    assert span.get_span_context().trace_flags.sampled
