"""A NATS connection that start-up never waits on forever.

nats-py's ``connect`` with unlimited reconnects keeps retrying until a server answers, so it
runs in a background task: a process serves at once, its readiness reports NATS as not
connected until it is, and once connected nats-py reconnects by itself after any outage.

A server that hangs without closing the connection (a frozen VM, a partition) is noticed by
pings: every ``ping_interval`` seconds, and after ``max_outstanding_pings`` unanswered the
connection is dropped and the client moves to another server of the cluster. nats-py's
default (2 minutes × 2) would stall every publish of the process for up to 4 minutes; 5 s ×
2 notices it within 10–15 s, for one tiny frame per connection every 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from nats.aio.client import Client

log = logging.getLogger("servicekit.nats")


class NatsConnection:
    """One NATS client connected in the background; ``client`` is usable once connected."""

    def __init__(
        self,
        servers: str,
        *,
        name: str,
        connect_timeout: float = 2.0,
        reconnect_wait: float = 1.0,
        retry_backoff_max: float = 10.0,
        ping_interval: float = 5.0,
        max_outstanding_pings: int = 2,
    ) -> None:
        self._servers = [server.strip() for server in servers.split(",") if server.strip()]
        self._name = name
        self._connect_timeout = connect_timeout
        self._reconnect_wait = reconnect_wait
        self._retry_backoff_max = retry_backoff_max
        self._ping_interval = ping_interval
        self._max_outstanding_pings = max_outstanding_pings
        self.client: Any = Client()
        self._connecting: asyncio.Task[None] | None = None
        self._last_error: str | None = None
        self._closing = False

    @property
    def is_connected(self) -> bool:
        return bool(self.client.is_connected)

    def start(self) -> None:
        """Begin connecting; returns immediately."""
        if self._connecting is None:
            self._connecting = asyncio.create_task(self._connect(), name=f"{self._name}-nats-connect")

    async def wait_connected(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait is the point
        """Wait up to ``timeout`` seconds for the first connection; whether it is connected."""
        if self._connecting is not None and timeout > 0:
            await asyncio.wait({self._connecting}, timeout=timeout)
        return self.is_connected

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Stop connecting, flush what is pending and close."""
        self._closing = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if not self.client.is_closed:
            try:
                await asyncio.wait_for(self.client.close(), timeout=timeout)
            except Exception as exc:
                log.warning("closing the NATS connection failed", extra={"error": str(exc)})

    async def _connect(self) -> None:
        backoff = self._reconnect_wait
        while True:
            try:
                # With max_reconnect_attempts=-1 this retries until a server answers, and
                # after that nats-py reconnects on its own for as long as we live.
                await self.client.connect(
                    servers=self._servers,
                    name=self._name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    connect_timeout=self._connect_timeout,
                    reconnect_time_wait=self._reconnect_wait,
                    ping_interval=self._ping_interval,
                    max_outstanding_pings=self._max_outstanding_pings,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Not a network error nats-py retries by itself: start over with a fresh client.
                log.error("connecting to NATS failed; retrying", extra={"error": f"{type(exc).__name__}: {exc}"})
                with contextlib.suppress(Exception):
                    await self.client.close()
                self.client = Client()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_backoff_max)
                continue
            self._last_error = None
            url = self.client.connected_url  # never log its user:password part
            log.info("connected to NATS", extra={"nats_server": f"{url.hostname}:{url.port}" if url else None})
            return

    async def _on_error(self, error: Exception) -> None:
        # While NATS is down the same error repeats every retry; log each new one once.
        message = f"{type(error).__name__}: {error}"
        if message != self._last_error:
            self._last_error = message
            log.warning("NATS connection error", extra={"error": message})

    async def _on_disconnected(self) -> None:
        if not self._closing and self._connecting is not None and self._connecting.done():
            log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        self._last_error = None
        log.info("reconnected to NATS")
