"""Local stand-ins for the two kinds of shelf-label station, for tests, demos and benchmarks.

``openepaperlink.OpenEPaperLinkSimulator`` speaks the OpenEPaperLink access point's HTTP
interface; ``batch.BatchSimulator`` speaks the vendor-neutral batch ESL server API. Both keep
their labels in memory and are driven from the test that owns them:

* ``tick()`` is one radio check-in of every online label: pending content is delivered.
  Tests call it explicitly, so nothing depends on sleeping; ``checkin_interval`` adds an
  automatic check-in loop for demos and benchmarks. The OpenEPaperLink simulator follows
  the AP firmware's timing on a ``ManualClock`` instead: ``advance(seconds)`` runs the
  drawing (5 minutes before a tag's check-in) and the check-ins (every 10 minutes by
  default) that fall due, in order.
* ``mode`` breaks the whole station (see :class:`Mode`), ``latency`` slows every request,
  ``set_online`` takes one label off the air.
* ``displayed(label_id)`` is what a label shows now; ``requests`` counts served requests.

``async with running(simulator) as base_url:`` serves one on a free port from a background
thread with its own event loop, so a simulator that hangs never blocks the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

__all__ = ["Displayed", "Mode", "StationSimulator", "running"]

# How long a DOWN station keeps a request hanging at most; far beyond any client timeout.
_HANG_LIMIT_SECONDS = 600.0


class Mode(StrEnum):
    """How the whole simulated station behaves."""

    NORMAL = "normal"
    FAILING = "failing"  # every request answers HTTP 500
    GARBAGE = "garbage"  # HTTP 200 with an HTML page instead of the API answer
    WRONG_SHAPE = "wrong_shape"  # HTTP 200 with valid JSON of the wrong shape
    DOWN = "down"  # requests hang unanswered (until the mode changes or the server stops)


@dataclass(frozen=True)
class Displayed:
    """What one label shows: the content digest and the price to pay."""

    digest: str
    price_fen: int


class StationSimulator:
    """State and fault controls shared by both simulators; subclasses add the API routes.

    Every piece of state is guarded by ``_lock`` because the test thread (``tick``,
    ``set_online``...) and the server thread (request handlers) both touch it.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        checkin_interval: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mode = Mode.NORMAL
        self.latency = latency
        self.checkin_interval = checkin_interval
        self.requests: Counter[str] = Counter()
        self._clock = clock
        self._lock = threading.RLock()
        self._closing = threading.Event()

    @property
    def requests_served(self) -> int:
        """All requests that reached the simulator, whatever the mode."""
        with self._lock:
            return sum(self.requests.values())

    def tick(self) -> int:
        """One check-in of every online label; returns how many updates were delivered."""
        raise NotImplementedError

    def build_app(self) -> Starlette:
        """The ASGI application serving this simulator."""
        raise NotImplementedError

    def _lifespan(self) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
        """Runs the automatic check-in loop while the server is up, when one is configured."""

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            task = asyncio.create_task(self._checkin_loop()) if self.checkin_interval else None
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

        return lifespan

    async def _checkin_loop(self) -> None:
        while self.checkin_interval:
            await asyncio.sleep(self.checkin_interval)
            self.tick()

    async def _gate(self, route: str) -> Response | None:
        """Count the request, apply latency and the station mode.

        Returns the response a broken station gives, or ``None`` to serve normally.
        """
        with self._lock:
            self.requests[route] += 1
        # Both waits end early when the server stops, so a slow station never delays shutdown.
        # The flags are flipped from the test's thread: an asyncio.Event (one loop) won't do.
        if self.latency > 0:
            ready = time.monotonic() + self.latency
            while not self._closing.is_set() and (left := ready - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(min(left, 0.02))
        if self.mode is Mode.DOWN:
            deadline = time.monotonic() + _HANG_LIMIT_SECONDS
            while self.mode is Mode.DOWN and not self._closing.is_set() and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        mode = self.mode
        if mode is Mode.FAILING:
            return PlainTextResponse("simulated station failure", status_code=500)
        if mode is Mode.GARBAGE:
            return Response("<html><body><h1>It works!</h1></body></html>", media_type="text/html")
        if mode is Mode.WRONG_SHAPE:
            return JSONResponse({"status": "ok", "items": "not what you asked for"})
        if mode is Mode.DOWN:  # the server is stopping
            return PlainTextResponse("shutting down", status_code=503)
        return None


class _Handler(Protocol):
    def __call__(self, request: Request) -> Awaitable[Response]: ...


def gated(simulator: StationSimulator, route: str, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a route handler with the simulator's counting, latency and fault modes."""

    async def endpoint(request: Request) -> Response:
        broken = await simulator._gate(route)
        return broken if broken is not None else await handler(request)

    return endpoint


def _free_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def running(simulator: StationSimulator, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``simulator`` from a background thread; yields its base URL (``http://host:port``).

    The socket is bound before the server starts, so the port is known and free; the thread
    has its own event loop, so a hanging or slow simulator cannot stall the caller's loop.
    """
    sock = _free_socket(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        simulator.build_app(),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        backlog=2048,
    )
    server = uvicorn.Server(config)
    simulator._closing.clear()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"esl-sim-{bound_port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the shelf-label simulator did not start")
            await asyncio.sleep(0.01)
        yield f"http://{host}:{bound_port}"
    finally:
        simulator._closing.set()
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)
        sock.close()
