"""The real gateway application for tests: its own migrated database, real NATS, registered clients."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from gateway.bootstrap import build_app
from gateway.domain.clients import ClientKind, ClientRegistration, StaffRole, hash_client_secret
from gateway.domain.scopes import default_scopes
from gateway.http.resources import GatewayResources
from gateway.migrate import GATEWAY_VERSIONS
from gateway.settings import GatewaySettings
from servicekit.settings import load_settings
from tests.conftest import Infra, create_database_from, service_template

PROBLEM = "application/problem+json"
TYPE = "https://problems.retail-platform.dev/"
# The cheapest scrypt the hash format accepts: tests register many clients.
CHEAP_SCRYPT_N = 2**10


@pytest.fixture(scope="session")
def gateway_schema(infra: Infra, kit_template: str) -> str:
    """A database migrated with the gateway's schema, copied for each test."""
    return service_template(infra, kit_template, GATEWAY_VERSIONS)


@pytest.fixture
def gateway_settings(infra: Infra, gateway_schema: str, nats_url: str) -> Callable[..., GatewaySettings]:
    database_url = create_database_from(infra, gateway_schema)

    def settings(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {"app_env": "test", "database_url": database_url, "nats_url": nats_url}
        return load_settings(GatewaySettings, **(values | overrides))

    return settings


@dataclass
class RunningGateway:
    http: httpx.AsyncClient
    app: FastAPI

    @property
    def resources(self) -> GatewayResources:
        resources = self.app.state.resources
        assert isinstance(resources, GatewayResources)
        return resources

    async def register(
        self,
        kind: ClientKind,
        *,
        store_id: str | None = None,
        supplier_id: str | None = None,
        staff_role: StaffRole | None = None,
        scopes: frozenset[str] | None = None,
    ) -> tuple[str, str]:
        """A new client with its kind's default scopes; returns (client_id, secret)."""
        client_id = f"{kind.value}-{uuid.uuid4().hex[:10]}"
        secret = f"secret-{uuid.uuid4().hex}"
        registration = ClientRegistration(
            client_id=client_id,
            kind=kind,
            display_name=f"test {kind.value}",
            secret_hash=hash_client_secret(secret, n=CHEAP_SCRYPT_N),
            scopes=default_scopes(kind, staff_role) if scopes is None else scopes,
            store_id=store_id,
            terminal_id=client_id if kind is ClientKind.POS_TERMINAL else None,
            supplier_id=supplier_id,
            staff_role=staff_role,
        )
        assert await self.resources.clients.register(registration)
        return client_id, secret

    async def token(self, client_id: str, secret: str) -> str:
        response = await self.http.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def client_headers(self, kind: ClientKind, **bindings: Any) -> dict[str, str]:
        """Authorization headers of a newly registered client."""
        client_id, secret = await self.register(kind, **bindings)
        return {"Authorization": f"Bearer {await self.token(client_id, secret)}"}


@asynccontextmanager
async def running_gateway(
    settings: GatewaySettings, routers: Sequence[APIRouter] = (), *, wait_for_backends: bool = True
) -> AsyncIterator[RunningGateway]:
    """The gateway started (lifespan) and reachable in-process over ASGI, once every backend it
    calls reports serving (a service still starting gets no calls: its routes answer 503);
    ``wait_for_backends=False`` for a test whose backend is down on purpose."""
    app = build_app(settings, routers=routers)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30) as http,
    ):
        if wait_for_backends:
            await backends_serving(http)
        yield RunningGateway(http, app)


async def backends_serving(http: httpx.AsyncClient, within: float = 30.0) -> None:
    """Return once ``/readyz`` reports every backend ``ok``; fail naming them after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        backends = (await http.get("/readyz")).json().get("backends", {})
        if all(state == "ok" for state in backends.values()):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"backends not serving within {within:g}s: {backends}")
        await asyncio.sleep(0.05)


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == TYPE + slug, body
    assert body["status"] == status
    return body


def idempotency_key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}
