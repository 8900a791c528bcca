"""OpenTelemetry set-up and W3C trace-context propagation across NATS messages.

One trace runs gateway → gRPC → outbox → NATS → consumer: gRPC and FastAPI are
instrumented, the outbox stores the caller's ``traceparent`` with each row, the relay
publishes it as a message header and the consumer continues the trace from it.

The gRPC interceptors here (:class:`ClientTracing`, :class:`ServerTracing`) do span work only
for a sampled call. A call whose trace is not sampled still carries its ``traceparent``
(flags ``00``) and runs inside that trace context, so logs and the outbox keep its trace id and
a later sampled hop is not orphaned; it just starts, annotates and ends no span on the way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode

RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"
# The codes that make a server span an error (OpenTelemetry's gRPC conventions): the others are
# the caller's problem or a business answer (a refusal), not a fault of the server.
SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

_configured: TracerProvider | None = None


class _WhileExported(Sampler):
    """Starts a new trace's spans only while something receives them (an exporter or a processor).

    With no collector configured, a recorded span costs its attributes, events and end for
    nothing; dropped, the request still gets a trace id (for logs, problem documents and the
    backends) and does no span work. A caller's sampled ``traceparent`` is still honoured by
    the parent-based sampler around this one, so a trace that someone collects is never cut.
    """

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate
        self.exporting = False

    def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> SamplingResult:
        if not self.exporting:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(parent_context, trace_id, name, *args, **kwargs)

    def get_description(self) -> str:
        return f"WhileExported{{{self._delegate.get_description()}}}"


_root_sampler: _WhileExported | None = None


def configure_tracing(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    sample_ratio: float = 1.0,
    extra_processors: tuple[SpanProcessor, ...] = (),
) -> TracerProvider:
    """Install the process-wide tracer provider (once; later calls return the first).

    Spans are exported over OTLP only when an endpoint is configured; sampling follows
    the parent's decision and otherwise keeps ``sample_ratio`` of new traces, while something
    receives them (an endpoint or ``extra_processors``; see :class:`_WhileExported`).
    """
    global _configured, _root_sampler
    if _configured is not None:
        for processor in extra_processors:
            _configured.add_span_processor(processor)
        if extra_processors and _root_sampler is not None:
            _root_sampler.exporting = True
        return _configured
    _root_sampler = _WhileExported(TraceIdRatioBased(sample_ratio))
    _root_sampler.exporting = bool(otlp_endpoint or extra_processors)
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name}),
        sampler=ParentBased(_root_sampler),
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


def _rpc_attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {RPC_SYSTEM: "grpc", RPC_SERVICE: service, RPC_METHOD: name}


def _is_unsampled(span_context: trace.SpanContext) -> bool:
    """A trace whose sampling decision was made and was no (no parent at all decides afresh)."""
    return span_context.is_valid and not span_context.trace_flags.sampled


if TYPE_CHECKING:  # grpc-stubs make the interceptors generic; the runtime classes are not subscriptable
    _UnaryUnaryClientInterceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _UnaryUnaryClientInterceptor = grpc.aio.UnaryUnaryClientInterceptor
    _ServerInterceptor = grpc.aio.ServerInterceptor


class ClientTracing(_UnaryUnaryClientInterceptor):
    """Sends the W3C trace context with every unary call; a CLIENT span only when the call is sampled."""

    def __init__(self) -> None:
        self._tracer = trace.get_tracer("servicekit.grpc.client")

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[grpc.aio.UnaryUnaryCall[Any, Any]]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        if _is_unsampled(trace.get_current_span().get_span_context()):
            return await continuation(_with_trace_context(client_call_details), request)
        method = client_call_details.method
        if isinstance(method, bytes):  # grpc passes bytes here (grpc/grpc#31092)
            method = method.decode()
        with self._tracer.start_as_current_span(
            method,
            kind=SpanKind.CLIENT,
            attributes=_rpc_attributes(method),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            call = await continuation(_with_trace_context(client_call_details), request)
            if span.is_recording():
                code = await call.code()  # waits for the answer without raising its error
                span.set_attribute(RPC_GRPC_STATUS_CODE, code.value[0])
                if code != grpc.StatusCode.OK:
                    span.set_status(Status(StatusCode.ERROR, f"{code.name}: {await call.details()}"))
            return call


def _with_trace_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    carrier = current_trace_headers()
    if not carrier:
        return details
    metadata = grpc.aio.Metadata(*tuple(details.metadata or ()))
    for key, value in carrier.items():
        metadata[key] = value
    return grpc.aio.ClientCallDetails(
        method=details.method,
        timeout=details.timeout,
        metadata=metadata,
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
    )


class ServerTracing(_ServerInterceptor):
    """Continues the caller's trace in every unary call; a SERVER span only when the call is sampled.

    The span's status code and error are set by whoever maps the call's outcome to a status
    (:class:`servicekit.grpc_server.ErrorMappingInterceptor`, running inside it): see
    :func:`annotate_rpc_span`. Calls to ``skip_services`` (health probes) are neither traced nor
    given a context.
    """

    def __init__(self, skip_services: frozenset[str] = frozenset()) -> None:
        self._tracer = trace.get_tracer("servicekit.grpc.server")
        self._skip = tuple(f"/{service}/" for service in skip_services)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.unary_unary is None or method.startswith(self._skip):
            return handler  # streaming methods (health Watch, reflection) and probes pass through untouched
        inner = handler.unary_unary
        tracer = self._tracer
        attributes = _rpc_attributes(method)

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            parent = propagate.extract(
                {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
            )
            if _is_unsampled(trace.get_current_span(parent).get_span_context()):
                token = otel_context.attach(parent)
                try:
                    return await inner(request, context)  # type: ignore[arg-type]
                finally:
                    otel_context.detach(token)
            with tracer.start_as_current_span(
                method,
                context=parent,
                kind=SpanKind.SERVER,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ):
                return await inner(request, context)  # type: ignore[arg-type]

        return grpc.unary_unary_rpc_method_handler(
            unary_unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def annotate_rpc_span(code: grpc.StatusCode, details: str = "", error: BaseException | None = None) -> None:
    """Record a call's outcome on the current SERVER span, when it is recorded at all.

    Only an unexpected ``error`` is recorded with its stack: a business refusal is an answer.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute(RPC_GRPC_STATUS_CODE, code.value[0])
    if code in SERVER_FAULTS:
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details}"))
    if error is not None:
        span.record_exception(error)
