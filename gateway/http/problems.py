"""RFC 9457 problem details: the one shape of every error the gateway answers with.

Every error response is ``application/problem+json`` with a stable ``type`` URI per kind of
error (all of them listed here, under :data:`PROBLEM_BASE_URI`), a ``title`` that never
varies for a type, the HTTP ``status``, a human-readable ``detail``, the ``instance`` (the
request path) and the ``trace_id`` to find the request in the traces. Validation problems
add ``errors`` (location and message of each bad field); problems from a backend add the
service's machine-readable ``reason`` when it sent one.

Route code raises :class:`ProblemError`; whatever else goes wrong is turned into a problem
by the handlers that :func:`install_problem_handlers` registers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from gateway.idempotency.records import DatabaseBusy
from servicekit.telemetry import current_trace_id

log = logging.getLogger("gateway.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
# The one place the problem type URIs are rooted; a type never changes once published.
PROBLEM_BASE_URI = "https://problems.retail-platform.dev/"


@dataclass(frozen=True)
class ProblemType:
    """One kind of error: its stable URI slug, its fixed title and its usual HTTP status."""

    slug: str
    title: str
    status: int

    @property
    def uri(self) -> str:
        return PROBLEM_BASE_URI + self.slug


BAD_REQUEST = ProblemType("bad-request", "The request is malformed", 400)
VALIDATION_ERROR = ProblemType("validation-error", "The request is not valid", 422)
INVALID_ARGUMENT = ProblemType("invalid-argument", "A value in the request was rejected", 422)
OUT_OF_RANGE = ProblemType("out-of-range", "A value in the request is out of range", 400)
UNAUTHENTICATED = ProblemType("unauthenticated", "Authentication is required", 401)
FORBIDDEN = ProblemType("forbidden", "Not allowed", 403)
NOT_FOUND = ProblemType("not-found", "Not found", 404)
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", "Method not allowed", 405)
NOT_ACCEPTABLE = ProblemType("not-acceptable", "No acceptable representation", 406)
ALREADY_EXISTS = ProblemType("already-exists", "It already exists", 409)
FAILED_PRECONDITION = ProblemType("failed-precondition", "Not possible in the current state", 409)
OUT_OF_STOCK = ProblemType("out-of-stock", "Not enough stock to promise", 409)
CONCURRENT_MODIFICATION = ProblemType("concurrent-modification", "Changed concurrently; retry", 409)
CONTENT_TOO_LARGE = ProblemType("content-too-large", "The request body is too large", 413)
UNSUPPORTED_MEDIA_TYPE = ProblemType("unsupported-media-type", "Unsupported media type", 415)
TOO_MANY_REQUESTS = ProblemType("too-many-requests", "Too many requests", 429)
INTERNAL_ERROR = ProblemType("internal-error", "Internal error", 500)
NOT_IMPLEMENTED = ProblemType("not-implemented", "Not implemented", 501)
SERVICE_UNAVAILABLE = ProblemType("service-unavailable", "A service is temporarily unavailable", 503)
REQUEST_CANCELLED = ProblemType("request-cancelled", "The request was cancelled by a service", 503)
NOT_READY = ProblemType("not-ready", "Not ready to serve", 503)
SERVICE_TIMEOUT = ProblemType("service-timeout", "A service did not answer in time", 504)

# For HTTP errors raised by the framework (routing, method matching, body parsing).
_BY_HTTP_STATUS: dict[int, ProblemType] = {
    kind.status: kind
    for kind in (
        BAD_REQUEST,
        UNAUTHENTICATED,
        FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        NOT_ACCEPTABLE,
        CONTENT_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        VALIDATION_ERROR,
        TOO_MANY_REQUESTS,
        INTERNAL_ERROR,
        NOT_IMPLEMENTED,
        SERVICE_UNAVAILABLE,
        SERVICE_TIMEOUT,
    )
}


def problem_type_for_status(status: int) -> ProblemType:
    """The problem type of a bare HTTP status; ``about:blank`` (RFC 9457 §4.2.1) when none fits."""
    known = _BY_HTTP_STATUS.get(status)
    if known is not None:
        return known
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return _AboutBlank(slug="", title=phrase, status=status)


@dataclass(frozen=True)
class _AboutBlank(ProblemType):
    """No semantics beyond the HTTP status code itself."""

    @property
    def uri(self) -> str:
        return "about:blank"


# ---- the documented shape (OpenAPI) -------------------------------------------------------


class FieldError(BaseModel):
    """One invalid part of a request."""

    location: str = Field(description="where: 'body.lines.0.quantity', 'query.limit', 'path.sku', ...")
    message: str = Field(description="what is wrong with it")
    type: str = Field(description="machine-readable kind of the error, e.g. 'missing', 'greater_than'")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="stable URI identifying the kind of problem", examples=[NOT_FOUND.uri])
    title: str = Field(description="short summary of the kind of problem; the same for every occurrence")
    status: int = Field(description="HTTP status code")
    detail: str = Field(description="what went wrong this time, for a human")
    instance: str = Field(description="path of the request that failed")
    trace_id: str | None = Field(default=None, description="W3C trace id of the request, for support")
    reason: str | None = Field(
        default=None, description="machine-readable reason a backend service gave, e.g. 'out-of-stock'"
    )


class ValidationProblem(Problem):
    """RFC 9457 problem details for a request that failed validation."""

    errors: list[FieldError] = Field(description="every invalid part of the request")


# ---- raising and rendering ------------------------------------------------------------------


class ProblemError(Exception):
    """Raise from route code to answer with a problem of the given type.

    ``extensions`` become extra members of the body; never put personal data in them.
    """

    def __init__(
        self,
        problem_type: ProblemType,
        detail: str,
        *,
        status: int | None = None,
        extensions: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem_type = problem_type
        self.detail = detail
        self.status = status or problem_type.status
        self.extensions = dict(extensions or {})
        self.headers = dict(headers or {})


# Every 503 says when to try again (RFC 9110 §10.2.3): what it reports (a backend, the gateway's
# database or NATS unavailable, the gateway starting or stopping) is expected to pass within
# seconds, and clients that retry at once only add load while it does.
UNAVAILABLE_RETRY_AFTER_SECONDS = 2
RETRY_AFTER = "Retry-After"


class ProblemResponse(JSONResponse):
    """A problem document. A 503 always carries ``Retry-After``: the default here unless the
    code answering it named a time of its own — one place, whatever path the 503 took."""

    media_type = PROBLEM_MEDIA_TYPE

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        headers = dict(headers or {})
        if status_code == 503 and not any(name.lower() == RETRY_AFTER.lower() for name in headers):
            headers[RETRY_AFTER] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
        super().__init__(content, status_code, headers, media_type, background)


def problem_body(
    problem_type: ProblemType,
    detail: str,
    *,
    instance: str,
    status: int | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object of one problem; standard members cannot be overridden by extensions."""
    body: dict[str, Any] = {
        "type": problem_type.uri,
        "title": problem_type.title,
        "status": status or problem_type.status,
        "detail": detail,
        "instance": instance,
        "trace_id": current_trace_id(),
    }
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    if body["status"] == 422 and "errors" not in body:
        # Every 422 is documented as a validation problem: it always names what was rejected.
        body["errors"] = [{"location": "request", "message": detail, "type": problem_type.slug or "invalid"}]
    return body


def problem_response(
    problem_type: ProblemType,
    detail: str,
    *,
    instance: str,
    status: int | None = None,
    extensions: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    body = problem_body(problem_type, detail, instance=instance, status=status, extensions=extensions)
    return ProblemResponse(body, status_code=body["status"], headers=dict(headers or {}))


def request_instance(request: Request) -> str:
    return instance_of(request.scope)


def instance_of(scope: Mapping[str, Any]) -> str:
    # The path only: a query string may carry personal data (phone numbers, names).
    return str(scope.get("path", ""))


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """FastAPI's validation errors as ``errors`` entries, without the rejected input values."""
    entries = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ())) or "request"
        message = str(error.get("msg", "invalid"))
        context = error.get("ctx") or {}
        if error.get("type") == "json_invalid" and "error" in context:
            message = f"{message}: {context['error']}"
        entries.append({"location": location, "message": message, "type": str(error.get("type", "invalid"))})
    return entries


# ---- exception handlers ------------------------------------------------------------------------


async def handle_problem_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.problem_type,
        exc.detail,
        instance=request_instance(request),
        status=exc.status,
        extensions=exc.extensions,
        headers=exc.headers,
    )


async def handle_http_exception(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HTTPException)
    problem_type = problem_type_for_status(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else problem_type.title
    if exc.status_code == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"no route matches {request.method} {request_instance(request)}"
    elif exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
        detail = f"{request.method} is not allowed here; allowed: {exc.headers['Allow']}"
    return problem_response(
        problem_type, detail, instance=request_instance(request), status=exc.status_code, headers=exc.headers
    )


async def handle_validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    noun = "part" if len(errors) == 1 else "parts"
    return problem_response(
        VALIDATION_ERROR,
        f"{len(errors)} {noun} of the request {'is' if len(errors) == 1 else 'are'} invalid; see errors",
        instance=request_instance(request),
        extensions={"errors": errors},
    )


async def handle_unexpected_error(request: Request, exc: Exception) -> ProblemResponse:
    """Anything unforeseen: logged with its stack, answered without a word about internals."""
    return unexpected_error_response(request.scope, exc)


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The matched route's path template (``/v1/skus/{sku}``), never the raw path; None if unmatched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def unexpected_error_response(scope: Mapping[str, Any], exc: BaseException) -> ProblemResponse:
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    log.error(
        "unhandled error while serving a request",
        exc_info=exc,
        extra={"method": scope.get("method"), "route": route_template(scope)},
    )
    return problem_response(
        INTERNAL_ERROR,
        "an unexpected error occurred; quote the trace_id when reporting it",
        instance=instance_of(scope),
    )


async def handle_database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
    """The gateway's own PostgreSQL is unreachable or its pool exhausted: retry, nothing was done."""
    log.warning(
        "the gateway database is unavailable",
        extra={"route": route_template(request.scope), "error": type(exc).__name__},
    )
    return problem_response(
        SERVICE_UNAVAILABLE, "the gateway's database is unavailable; retry shortly", instance=request_instance(request)
    )


# Outages of the gateway's own database (connection refused or lost, pool exhausted).
DATABASE_OUTAGES: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    ConnectionRefusedError,
    DatabaseBusy,
)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem details."""
    app.add_exception_handler(ProblemError, handle_problem_error)
    for outage in DATABASE_OUTAGES:
        app.add_exception_handler(outage, handle_database_unavailable)
    app.add_exception_handler(HTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    # Last resort for errors outside the routes; see gateway.http.middleware.GatewayMiddleware.
    app.add_exception_handler(Exception, handle_unexpected_error)


# ---- OpenAPI ------------------------------------------------------------------------------------


_documented_models: dict[str, type[Problem]] = {model.__name__: model for model in (Problem, ValidationProblem)}
_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def problem_responses(*statuses: int, model: type[Problem] = Problem) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting a route's problem answers, e.g. ``problem_responses(404, 409)``."""
    _documented_models[model.__name__] = model
    return {status: _problem_response_doc(problem_type_for_status(status).title, model) for status in statuses}


def _problem_response_doc(description: str, model: type[Problem]) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}}}


# Liveness consults nothing (routes/health.py), so it is the one operation that never answers 503.
ALWAYS_AVAILABLE_PATHS = frozenset({"/healthz"})
# What any operation that needs a token may answer (gateway/security/authorisation.py).
_TOKEN_STATUSES = (401, 403, 429)
_RETRY_AFTER_DOC: dict[str, Any] = {
    "description": "whole seconds to wait before retrying; sent with every 429 and 503",
    "schema": {"type": "integer", "minimum": 1},
}


def document_problems(openapi: dict[str, Any]) -> None:
    """Make an OpenAPI document tell the truth about errors.

    Adds the problem schemas; replaces FastAPI's default 422 body with the validation
    problem; documents 400 and 413 on every operation with a request body, 401, 403 and 429
    on every one that needs a token (a missing or refused token, a scope or an object the
    client may not have, a client over its rate limit), 500 on every one, and 503 with its
    ``Retry-After`` header on every one but liveness (any route may find a backend, the
    gateway's database or NATS unavailable, or the gateway starting or stopping). A route
    names only the problems of its own: ``responses=problem_responses(404, 409)``.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name, model in _documented_models.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    for path, path_item in openapi.get("paths", {}).items():
        for method, operation in path_item.items():
            if method not in _HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _problem_response_doc(VALIDATION_ERROR.title, ValidationProblem)
            if operation.get("security"):
                for refused in _TOKEN_STATUSES:
                    responses.setdefault(
                        str(refused), _problem_response_doc(problem_type_for_status(refused).title, Problem)
                    )
            if "requestBody" in operation:
                # A body that is not even text (bytes that are not UTF-8) cannot be validated: 400.
                responses.setdefault("400", _problem_response_doc(BAD_REQUEST.title, Problem))
                responses.setdefault("413", _problem_response_doc(CONTENT_TOO_LARGE.title, Problem))
            responses.setdefault("500", _problem_response_doc(INTERNAL_ERROR.title, Problem))
            if path not in ALWAYS_AVAILABLE_PATHS:
                responses.setdefault("503", _problem_response_doc(SERVICE_UNAVAILABLE.title, Problem))
            for retried in ("429", "503"):
                if retried in responses:
                    responses[retried].setdefault("headers", {})[RETRY_AFTER] = _RETRY_AFTER_DOC
    # FastAPI's own validation error shapes are never sent; keep them out of the document.
    for name in ("HTTPValidationError", "ValidationError"):
        schema = schemas.pop(name, None)
        if schema is not None and f'"#/components/schemas/{name}"' in json.dumps(openapi):
            schemas[name] = schema  # something else does use it
