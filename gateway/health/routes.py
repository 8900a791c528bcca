"""Liveness and readiness, for Kubernetes probes and load balancers."""

from __future__ import annotations

from fastapi import Request

from gateway.health.schemas import Alive, NotReadyProblem, Ready
from gateway.http import problems
from gateway.http.problems import ProblemResponse
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter

router = ContextRouter(tags=["operations"])


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
