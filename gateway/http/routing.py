"""The gateway's routers: a request passes by every router none of whose paths it can match.

FastAPI finds a request's route by trying every route before it, one after the other, each
try costing a few microseconds of scope bookkeeping besides the path's regular expression.
With the gateway's hundred-odd routes, a request near the end paid more for finding its
route than for everything else the framework does: answering a request refused before any
backend call took 539 us for a path no route has, 338 us for ``GET /v1/alerts`` and 180 us
for an identity resolution (the 28th path), against about 100 us once routers are passed by.

Each context's router is a :class:`ContextRouter`: it knows the literal start of each of its
paths (``/v1/members/`` of ``/v1/members/{member_id}``) and tells FastAPI "no match" at once
for a request that starts with none of them, which no route of it could have matched. A
request's route is then looked for among the routes of the one or two routers that can hold
it. The answer is what it was: same route, same 404 and 405.

Declare a router's prefix on the router itself (``ContextRouter(prefix="/v1")``), as every
context does, and include it without one: the literal starts are read from its routes'
paths, which an ``include_router(..., prefix=...)`` would not show. A router that holds
anything but plain routes (a nested router, a mount) answers by FastAPI's own search.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.routing import Match, Route
from starlette.types import Scope

__all__ = ["ContextRouter", "literal_start"]


def literal_start(path: str) -> str:
    """The part of a path template before its first parameter: all a matching path must start with."""
    return path.split("{", 1)[0]


class ContextRouter(APIRouter):
    """An :class:`APIRouter` that a request for none of its paths passes by without trying them."""

    _starts: tuple[str, ...] | None = None
    _starts_read_from = -1  # how many routes the router had when _starts was read

    def _literal_starts(self) -> tuple[str, ...] | None:
        """The literal starts of this router's paths, read again when routes were added; ``None``
        when it holds a route whose paths cannot be read so (a nested router, a mount)."""
        routes = self.routes
        if self._starts_read_from != len(routes):
            plain = [route for route in routes if isinstance(route, Route)]
            self._starts = tuple({literal_start(route.path) for route in plain}) if len(plain) == len(routes) else None
            self._starts_read_from = len(routes)
        return self._starts

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and not scope.get("root_path"):
            starts = self._literal_starts()
            if starts is not None and not scope["path"].startswith(starts):
                return Match.NONE, {}
        return super().matches(scope)
