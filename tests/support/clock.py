"""A clock a test moves by hand, so that expiry, schedules and windows need no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class HandClock:
    """Starts at ``start`` (by default real time, to the second) and moves only by :meth:`advance`."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start if start is not None else datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
