"""Liveness and readiness, for Kubernetes probes and load balancers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gateway import problems
from gateway.problems import Problem, ProblemResponse
from gateway.resources import Resources

router = APIRouter(tags=["operations"])


class Alive(BaseModel):
    status: Literal["alive"] = "alive"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, str] = Field(
        description="each dependency and its state",
        examples=[{"postgres": "ok", "nats": "ok", "backend:inventory": "ok"}],
    )


class NotReadyProblem(Problem):
    """The ``not-ready`` problem: which dependencies fail, and how."""

    checks: dict[str, str] = Field(
        description="each dependency and its state: 'ok' or a short reason",
        examples=[{"postgres": "ok", "nats": "not connected", "backend:inventory": "unavailable"}],
    )
    failing: list[str] = Field(description="the dependencies that are not 'ok'", examples=[["nats"]])


@router.get("/healthz", summary="Liveness: the process serves HTTP")
async def healthz() -> Alive:
    """Answers 200 as long as the process can serve HTTP at all.

    Consults no dependency on purpose: an outage of PostgreSQL, NATS or a service must not
    get healthy gateways restarted. Use ``/readyz`` to know whether requests can succeed.
    """
    return Alive()


@router.get(
    "/readyz",
    summary="Readiness: every dependency answers",
    response_model=Ready,
    responses=problems.problem_responses(503, model=NotReadyProblem),
)
async def readyz(request: Request, resources: Resources) -> Ready | ProblemResponse:
    """Answers 200 when the gateway's PostgreSQL answers ``SELECT 1``, NATS is connected and
    every configured backend's gRPC health service reports ``SERVING``; otherwise 503 with
    the ``not-ready`` problem naming each failing dependency.

    The checks run concurrently, each bounded by ``READINESS_TIMEOUT_SECONDS``.
    """
    report = await resources.readiness.assess()
    if report.ready:
        return Ready(checks=report.checks)
    return problems.problem_response(
        problems.NOT_READY,
        "not ready: " + ", ".join(f"{name} ({report.checks[name]})" for name in report.failing),
        instance=problems.request_instance(request),
        extensions={"checks": report.checks, "failing": report.failing},
    )
