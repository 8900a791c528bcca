"""The gateway's one ASGI middleware: server span, access log, body size limit, last-resort 500.

One pure ASGI layer (not ``BaseHTTPMiddleware``, and not one layer per concern): request
bodies stream through untouched, nothing is buffered, and a request pays for one wrapper
of ``send`` instead of a stack of them. Measured on ``/healthz`` (see ``bench/http.py``),
the three layers this replaced plus OpenTelemetry's ASGI instrumentation cost more than
the whole framework beneath them.

What it does for each HTTP request, outermost first:

* **trace**: continues the caller's trace context (``traceparent``) or starts one, and
  makes a ``SERVER`` span current for everything inside, named ``GET /v1/skus/{sku}``
  after the matched route template once it is known. Attributes are only computed when
  the sampler kept the span; an unsampled request still carries a trace id (for the
  problem documents, the logs and the backends) but does no span work.
* **access log**: one structured line per request with the route *template*, never the
  raw path, query string, headers or bodies (those can carry personal data).
* **last-resort errors**: an exception no handler claimed becomes a 500 problem, logged
  once with its stack (FastAPI's own last-resort handler only sees errors raised outside
  this middleware, or after the answer has started).
* **body size limit**: a declared ``Content-Length`` over the limit is refused (413
  problem) before a byte of the body is read; a body without one (chunked) is counted
  while it streams and the read that passes the limit raises :class:`RequestBodyTooLarge`,
  which FastAPI's body parsing lets through to the problem handlers (and which this
  middleware answers itself if nothing else did).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http import problems

access_log = logging.getLogger("gateway.access")

_TRACER_NAME = "gateway.http"
_KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"})


class RequestBodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"the request body is larger than the limit of {limit} bytes",
            # The rest of the body stays unread on the wire: the connection cannot be reused.
            headers={"Connection": "close"},
        )


class GatewayMiddleware:
    """Server span, access log, last-resort 500 and body size limit, in one layer (see the module)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._tracer = trace.get_tracer(_TRACER_NAME)
        self._propagator: TextMapPropagator | None = None
        self._propagation_headers: frozenset[bytes] = frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        method: str = scope["method"]
        declared_length, carrier = self._read_headers(scope)
        # Without propagation headers the parent is the current context, as extract() would find.
        parent = propagate.extract(carrier) if carrier else None
        span = self._tracer.start_span(method if method in _KNOWN_METHODS else "HTTP", parent, kind=SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        status: int | None = None
        failure: BaseException | None = None

        async def send_capturing_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            refusal = None if declared_length is None else self._refusal(declared_length)
            if refusal is not None:
                await _refuse(scope, receive, send_capturing_status, *refusal)
            else:
                limit = self.max_body_bytes
                received = 0

                async def receive_counting() -> Message:
                    nonlocal received
                    if received > limit:
                        raise RequestBodyTooLarge(limit)
                    message = await receive()
                    if message["type"] == "http.request":
                        received += len(message.get("body", b""))
                        if received > limit:
                            raise RequestBodyTooLarge(limit)
                    return message

                try:
                    await self.app(scope, receive_counting, send_capturing_status)
                except RequestBodyTooLarge as exc:
                    if status is not None:
                        raise
                    await _refuse(scope, receive, send_capturing_status, problems.CONTENT_TOO_LARGE, str(exc.detail))
        except Exception as exc:
            failure = exc
            if status is not None:
                raise  # too late to answer; the server closes the connection
            response = problems.unexpected_error_response(scope, exc)
            await response(scope, receive, send_capturing_status)
        finally:
            route = problems.route_template(scope)
            if access_log.isEnabledFor(logging.INFO):
                state: Any = scope.get("state") or {}
                span_context = span.get_span_context()
                access_log.info(
                    "http request",
                    extra={
                        "method": method,
                        "route": route,
                        "status": status if status is not None else (500 if failure is not None else None),
                        "latency_ms": round((time.perf_counter() - started_at) * 1000, 2),
                        "trace_id": format(span_context.trace_id, "032x") if span_context.is_valid else None,
                        "client_id": state.get("client_id") if isinstance(state, dict) else None,
                        "client_kind": state.get("client_kind") if isinstance(state, dict) else None,
                    },
                )
            if span.is_recording():
                _describe(span, scope, method, route, status, failure)
            span.end()
            otel_context.detach(token)

    def _refusal(self, declared: bytes) -> tuple[problems.ProblemType, str] | None:
        """Why a declared ``Content-Length`` is refused before the body is read, if it is."""
        if not declared.strip().isdigit():
            return problems.BAD_REQUEST, "Content-Length is not a number"
        if int(declared) > self.max_body_bytes:
            return (
                problems.CONTENT_TOO_LARGE,
                f"the request body of {int(declared)} bytes is larger than the limit of {self.max_body_bytes} bytes",
            )
        return None

    def _read_headers(self, scope: Scope) -> tuple[bytes | None, dict[str, str]]:
        """``Content-Length`` and the trace propagation headers, in one pass over the headers."""
        propagator = propagate.get_global_textmap()
        if propagator is not self._propagator:
            self._propagation_headers = frozenset(field.lower().encode("latin-1") for field in propagator.fields)
            self._propagator = propagator
        wanted = self._propagation_headers
        declared: bytes | None = None
        carrier: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"content-length":
                if declared is None:
                    declared = value
            elif name in wanted:
                key = name.decode("latin-1")
                text = value.decode("latin-1")
                carrier[key] = f"{carrier[key]},{text}" if key in carrier else text
        return declared, carrier


def _describe(
    span: trace.Span, scope: Scope, method: str, route: str | None, status: int | None, failure: BaseException | None
) -> None:
    """A kept span's name and attributes (HTTP semantic conventions); never the raw path or query."""
    span_method = method if method in _KNOWN_METHODS else "HTTP"
    if route:
        span.update_name(f"{span_method} {route}")
    attributes: dict[str, Any] = {
        "http.request.method": method if method in _KNOWN_METHODS else "_OTHER",
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if route:
        attributes["http.route"] = route
    if status is not None:
        attributes["http.response.status_code"] = status
    span.set_attributes(attributes)
    if failure is not None or status is None or status >= 500:
        error_type = type(failure).__name__ if failure is not None else str(status or 500)
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, error_type if failure is not None else None))


async def _refuse(scope: Scope, receive: Receive, send: Send, kind: problems.ProblemType, detail: str) -> None:
    # The unread body stays on the wire, so the connection cannot be reused.
    response = problems.problem_response(
        kind, detail, instance=problems.instance_of(scope), headers={"Connection": "close"}
    )
    await response(scope, receive, send)
