"""One backend service down behind the gateway: the gateway stays in rotation, only that service's
routes answer 503 (with Retry-After), and the other services' routes keep working.

Real inventory and member services (their own bootstraps, databases and NATS), the real gateway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import httpx
import pytest

from gateway.domain.clients import ClientKind, StaffRole
from gateway.settings import GatewaySettings
from servicekit.messaging import StreamSpec, ensure_stream
from services.inventory.bootstrap import InventoryApp
from services.inventory.bootstrap import build as build_inventory
from services.inventory.settings import InventorySettings
from services.member.bootstrap import MemberApp
from services.member.settings import MemberSettings
from tests.integration.inventory.conftest import inventory_template, inventory_url, stock
from tests.integration.member.conftest import (
    clock,
    member_settings,
    member_template,
    member_url,
    start_member_app,
)
from tests.support.clock import HandClock
from tests.support.gateway import RunningGateway, assert_problem, gateway_schema, gateway_settings, running_gateway
from tests.support.messaging import jetstream

__all__ = [
    "clock",
    "gateway_schema",
    "gateway_settings",
    "inventory_template",
    "inventory_url",
    "member_settings",
    "member_template",
    "member_url",
]


@pytest.fixture
async def inventory_service(inventory_url: str, nats_url: str) -> AsyncIterator[InventoryApp]:
    settings = InventorySettings(
        app_env="test", database_url=inventory_url, nats_url=nats_url, grpc_host="127.0.0.1", grpc_port=0
    )
    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, StreamSpec("SALES", ["retail.sales.v1.>"]))  # the gateway's stream
    app = build_inventory(settings)
    await app.server.start()
    yield app
    await app.server.stop()
    await app.close()


@pytest.fixture
async def member_service(member_settings: Callable[..., MemberSettings], clock: HandClock) -> AsyncIterator[MemberApp]:
    app = await start_member_app(member_settings(), clock)
    yield app
    await app.server.stop()  # a second stop is a no-op when the test stopped it already
    await app.close()


@pytest.fixture
async def gateway(
    inventory_service: InventoryApp, member_service: MemberApp, gateway_settings: Callable[..., GatewaySettings]
) -> AsyncIterator[RunningGateway]:
    backends = (
        f"inventory=127.0.0.1:{inventory_service.server.bound_port},member=127.0.0.1:{member_service.server.bound_port}"
    )
    async with running_gateway(gateway_settings(gateway_backends=backends)) as running:
        yield running


async def answer_once(
    gateway: RunningGateway, path: str, headers: dict[str, str], status: int, within: float = 30.0
) -> httpx.Response:
    """The answer to ``GET path`` once it has ``status``."""
    deadline = time.monotonic() + within
    while True:
        response = await gateway.http.get(path, headers=headers)
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response
        await asyncio.sleep(0.1)


async def test_with_the_member_service_stopped_the_gateway_stays_ready_and_only_member_routes_answer_503(
    gateway: RunningGateway, member_service: MemberApp, inventory_url: str
) -> None:
    await stock(inventory_url, "OATMILK1L", {"S001": Decimal(12)})
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    resolve = "/v1/members/resolve?type=phone&value=13800138000"
    assert_problem(await gateway.http.get(resolve, headers=headquarters), 404, "not-found")  # member answers

    await member_service.server.stop()

    refused = await answer_once(gateway, resolve, headquarters, 503)
    readiness = await gateway.http.get("/readyz")
    stock_answer = await gateway.http.get("/v1/stock/OATMILK1L", headers=headquarters)

    # The stopped service's routes say it is unavailable, and when to retry.
    assert_problem(refused, 503, "service-unavailable")
    assert int(refused.headers["Retry-After"]) >= 1
    # The gateway stays in rotation: its own dependencies answer, the outage is reported beside them.
    assert readiness.status_code == 200, readiness.text
    assert readiness.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "nats": "ok"},
        "backends": {"inventory": "ok", "member": "unavailable"},
    }
    # The healthy service's routes keep working.
    assert stock_answer.status_code == 200, stock_answer.text
    assert stock_answer.json()["total_available_to_promise"] == "12"
