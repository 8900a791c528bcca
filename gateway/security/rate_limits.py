"""Per-client rate limits: an in-process token bucket per client id.

The buckets live in each gateway pod's memory, so with N pods a client may get up to N
times the configured rate; the limit protects the services from one runaway client, it
is not a billing quota. Buckets of idle clients are dropped to bound memory.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """``rate`` tokens per second per client, at most ``burst`` saved up."""

    MAX_TRACKED_CLIENTS = 100_000

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, client_id: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds until a token is available."""
        now = self._clock()
        tokens, updated = self._buckets.pop(client_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - updated) * self._rate)
        if tokens >= 1:
            self._buckets[client_id] = (tokens - 1, now)
            retry_after = 0.0
        else:
            self._buckets[client_id] = (tokens, now)
            retry_after = (1 - tokens) / self._rate
        while len(self._buckets) > self.MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        return retry_after


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
