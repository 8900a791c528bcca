"""Readiness: whether this gateway can serve requests right now, and if not, what is missing.

Each dependency has a check, an awaitable that raises :class:`NotReady` (or anything else)
when the dependency cannot be used. All checks run concurrently, each within a timeout, so
one hanging dependency costs at most that timeout and never hides the state of the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger("gateway.readiness")

OK = "ok"

ReadinessCheck = Callable[[], Awaitable[None]]


class NotReady(Exception):
    """A dependency answered, but not in a usable way; the message says how (a short token)."""


@dataclass(frozen=True)
class ReadinessReport:
    """Each dependency's state: ``"ok"`` or a short reason it is not usable."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(state == OK for state in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [name for name, state in self.checks.items() if state != OK]


class Readiness:
    """Runs the readiness checks and logs each change of what is failing."""

    def __init__(self, checks: Mapping[str, ReadinessCheck], *, timeout: float) -> None:
        self.checks = dict(checks)
        self.timeout = timeout
        self._last_failing: list[str] | None = None

    async def assess(self) -> ReadinessReport:
        names = list(self.checks)
        states = await asyncio.gather(*(self._run(name) for name in names))
        report = ReadinessReport(dict(zip(names, states, strict=True)))
        if report.failing != self._last_failing:
            if report.ready:
                log.info("ready", extra={"checks": report.checks})
            else:
                log.warning("not ready", extra={"checks": report.checks, "failing": report.failing})
            self._last_failing = report.failing
        return report

    async def _run(self, name: str) -> str:
        try:
            await asyncio.wait_for(self.checks[name](), timeout=self.timeout)
        except TimeoutError:
            return f"timed out after {self.timeout:g}s"
        except NotReady as exc:
            return str(exc) or "not ready"
        except Exception as exc:
            # The reason goes to the log only: /readyz is reachable from outside.
            log.warning("readiness check failed", extra={"check": name, "error": f"{type(exc).__name__}: {exc}"})
            return "unreachable"
        return OK
