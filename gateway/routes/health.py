"""Liveness and readiness, for Kubernetes probes and load balancers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gateway.http import problems
from gateway.http.problems import Problem, ProblemResponse
from gateway.http.resources import Resources

router = APIRouter(tags=["operations"])


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


@router.get("/healthz", summary="Liveness: the process serves HTTP")
async def healthz() -> Alive:
    """Answers 200 as long as the process can serve HTTP at all.

    Consults no dependency on purpose: an outage of PostgreSQL, NATS or a service must not
    get healthy gateways restarted. Use ``/readyz`` to know whether requests can succeed.
    """
    return Alive()


@router.get(
    "/readyz",
    summary="Readiness: the gateway's own dependencies answer",
    response_model=Ready,
    responses=problems.problem_responses(503, model=NotReadyProblem),
)
async def readyz(request: Request, resources: Resources) -> Ready | ProblemResponse:
    """Answers 200 when the gateway's own dependencies answer a round trip: its PostgreSQL
    (``SELECT 1``) and NATS (a JetStream request; a connected but frozen server fails it);
    otherwise 503 with the ``not-ready`` problem naming each failing dependency.

    Each configured backend's gRPC health is reported beside them under ``backends`` but
    never fails readiness: one service's outage must not take the gateway, and with it the
    routes of every healthy service, out of rotation. A backend that is not serving makes
    only its own routes answer 503 (with ``Retry-After``).

    The checks run concurrently, each bounded by ``READINESS_TIMEOUT_SECONDS``.
    """
    report = await resources.readiness.assess()
    if report.ready:
        return Ready(checks=report.checks, backends=report.backends)
    return problems.problem_response(
        problems.NOT_READY,
        "not ready: " + ", ".join(f"{name} ({report.checks[name]})" for name in report.failing),
        instance=problems.request_instance(request),
        extensions={"checks": report.checks, "failing": report.failing, "backends": report.backends},
    )
