"""What a running gateway holds on to, and how route code reaches it.

Built by :mod:`gateway.bootstrap` when the app starts and closed when it stops; a route
declares ``resources: Resources`` to get it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import problems
from gateway.adapters.backends import BackendChannels
from gateway.adapters.client_registry import ClientRegistry
from gateway.adapters.idempotency_records import IdempotencyRecords
from gateway.adapters.sales_journal import SalesJournal
from gateway.authentication import Authenticator
from gateway.rate_limits import RateLimiter
from gateway.readiness import Readiness
from gateway.settings import GatewaySettings
from servicekit.nats_connection import NatsConnection


@dataclass(frozen=True)
class GatewayResources:
    """The gateway's connections and the adapters built on them."""

    settings: GatewaySettings
    engine: AsyncEngine
    nats: NatsConnection
    backends: BackendChannels
    clients: ClientRegistry
    readiness: Readiness
    authenticator: Authenticator
    rate_limiter: RateLimiter
    idempotency: IdempotencyRecords
    sales_journal: SalesJournal

    @property
    def grpc_deadline(self) -> float:
        """Seconds every backend call may take (pass as ``timeout=``)."""
        return self.settings.grpc_deadline_seconds


def gateway_resources(request: Request) -> GatewayResources:
    resources = getattr(request.app.state, "resources", None)
    if not isinstance(resources, GatewayResources):
        raise problems.ProblemError(problems.NOT_READY, "the gateway is starting or stopping; retry shortly")
    return resources


Resources = Annotated[GatewayResources, Depends(gateway_resources)]
