"""The FastAPI application: middleware, error handling, OpenAPI and routers.

:func:`create_app` builds it from what it is given and connects nothing; the composition
root (:mod:`gateway.bootstrap`) passes the lifespan that opens the connections.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.middleware import Middleware
from starlette.types import Lifespan

from gateway import auth, clients, health, pos
from gateway.auth.routes import document_token_request
from gateway.http import paging, problems
from gateway.http.grpc_errors import install_rpc_error_handler
from gateway.http.integer_types import restore_integer_bounds
from gateway.http.middleware import GatewayMiddleware
from gateway.idempotency.requests import IDEMPOTENCY_KEY_IN_FLIGHT, IDEMPOTENCY_KEY_REUSED
from gateway.pos.journal import SALE_REJECTED
from gateway.settings import GatewaySettings

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
        for kind in [
            *known,
            IDEMPOTENCY_KEY_REUSED,
            IDEMPOTENCY_KEY_IN_FLIGHT,
            paging.INVALID_PAGE_TOKEN,
            SALE_REJECTED,
        ]
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

**Paging**: list routes take `page_size` (1 to the `maximum` stated on each route, the
deployment's `MAX_PAGE_SIZE`) and answer a `next_page_token` (null on the last page). Pass it
back as `page_token` with the same other parameters; it is opaque and signed, and a token
that is not one this listing handed out is 422 `invalid-page-token`, never the first page.

**Integers** carry their wire type as `format` (`int32`, `int64`) and are refused (422)
beyond its range.
"""

# Each router's tag, described; routers of later areas add theirs here.
OPENAPI_TAGS: list[dict[str, Any]] = [
    {"name": "operations", "description": "Liveness and readiness probes."},
    {"name": "auth", "description": "OAuth2 client credentials: a short-lived bearer token per client."},
    {"name": "pos", "description": "POS terminals: sales into the sales journal, start-up data."},
    {"name": "clients", "description": "Client administration, for headquarters staff."},
]


def operation_id(route: APIRoute) -> str:
    """An operation's stable ``operationId``: its route function's name in camelCase (``reserveStock``).

    Generated SDKs name their functions after it, so it never carries the path or method.
    """
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def sdk_schema_name(name: str) -> str:
    """The name a schema has in the document, as an SDK shows it: a reservation answered is a
    ``Reservation``, one asked for a ``ReservationRequest`` (the models' ``…Out``/``…In``)."""
    if name.endswith("Out") and len(name) > len("Out"):
        return name.removesuffix("Out")
    if name.endswith("In") and len(name) > len("In"):
        return name.removesuffix("In") + "Request"
    return name


def name_schemas_for_sdks(openapi: dict[str, Any]) -> None:
    """Rename every component schema with :func:`sdk_schema_name`, and every reference to it."""
    schemas: dict[str, Any] = openapi.get("components", {}).get("schemas", {})
    renamed = {name: sdk_schema_name(name) for name in schemas}
    clashes = sorted(new for new in set(renamed.values()) if list(renamed.values()).count(new) > 1)
    if clashes:
        raise ValueError(f"two schemas would share the documented names {clashes}; rename a model")
    for old, new in renamed.items():
        if schemas[old].get("title") == old:
            schemas[old]["title"] = new
    openapi["components"]["schemas"] = {renamed[name]: schema for name, schema in schemas.items()}
    prefix = "#/components/schemas/"

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith(prefix):
                node["$ref"] = prefix + renamed.get(reference.removeprefix(prefix), reference.removeprefix(prefix))
            for child in node.values():
                rewrite(child)
        elif isinstance(node, list):
            for child in node:
                rewrite(child)

    rewrite(openapi)


class GatewayApi(FastAPI):
    """FastAPI whose OpenAPI document is the gateway's contract: problem answers described
    truthfully, the deployment's page-size cap, exact integer bounds, SDK-friendly names."""

    def __init__(self, *, max_page_size: int, **settings: Any) -> None:
        super().__init__(**settings)
        self.max_page_size = max_page_size

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = super().openapi()
            problems.document_problems(document)
            document_token_request(document)
            paging.document_page_size(document, self.max_page_size)
            restore_integer_bounds(document)
            name_schemas_for_sdks(document)
        assert self.openapi_schema is not None
        return self.openapi_schema


DOCS_URL = "/docs"
DOCS_ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
_FAVICON = "favicon.png"


def install_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` with its assets served by the gateway itself (from the pinned
    ``fastapi-offline`` package), so the documentation works without internet; ``/`` leads there."""
    assets = importlib.resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} – Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/{_FAVICON}",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/", include_in_schema=False)
    async def start_page(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '')}{DOCS_URL}")


_DEFAULT_MAX_PAGE_SIZE: int = GatewaySettings.model_fields["max_page_size"].default


def create_app(
    *,
    lifespan: Lifespan[FastAPI] | None = None,
    max_request_body_bytes: int,
    max_page_size: int = _DEFAULT_MAX_PAGE_SIZE,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The gateway's HTTP application, with the health routes and ``routers``.

    ``max_page_size`` is the ``MAX_PAGE_SIZE`` setting, stated in the OpenAPI document.
    """
    app = GatewayApi(
        max_page_size=max_page_size,
        title=API_TITLE,
        description=API_DESCRIPTION + AUTH_DESCRIPTION + problem_catalogue(),
        version=API_VERSION,
        openapi_tags=OPENAPI_TAGS,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
        # One layer: the server span, the access log (which sees every answer, the 500s and
        # 413s included), the last-resort 500 and the body size limit.
        middleware=[Middleware(GatewayMiddleware, max_body_bytes=max_request_body_bytes)],
        # The gateway traces its requests itself (GatewayMiddleware): FastAPI's own telemetry
        # would add a span per dependency and serialisation to every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    problems.install_problem_handlers(app)
    install_rpc_error_handler(app)
    install_docs(app)
    for router in (health.router, auth.router, pos.router, clients.router, *routers):
        app.include_router(router)  # without a prefix: see gateway.http.routing
    return app
