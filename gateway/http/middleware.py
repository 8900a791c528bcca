"""Pure ASGI middleware of the gateway: access log, last-resort error answer, body size limit.

Pure ASGI (not ``BaseHTTPMiddleware``) so that request bodies stream through untouched,
the trace context stays current, and nothing is buffered on the way.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.http import problems
from servicekit.telemetry import current_trace_id

access_log = logging.getLogger("gateway.access")


class ResponseStartTracker:
    """Wraps ``send`` and remembers whether the response has started.

    Once the status line is out, an error can no longer be answered with a problem
    document; the middlewares that turn exceptions into responses need to know that.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class AccessLogMiddleware:
    """One structured log line per HTTP request.

    Logs the route *template* (``/v1/skus/{sku}``), never the raw path, query string,
    headers or bodies: those can carry personal data. ``client_id`` and
    ``client_kind`` are what the authentication layer stores in ``request.state``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        status: int | None = None

        async def send_capturing_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_capturing_status)
        except Exception:
            status = status or 500
            raise
        finally:
            state: Any = scope.get("state") or {}
            access_log.info(
                "http request",
                extra={
                    "method": scope["method"],
                    "route": problems.route_template(scope),
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started_at) * 1000, 2),
                    "trace_id": current_trace_id(),
                    "client_id": state.get("client_id") if isinstance(state, dict) else None,
                    "client_kind": state.get("client_kind") if isinstance(state, dict) else None,
                },
            )


class UnexpectedErrorMiddleware:
    """Turns an exception no handler claimed into a 500 problem, logged once with its stack.

    Sits inside the access log (which then sees the 500) and outside FastAPI's own
    exception handling; the framework's last-resort handler only sees errors raised by
    middleware outside this one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked_send = ResponseStartTracker(send)
        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            if tracked_send.started:
                raise  # too late to answer; the server closes the connection
            response = problems.unexpected_error_response(scope, exc)
            await response(scope, receive, send)


class RequestBodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"the request body is larger than the limit of {limit} bytes",
            # The rest of the body stays unread on the wire: the connection cannot be reused.
            headers={"Connection": "close"},
        )


class BodySizeLimitMiddleware:
    """Refuses request bodies larger than ``max_body_bytes`` with a 413 problem.

    A declared ``Content-Length`` over the limit is refused before a byte of the body is
    read. A body without one (chunked) is counted while it streams; the read that passes
    the limit raises :class:`RequestBodyTooLarge`, which FastAPI's body parsing lets
    through to the problem handlers (and which this middleware answers itself if nothing
    else did).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await self._refuse(scope, receive, send, problems.BAD_REQUEST, "Content-Length is not a number")
                return
            if int(declared) > limit:
                detail = f"the request body of {int(declared)} bytes is larger than the limit of {limit} bytes"
                await self._refuse(scope, receive, send, problems.CONTENT_TOO_LARGE, detail)
                return

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

        tracked_send = ResponseStartTracker(send)
        try:
            await self.app(scope, receive_counting, tracked_send)
        except RequestBodyTooLarge as exc:
            if tracked_send.started:
                raise
            await self._refuse(scope, receive, send, problems.CONTENT_TOO_LARGE, str(exc.detail))

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, kind: problems.ProblemType, detail: str) -> None:
        # The unread body stays on the wire, so the connection cannot be reused.
        response = problems.problem_response(
            kind, detail, instance=problems.instance_of(scope), headers={"Connection": "close"}
        )
        await response(scope, receive, send)
