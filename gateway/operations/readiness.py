"""Readiness: whether this gateway can serve requests right now, and how each backend is doing.

Two kinds of check, each an awaitable that raises :class:`NotReady` (or anything else) when
what it checks cannot be used:

- the gateway's own dependencies (its PostgreSQL, NATS): without them no request succeeds,
  so they decide whether the gateway is ready;
- each backend service: reported beside them and never failing the gateway, because one
  service's outage must not take every gateway pod out of rotation and with it the routes
  of the healthy services. A backend's own routes answer 503 while it is unavailable.

All checks run concurrently, each within a hard timeout (:func:`servicekit.readiness.within`),
so one hanging dependency costs at most that timeout and never hides the state of the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from servicekit.readiness import NotReady, within

__all__ = ["OK", "NotReady", "Readiness", "ReadinessCheck", "ReadinessReport"]

log = logging.getLogger("gateway.readiness")

OK = "ok"

ReadinessCheck = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ReadinessReport:
    """Each dependency's and each backend's state: ``"ok"`` or a short reason it is not usable."""

    checks: dict[str, str]
    backends: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Whether the gateway's own dependencies are usable; backends do not count."""
        return all(state == OK for state in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [name for name, state in self.checks.items() if state != OK]


class Readiness:
    """Runs the readiness checks and logs each change of what is failing."""

    def __init__(
        self,
        checks: Mapping[str, ReadinessCheck],
        *,
        timeout: float,
        backends: Mapping[str, ReadinessCheck] | None = None,
    ) -> None:
        self.checks = dict(checks)
        self.backends = dict(backends or {})
        self.timeout = timeout
        self._last_failing: list[str] | None = None
        self._last_backends: dict[str, str] = {}

    async def assess(self) -> ReadinessReport:
        names = list(self.checks)
        backend_names = list(self.backends)
        states = await asyncio.gather(
            *(self._run(name, self.checks[name]) for name in names),
            *(self._run(f"backend {name}", self.backends[name]) for name in backend_names),
        )
        report = ReadinessReport(
            dict(zip(names, states[: len(names)], strict=True)),
            dict(zip(backend_names, states[len(names) :], strict=True)),
        )
        if report.failing != self._last_failing:
            if report.ready:
                log.info("ready", extra={"checks": report.checks})
            else:
                log.warning("not ready", extra={"checks": report.checks, "failing": report.failing})
            self._last_failing = report.failing
        for name, state in report.backends.items():
            if self._last_backends.get(name, OK) != state:
                level = logging.INFO if state == OK else logging.WARNING
                log.log(level, "backend state changed", extra={"backend": name, "state": state})
        self._last_backends = report.backends
        return report

    async def _run(self, name: str, check: ReadinessCheck) -> str:
        try:
            await within(check, self.timeout)
        except TimeoutError:
            return f"timed out after {self.timeout:g}s"
        except NotReady as exc:
            return str(exc) or "not ready"
        except Exception as exc:
            # The reason goes to the log only: /readyz is reachable from outside.
            log.warning("readiness check failed", extra={"check": name, "error": f"{type(exc).__name__}: {exc}"})
            return "unreachable"
        return OK
