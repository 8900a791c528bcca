"""The health HTTP models: what a request carries and what an answer holds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gateway.http.problems import Problem


class Alive(BaseModel):
    status: Literal["alive"] = "alive"


_BACKENDS_DESCRIPTION = (
    "each backend service and its state: 'ok' or a short reason ('unavailable' when none of its "
    "servers is connected and serving). Reported only: a backend that is not 'ok' never makes the "
    "gateway unready; its own routes answer 503 with Retry-After while the others keep working"
)


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, str] = Field(
        description="each dependency of the gateway itself and its state",
        examples=[{"postgres": "ok", "nats": "ok"}],
    )
    backends: dict[str, str] = Field(
        description=_BACKENDS_DESCRIPTION, examples=[{"inventory": "ok", "member": "unavailable", "pricing": "ok"}]
    )


class NotReadyProblem(Problem):
    """The ``not-ready`` problem: which of the gateway's own dependencies fail, and how."""

    checks: dict[str, str] = Field(
        description="each dependency of the gateway itself and its state: 'ok' or a short reason",
        examples=[{"postgres": "ok", "nats": "no answer"}],
    )
    failing: list[str] = Field(description="the dependencies that are not 'ok'", examples=[["nats"]])
    backends: dict[str, str] = Field(description=_BACKENDS_DESCRIPTION, examples=[{"inventory": "ok"}])
