"""The FastAPI application: middleware, error handling, OpenAPI and routers.

:func:`create_app` builds it from what it is given and connects nothing; the composition
root (:mod:`gateway.bootstrap`) passes the lifespan that opens the connections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware import Middleware
from starlette.types import Lifespan

from gateway import problems
from gateway.grpc_errors import install_rpc_error_handler
from gateway.idempotency import IDEMPOTENCY_KEY_IN_FLIGHT, IDEMPOTENCY_KEY_REUSED
from gateway.middleware import AccessLogMiddleware, BodySizeLimitMiddleware, UnexpectedErrorMiddleware
from gateway.routes import auth, clients, health, pos

API_TITLE = "Retail platform API"
API_VERSION = "0.1.0"
API_DESCRIPTION = """\
The one front door of the retail middle-platform, for app and mini-program back ends,
POS terminals, supplier portals and store staff.

**Errors** are always [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details
(`application/problem+json`) with a stable `type` URI per kind of error, a `detail` for
humans, the `trace_id` of the request, `errors` for each invalid part of a request, and a
machine-readable `reason` when a service gave one.
"""


def problem_catalogue() -> str:
    """The API description's list of every problem type the gateway answers with."""
    known = [value for value in vars(problems).values() if type(value) is problems.ProblemType]
    rows = [
        f"| `{kind.slug}` | {kind.status} | {kind.title} |"
        for kind in [*known, IDEMPOTENCY_KEY_REUSED, IDEMPOTENCY_KEY_IN_FLIGHT, pos.SALE_REJECTED]
    ]
    return (
        f"\n**Problem types** (`type` is `{problems.PROBLEM_BASE_URI}<slug>`; `sale-rejected` appears per sale "
        "inside a POS batch answer):\n\n| slug | status | title |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    )


AUTH_DESCRIPTION = """
**Authentication**: OAuth2 client credentials. `POST /v1/auth/token` with `client_id` and
`client_secret` returns a short-lived bearer token; send it as `Authorization: Bearer <token>`.
Each route names the scope it needs; a missing, expired or badly signed token is 401, a
token without the scope (or a client that does not own the object) 403, or 404 where the
object's existence must not leak.

**Idempotency**: every POST that changes something requires an `Idempotency-Key` header.
Resending the same key with the same body returns the first answer (status and body,
with `Idempotent-Replayed: true`) without repeating the effect; the same key with a
different body is 422, and while the first request is still running, 409.

**Limits**: each client has a rate limit (429 with `Retry-After`); request bodies are
capped (413); a POS batch holds at most 500 sales.
"""

# Each router's tag, described; routers of later areas add theirs here.
OPENAPI_TAGS: list[dict[str, Any]] = [
    {"name": "operations", "description": "Liveness and readiness probes."},
    {"name": "auth", "description": "OAuth2 client credentials: a short-lived bearer token per client."},
    {"name": "pos", "description": "POS terminals: sales into the sales journal, start-up data."},
    {"name": "clients", "description": "Client administration, for headquarters staff."},
]


class GatewayApi(FastAPI):
    """FastAPI whose OpenAPI document describes the problem answers truthfully."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            problems.document_problems(super().openapi())
        assert self.openapi_schema is not None
        return self.openapi_schema


def create_app(
    *,
    lifespan: Lifespan[FastAPI] | None = None,
    max_request_body_bytes: int,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The gateway's HTTP application, with the health routes and ``routers``."""
    app = GatewayApi(
        title=API_TITLE,
        description=API_DESCRIPTION + AUTH_DESCRIPTION + problem_catalogue(),
        version=API_VERSION,
        openapi_tags=OPENAPI_TAGS,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        # Outermost first: the access log sees every answer, including the 500s and 413s.
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(UnexpectedErrorMiddleware),
            Middleware(BodySizeLimitMiddleware, max_body_bytes=max_request_body_bytes),
        ],
    )
    problems.install_problem_handlers(app)
    install_rpc_error_handler(app)
    for router in (health.router, auth.router, pos.router, clients.router):
        app.include_router(router)
    for router in routers:
        app.include_router(router)
    return app
