"""The composition root: the one place the gateway's real dependencies are wired together.

Nothing here connects at import time. :func:`build_app` returns an application whose
lifespan opens the database engine, the NATS connection and the gRPC channels when the
server starts and closes them when it stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import alerts, inventory, marketing, members, pricing, supply
from gateway.adapters.backends import BackendChannels, check_backend_health
from gateway.adapters.client_registry import ClientRegistry
from gateway.adapters.sales_journal import SalesJournal
from gateway.app import create_app
from gateway.domain.tokens import TokenSigner
from gateway.http.resources import GatewayResources
from gateway.idempotency.records import IdempotencyRecords, open_pool
from gateway.operations.maintenance import run_maintenance
from gateway.operations.readiness import Readiness, ReadinessCheck
from gateway.security.authentication import Authenticator
from gateway.security.rate_limits import RateLimiter
from gateway.settings import GatewaySettings
from servicekit.db import create_engine
from servicekit.nats_connection import NatsConnection
from servicekit.readiness import nats_answers, postgres_answers

log = logging.getLogger("gateway")

SERVICE_NAME = "gateway"


# Routes that front a backend service, by the backend's name in GATEWAY_BACKENDS.
SERVICE_ROUTERS: dict[str, APIRouter] = {
    "inventory": inventory.router,
    "member": members.router,
    "pricing": pricing.router,
    "marketing": marketing.router,
    "supply": supply.router,
    "alerts": alerts.router,
}


def service_routers(settings: GatewaySettings) -> list[APIRouter]:
    """Only the routes whose backend is configured: the API never advertises what it cannot serve."""
    return [router for name, router in SERVICE_ROUTERS.items() if name in settings.gateway_backends]


def build_app(settings: GatewaySettings, *, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The gateway application (traced by its middleware), opening its connections when it starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings) as resources:
            app.state.resources = resources
            stop = asyncio.Event()
            housekeeping = asyncio.create_task(run_maintenance(resources.engine, stop), name="gateway-maintenance")
            try:
                yield
            finally:
                stop.set()
                await housekeeping
                del app.state.resources

    return create_app(
        lifespan=lifespan,
        max_request_body_bytes=settings.max_request_body_bytes,
        max_page_size=settings.max_page_size,
        routers=[*service_routers(settings), *routers],
    )


@asynccontextmanager
async def open_resources(settings: GatewaySettings) -> AsyncIterator[GatewayResources]:
    """Open the engine, NATS and the backend channels; close them all on the way out."""
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        application_name=SERVICE_NAME,
    )
    nats = NatsConnection(settings.nats_url, name=SERVICE_NAME)
    backends = BackendChannels(settings.backends, deadline_seconds=settings.grpc_deadline_seconds)
    clients = ClientRegistry(engine)
    # The per-request Idempotency-Key records go through their own lean asyncpg pool.
    idempotency_pool = await open_pool(
        settings.database_url, max_size=settings.db_pool_size, application_name=SERVICE_NAME
    )
    sales_journal = SalesJournal(engine, nats, replicas=settings.jetstream_replicas)
    try:
        nats.start()
        if not await nats.wait_connected(settings.nats_startup_wait_seconds):
            log.warning("NATS is not reachable yet; serving anyway while it keeps trying, /readyz reports it")
        else:
            try:
                await sales_journal.provision()
            except Exception as exc:  # declared again before the first publication
                log.warning("declaring the SALES stream failed; retried on first use", extra={"error": repr(exc)})
        yield GatewayResources(
            settings=settings,
            engine=engine,
            nats=nats,
            backends=backends,
            clients=clients,
            readiness=Readiness(
                readiness_checks(engine, nats, timeout=settings.readiness_timeout_seconds),
                backends=backend_checks(backends, timeout=settings.readiness_timeout_seconds),
                timeout=settings.readiness_timeout_seconds,
            ),
            authenticator=Authenticator(
                clients,
                TokenSigner(settings.signing_keys),
                token_ttl_seconds=settings.token_ttl_seconds,
                cache_seconds=settings.client_cache_seconds,
            ),
            rate_limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            # A claim older than four backend deadlines belongs to a request whose gateway died.
            idempotency=IdempotencyRecords(
                idempotency_pool, lease_seconds=max(30.0, 4 * settings.grpc_deadline_seconds)
            ),
            sales_journal=sales_journal,
        )
    finally:
        # In-flight requests were drained by the server before the lifespan ends.
        await backends.close(grace=1.0)
        await nats.close()
        await idempotency_pool.close()
        await engine.dispose()


def readiness_checks(engine: AsyncEngine, nats: NatsConnection, *, timeout: float) -> dict[str, ReadinessCheck]:
    """What the gateway itself needs, each proven by a round trip: ``postgres`` (``SELECT 1``)
    and ``nats`` (a JetStream request: a frozen server keeps its connection open but answers nothing)."""

    async def postgres() -> None:
        await postgres_answers(engine)

    async def nats_round_trip() -> None:
        await nats_answers(nats, timeout)

    return {"postgres": postgres, "nats": nats_round_trip}


def backend_checks(backends: BackendChannels, *, timeout: float) -> dict[str, ReadinessCheck]:
    """One health question per backend, reported by ``/readyz`` beside the gateway's own checks."""

    def backend(name: str) -> ReadinessCheck:
        async def check() -> None:
            await check_backend_health(backends[name], timeout)

        return check

    return {name: backend(name) for name in backends}
