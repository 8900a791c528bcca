"""How a failed gRPC call to a backend becomes an HTTP problem — the one table for it.

Route code simply awaits its stub (``await stub.ReserveStock(request, timeout=...)``); an
``AioRpcError`` it does not catch reaches :func:`handle_rpc_error`, which answers with the
problem this table names. Choices worth knowing:

- ``INVALID_ARGUMENT`` → 422 ``invalid-argument``: the request was well-formed JSON that
  passed the gateway's own validation, but a service found a value unacceptable — the
  request's content is at fault, as with the gateway's own 422 ``validation-error``.
- ``FAILED_PRECONDITION`` → 409: the request is fine, the current state of the resource
  forbids it (reservation already committed, statement already confirmed).
- ``ABORTED`` → 409 ``concurrent-modification``: a concurrency conflict, safe to retry.
- ``CANCELLED`` → 503: the gateway never cancels a call it still waits for, so a
  cancellation came from the service side (shutting down); the caller may retry. (499 is
  nginx's private code and means nothing to most clients.)
- ``UNAVAILABLE`` → 503 ``service-unavailable``: the backend is stopped, unreachable, or
  none of its servers reports SERVING (the channels watch their health, see
  :mod:`gateway.adapters.backends`). Like every 503 it carries ``Retry-After``
  (:class:`gateway.http.problems.ProblemResponse` adds it).
- Server-side codes (``INTERNAL``, ``UNKNOWN``, ``DATA_LOSS``, ``UNAVAILABLE``,
  ``DEADLINE_EXCEEDED``, ...) never show the service's message — it can name hosts,
  addresses or SQL — only a fixed sentence; the full status is logged.

Services put a machine-readable reason (``out-of-stock``) into the trailing metadata key
:data:`REASON_METADATA_KEY` (the kit's error interceptor does it for every domain error);
it becomes the problem's ``reason`` member.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import grpc
from fastapi import FastAPI, Request
from retail.common.v1 import refusal_pb2

from gateway.http import problems
from gateway.http.problems import ProblemResponse, ProblemType
from servicekit.grpc_server import DETAILS_METADATA_KEY, REASON_METADATA_KEY

__all__ = ["REASON_METADATA_KEY", "RPC_STATUS_TO_PROBLEM", "install_rpc_error_handler", "rpc_error_problem"]

log = logging.getLogger("gateway.backends")
_REASON = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


@dataclass(frozen=True)
class RpcProblem:
    """What one gRPC status code becomes over HTTP."""

    problem_type: ProblemType
    status: int
    # The service's message is shown only where it speaks about the caller's request.
    shows_details: bool


def _client_fault(problem_type: ProblemType, status: int | None = None) -> RpcProblem:
    return RpcProblem(problem_type, status or problem_type.status, shows_details=True)


def _server_fault(problem_type: ProblemType, status: int | None = None) -> RpcProblem:
    return RpcProblem(problem_type, status or problem_type.status, shows_details=False)


RPC_STATUS_TO_PROBLEM: dict[grpc.StatusCode, RpcProblem] = {
    grpc.StatusCode.INVALID_ARGUMENT: _client_fault(problems.INVALID_ARGUMENT),
    grpc.StatusCode.OUT_OF_RANGE: _client_fault(problems.OUT_OF_RANGE),
    grpc.StatusCode.NOT_FOUND: _client_fault(problems.NOT_FOUND),
    grpc.StatusCode.ALREADY_EXISTS: _client_fault(problems.ALREADY_EXISTS),
    grpc.StatusCode.FAILED_PRECONDITION: _client_fault(problems.FAILED_PRECONDITION),
    grpc.StatusCode.ABORTED: _client_fault(problems.CONCURRENT_MODIFICATION),
    grpc.StatusCode.PERMISSION_DENIED: _client_fault(problems.FORBIDDEN),
    grpc.StatusCode.UNAUTHENTICATED: _client_fault(problems.UNAUTHENTICATED),
    grpc.StatusCode.RESOURCE_EXHAUSTED: _client_fault(problems.TOO_MANY_REQUESTS),
    grpc.StatusCode.UNIMPLEMENTED: _server_fault(problems.NOT_IMPLEMENTED),
    grpc.StatusCode.UNAVAILABLE: _server_fault(problems.SERVICE_UNAVAILABLE),
    grpc.StatusCode.CANCELLED: _server_fault(problems.REQUEST_CANCELLED),
    grpc.StatusCode.DEADLINE_EXCEEDED: _server_fault(problems.SERVICE_TIMEOUT),
    grpc.StatusCode.INTERNAL: _server_fault(problems.INTERNAL_ERROR),
    grpc.StatusCode.UNKNOWN: _server_fault(problems.INTERNAL_ERROR),
    grpc.StatusCode.DATA_LOSS: _server_fault(problems.INTERNAL_ERROR),
}
# OK is not an error; if it ever arrives as one, something is broken inside the gateway.
_UNMAPPED = _server_fault(problems.INTERNAL_ERROR)

_SERVER_FAULT_DETAILS: dict[int, str] = {
    501: "the service does not support this operation yet",
    503: "a service needed for this request is unavailable; retry later",
    504: "a service needed for this request did not answer in time; retry later",
}


def rpc_problem(code: grpc.StatusCode) -> RpcProblem:
    """The HTTP status and problem type of a gRPC status code."""
    return RPC_STATUS_TO_PROBLEM.get(code, _UNMAPPED)


def error_reason(error: grpc.RpcError) -> str | None:
    """The service's machine-readable reason from the trailing metadata, if well-formed."""
    try:
        metadata: Any = error.trailing_metadata()
    except Exception:
        return None
    for key, value in metadata or ():
        if key == REASON_METADATA_KEY:
            reason = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
            return reason if _REASON.fullmatch(reason) else None
    return None


def error_details(error: grpc.RpcError) -> dict[str, Any]:
    """Structured facts the service attached (e.g. what is still available), if well-formed JSON."""
    try:
        metadata: Any = error.trailing_metadata()
    except Exception:
        return {}
    for key, value in metadata or ():
        if key == DETAILS_METADATA_KEY:
            try:
                details = json.loads(value)
            except (ValueError, TypeError):
                return {}
            return {k: v for k, v in details.items() if isinstance(k, str)} if isinstance(details, dict) else {}
    return {}


_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def refusal_error(refusal: refusal_pb2.Refusal) -> grpc.aio.AioRpcError:
    """One item's refusal from a batched answer, as the error the unary call for that item would
    have raised: route code raises it, and the problem answer is the same."""
    trailing = [(REASON_METADATA_KEY, refusal.reason)] if refusal.reason else []
    if refusal.details_json:
        trailing.append((DETAILS_METADATA_KEY, refusal.details_json))
    return grpc.aio.AioRpcError(
        _STATUS_BY_NUMBER.get(refusal.code, grpc.StatusCode.UNKNOWN),
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*trailing),
        details=refusal.message,
        debug_error_string="",
    )


# Refusals common enough for clients to switch on get a problem type of their own.
REASON_PROBLEM_TYPES: dict[str, ProblemType] = {problems.OUT_OF_STOCK.slug: problems.OUT_OF_STOCK}


def rpc_error_problem(error: grpc.RpcError, *, instance: str) -> ProblemResponse:
    """The problem answer for a failed backend call."""
    code = error.code()
    mapped = rpc_problem(code)
    if mapped.shows_details:
        detail = error.details() or mapped.problem_type.title
    else:
        detail = _SERVER_FAULT_DETAILS.get(mapped.status, "an unexpected error occurred; quote the trace_id")
    reason = error_reason(error)
    # Only refusals of the caller's request carry their facts along; server faults say nothing.
    extensions = error_details(error) if mapped.shows_details else {}
    if reason:
        extensions["reason"] = reason
    specific = REASON_PROBLEM_TYPES.get(reason or "")
    problem_type = specific if specific is not None and specific.status == mapped.status else mapped.problem_type
    return problems.problem_response(
        problem_type,
        detail,
        instance=instance,
        status=mapped.status,
        extensions=extensions or None,
    )


async def handle_rpc_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    code = exc.code()
    fields: dict[str, Any] = {
        "grpc_code": code.name,
        "reason": error_reason(exc),
        "route": problems.route_template(request.scope),
    }
    if rpc_problem(code).shows_details:
        # The caller gets the service's message; the log need not repeat what may name a member.
        log.info("backend refused the request", extra=fields)
    else:
        log.warning("backend call failed", extra=fields | {"grpc_details": exc.details()})
    return rpc_error_problem(exc, instance=problems.request_instance(request))


def install_rpc_error_handler(app: FastAPI) -> None:
    """Let route code ``await`` its stubs and leave failed calls to this module."""
    app.add_exception_handler(grpc.aio.AioRpcError, handle_rpc_error)
