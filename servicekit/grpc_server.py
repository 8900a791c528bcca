"""gRPC server bootstrap shared by every service.

``GrpcServer`` runs a ``grpc.aio`` server with the standard health service (SERVING while
every readiness check passes: PostgreSQL and NATS each answer a round trip in time; NOT_SERVING
once they have failed several rounds in a row, see :class:`ServingState`),
reflection, an interceptor that maps domain errors to precise status codes and writes one
structured log line per call, OpenTelemetry server instrumentation, and background tasks
(outbox relay, event consumers) that stop in order on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import uvloop
from grpc_health.v1 import health_pb2
from grpc_health.v1.health_pb2_grpc import add_HealthServicer_to_server
from grpc_reflection.v1alpha import reflection
from retail.common.v1 import refusal_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit import errors
from servicekit.db import is_infrastructure_failure
from servicekit.health import HEALTH_SERVICE, HealthService
from servicekit.logs import configure_logging
from servicekit.nats_connection import NatsConnection
from servicekit.readiness import nats_answers, postgres_answers, within
from servicekit.settings import SettingsError, SettingsT, load_settings
from servicekit.telemetry import ServerTracing, annotate_rpc_span, configure_tracing, current_trace_id

log = logging.getLogger("servicekit.grpc")

STATUS_FOR_ERROR: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Conflict: grpc.StatusCode.ABORTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
REASON_METADATA_KEY = "retail-error-reason"
DETAILS_METADATA_KEY = "retail-error-details"  # JSON object of DomainError.details
# Kubernetes' liveness probe asks for this name: SERVING while the process serves at all,
# so an outage of PostgreSQL or NATS makes pods unready without restarting them.
LIVENESS_SERVICE = "liveness"


def status_for(error: errors.DomainError) -> grpc.StatusCode:
    for error_type in type(error).__mro__:
        if error_type in STATUS_FOR_ERROR:
            return STATUS_FOR_ERROR[error_type]  # type: ignore[index]
    return grpc.StatusCode.FAILED_PRECONDITION


def refusal_of(error: errors.DomainError) -> refusal_pb2.Refusal:
    """One item's refusal inside a batched answer: the status, reason, message and details the
    interceptor below would have answered for that item called alone."""
    return refusal_pb2.Refusal(
        code=status_for(error).value[0],
        reason=error.reason,
        message=error.message,
        details_json=json.dumps(error.details, default=str) if error.details else "",
    )


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Domain errors → precise status codes; unexpected errors → INTERNAL without internals.

    A domain error is a business answer (a refusal), not a fault: the call is answered with its
    status, message and reason without raising (no abort, no traceback formatted or recorded),
    and the one structured line per call (method, code, reason, duration, trace id) is all that
    is logged. Only an unexpected error logs and records its full traceback.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streaming methods (health Watch, reflection) pass through untouched
        method = handler_call_details.method
        inner = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            reason: str | None = None
            try:
                return await inner(request, context)  # type: ignore[arg-type]
            except errors.DomainError as exc:
                code, reason = status_for(exc), exc.reason
                metadata = [(REASON_METADATA_KEY, exc.reason)]
                if exc.details:
                    metadata.append((DETAILS_METADATA_KEY, json.dumps(exc.details, default=str)))
                context.set_trailing_metadata(tuple(metadata))
                # Answered without raising: grpc sends a non-OK status and no response message.
                context.set_code(code)
                context.set_details(exc.message)
                annotate_rpc_span(code, exc.message)
                return None
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:
                if _is_abort(exc):
                    code = context.code() or grpc.StatusCode.UNKNOWN  # the servicer aborted on purpose
                    annotate_rpc_span(code, context.details() or "")
                    raise
                if is_infrastructure_failure(exc):
                    # The database could not be reached (or a pooled connection died with a
                    # restart): nothing is wrong with the request, and a retry can succeed.
                    code = grpc.StatusCode.UNAVAILABLE
                    log.warning("database unavailable in %s: %s", method, exc, extra={"method": method})
                    annotate_rpc_span(code, "database unavailable", error=exc)
                    await context.abort(code, "database unavailable; retry")
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error in %s", method, extra={"method": method})
                annotate_rpc_span(code, "internal error", error=exc)
                await context.abort(code, "internal error")
            finally:
                if code == grpc.StatusCode.OK:
                    annotate_rpc_span(code)
                level = logging.ERROR if code == grpc.StatusCode.INTERNAL else logging.INFO
                if log.isEnabledFor(level):
                    log.log(
                        level,
                        "rpc",
                        extra={
                            "method": method,
                            "code": code.name,
                            "reason": reason,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                            "trace_id": current_trace_id(),
                        },
                    )

        return grpc.unary_unary_rpc_method_handler(
            unary_unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _is_abort(exc: Exception) -> bool:
    # grpc.aio raises AbortError from context.abort(); it is not exported under a stable name.
    return type(exc).__name__ == "AbortError"


ReadinessCheck = Callable[[], Awaitable[bool]]


@dataclass
class ServingState:
    """Whether a server reports SERVING, from the outcome of each round of readiness checks.

    A server starts not serving and serves after its first passing round. It stops serving
    only after ``failure_threshold`` failing rounds in a row (Kubernetes' ``failureThreshold``
    for the same reason): one round that misses its time limit because the host is busy (a
    CPU-bound forecast fit, a burst of requests holding every pooled connection) is not an
    outage, and reporting one would make the gateway refuse every call to a working service.
    A real outage (a stopped or frozen PostgreSQL or NATS) fails every round and is reported
    after ``failure_threshold × (interval + timeout)`` seconds at most.
    """

    failure_threshold: int = 3
    serving: bool = False
    failures_in_a_row: int = 0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")

    def observe(self, passed: bool) -> bool:
        """Record one round's outcome; return whether the server serves now."""
        if passed:
            self.failures_in_a_row = 0
            self.serving = True
        else:
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= self.failure_threshold:
                self.serving = False
        return self.serving


BackgroundTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class GrpcServer:
    """One service process: gRPC API, health, reflection and its background workers."""

    name: str
    port: int
    registrations: Sequence[Callable[[grpc.aio.Server], None]]
    service_names: Sequence[str]
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    background: Sequence[BackgroundTask] = ()
    host: str = "0.0.0.0"  # noqa: S104 - a pod listens on all its interfaces
    shutdown_grace: float = 10.0
    readiness_interval: float = 1.0
    # A check not answered within this many seconds counts as failed (a frozen server never answers).
    readiness_timeout: float = 2.0
    # Failing rounds in a row before the server reports NOT_SERVING (see ServingState).
    readiness_failure_threshold: int = 3
    interceptors: Sequence[grpc.aio.ServerInterceptor] = ()  # type: ignore[type-arg]

    def __post_init__(self) -> None:
        self.health = HealthService()
        self.stop_event = asyncio.Event()
        self.ready = False
        self._serving_state = ServingState(self.readiness_failure_threshold)
        self.bound_port = 0
        self._server: grpc.aio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        server = grpc.aio.server(
            interceptors=[
                # Probes every few seconds and the gateway's hours-long health Watch are not requests worth a trace.
                ServerTracing(skip_services=frozenset({HEALTH_SERVICE})),
                ErrorMappingInterceptor(),
                *self.interceptors,
            ],
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 16 * 1024 * 1024)],
        )
        for register in self.registrations:
            register(server)
        add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            [*self.service_names, HEALTH_SERVICE, reflection.SERVICE_NAME],
            server,
        )
        self.bound_port = server.add_insecure_port(f"{self.host}:{self.port}")
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await self._set_serving(False)
        await server.start()
        self._server = server
        self._tasks = [asyncio.create_task(self._watch_readiness(), name=f"{self.name}-readiness")]
        self._tasks += [asyncio.create_task(task(self.stop_event)) for task in self.background]
        log.info("grpc server started", extra={"service": self.name, "port": self.bound_port})

    async def _set_serving(self, ready: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", *self.service_names):
            await self.health.set(service, status)
        if ready != self.ready:
            log.info("readiness changed", extra={"service": self.name, "ready": ready})
        self.ready = ready

    async def check_readiness(self) -> dict[str, bool]:
        results = await asyncio.gather(
            *(_passes(check, self.readiness_timeout) for check in self.readiness_checks.values())
        )
        return dict(zip(self.readiness_checks, results, strict=True))

    async def _watch_readiness(self) -> None:
        while not self.stop_event.is_set():
            results = await self.check_readiness()
            passed = all(results.values())
            serving = self._serving_state.observe(passed)
            if not passed and (self._serving_state.failures_in_a_row == 1 or serving != self.ready):
                log.warning(
                    "dependency unavailable",
                    extra={"checks": results, "failures_in_a_row": self._serving_state.failures_in_a_row},
                )
            await self._set_serving(serving)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=self.readiness_interval)

    async def stop(self) -> None:
        """Graceful stop: report NOT_SERVING, finish in-flight calls, then stop workers."""
        if self._server is None:
            return
        await self.health.enter_graceful_shutdown()
        self.stop_event.set()
        await self._server.stop(self.shutdown_grace)
        done, pending = await asyncio.wait(self._tasks, timeout=self.shutdown_grace)
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("background task failed", exc_info=task.exception())
        self._server = None
        log.info("grpc server stopped", extra={"service": self.name})

    async def serve_until_signalled(self) -> None:
        """Start, run until SIGTERM/SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        signalled = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, signalled.set)
        await self.start()
        await signalled.wait()
        await self.stop()


def database_and_broker_checks(
    engine: AsyncEngine, nats: NatsConnection, *, timeout: float = 1.0
) -> dict[str, ReadinessCheck]:
    """The readiness every service reports: its PostgreSQL answers ``SELECT 1`` and its NATS server
    answers a JetStream request within ``timeout`` seconds (a connected client alone proves nothing:
    a frozen server keeps the connection open)."""

    async def postgres_ready() -> bool:
        await within(lambda: postgres_answers(engine), timeout)
        return True

    async def nats_ready() -> bool:
        await nats_answers(nats, timeout)
        return True

    return {"postgres": postgres_ready, "nats": nats_ready}


async def _passes(check: ReadinessCheck, timeout: float) -> bool:  # noqa: ASYNC109
    try:
        return await within(check, timeout)
    except Exception:
        return False


class ServiceApp(Protocol):
    """What a service's composition root builds: its server, and what to close after it stops."""

    @property
    def server(self) -> GrpcServer: ...

    async def close(self) -> None: ...


def run_service(name: str, settings_type: type[SettingsT], build: Callable[[SettingsT], ServiceApp]) -> int:
    """What a gRPC service's ``python -m`` does: settings (2 when missing or invalid), logs, traces, serve."""
    try:
        settings = load_settings(settings_type)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(name, settings.log_level)
    configure_tracing(
        name, otlp_endpoint=settings.otel_exporter_otlp_endpoint, sample_ratio=settings.otel_traces_sampler_arg
    )

    async def serve() -> None:
        app = build(settings)
        try:
            await app.server.serve_until_signalled()
        finally:
            await app.close()

    # uvloop, as the gateway runs on: grpc.aio, asyncpg and nats-py all run on any asyncio loop,
    # and a service's event loop (callbacks, sockets, timers) costs less in libuv than in selectors.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())
    return 0
