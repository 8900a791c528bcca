"""Routers that let a request pass by without trying their routes still route every request right.

The whole gateway (every context's router) is asked for each of its routes, with a path made
from the route's template and the route's method: routing must pick exactly that route.
Paths that no route has, and a known path with another method, keep their 404 and 405; and a
router that holds a nested router, whose paths it cannot read, searches as FastAPI does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match

from gateway import alerts, auth, clients, health, inventory, marketing, members, pos, pricing, supply
from gateway.app import create_app
from gateway.http.routing import ContextRouter, literal_start

SERVICE_ROUTERS = [inventory.router, members.router, pricing.router, marketing.router, supply.router, alerts.router]
CONTEXT_MODULES = [health, auth, pos, clients, inventory, members, pricing, marketing, supply, alerts]


def api_routes(router: APIRouter) -> Iterator[APIRoute]:
    """Every route of ``router`` and of the routers it includes."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            yield route
        nested = getattr(route, "original_router", None)
        if isinstance(nested, APIRouter):
            yield from api_routes(nested)


def concrete(path: str) -> str:
    """A request path for a template: each parameter filled with a plausible value."""
    return re.sub(r"\{[^}]+\}", "X0001", path)


async def route_of(app: FastAPI, method: str, path: str) -> tuple[int, Any]:
    """The status the app answers (no backend is configured: routes answer 503 or refuse the
    request before any call) and the route routing picked for it."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gateway.test"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0], scope.get("route")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(max_request_body_bytes=4096, routers=SERVICE_ROUTERS)


def every_route() -> list[tuple[str, APIRoute]]:
    routes = [route for module in CONTEXT_MODULES for route in api_routes(module.router)]
    return [(method, route) for route in routes for method in sorted(route.methods or ())]


def test_every_context_router_reads_its_paths() -> None:
    leaves = [route_router for module in CONTEXT_MODULES for route_router in leaf_routers(module.router)]
    assert len(leaves) >= 16
    for router in leaves:
        assert isinstance(router, ContextRouter), router
        assert router._literal_starts(), router  # plain routes only: the shortcut applies


def leaf_routers(router: APIRouter) -> Iterator[APIRouter]:
    nested = [route.original_router for route in router.routes if hasattr(route, "original_router")]
    if not nested:
        yield router
    for child in nested:
        yield from leaf_routers(child)


@pytest.mark.parametrize(("method", "route"), every_route(), ids=lambda value: str(getattr(value, "path", value)))
async def test_every_route_is_found_for_its_own_path_and_method(app: FastAPI, method: str, route: APIRoute) -> None:
    status, picked = await route_of(app, method, concrete(route.path))

    assert status not in (404, 405), (method, route.path, status)
    # The same template: two templates may share a concrete path (a literal beside a parameter),
    # and then the first declared wins, as it did before.
    assert isinstance(picked, APIRoute)
    assert picked.path == route.path or (
        re.fullmatch(picked.path_regex, concrete(route.path)) and method in (picked.methods or ())
    ), (method, route.path, picked.path)


async def test_unknown_paths_are_404_and_known_paths_with_another_method_405(app: FastAPI) -> None:
    assert (await route_of(app, "GET", "/v1/nothing-here"))[0] == 404
    assert (await route_of(app, "GET", "/v2/members/resolve"))[0] == 404
    assert (await route_of(app, "GET", "/v1"))[0] == 404
    assert (await route_of(app, "DELETE", "/v1/pos/sales/batch"))[0] == 405
    assert (await route_of(app, "PUT", "/v1/reservations"))[0] == 405


def test_a_router_passes_by_at_once_only_when_no_path_of_it_can_start_the_request() -> None:
    router = ContextRouter(prefix="/v1")

    @router.get("/members/{member_id}")
    async def member(member_id: str) -> None: ...

    @router.get("/merges/{merge_id}")
    async def merge(merge_id: str) -> None: ...

    assert literal_start("/v1/members/{member_id}") == "/v1/members/"
    assert set(router._literal_starts() or ()) == {"/v1/members/", "/v1/merges/"}
    # A route added later is read too.

    @router.get("/points")
    async def points() -> None: ...

    assert "/v1/points" in (router._literal_starts() or ())
    scope = {"type": "http", "path": "/v1/stock/X", "root_path": "", "method": "GET"}
    assert router.matches(scope) == (Match.NONE, {})


def test_a_router_holding_a_nested_router_searches_as_fastapi_does() -> None:
    outer, inner = ContextRouter(), APIRouter(prefix="/v1")

    @inner.get("/stock/{sku}")
    async def stock(sku: str) -> None: ...

    outer.include_router(inner)

    assert outer._literal_starts() is None
