"""POS sales through the gateway's journal into inventory: stock changes exactly once per sale."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from gateway.domain.clients import ClientKind
from gateway.settings import GatewaySettings
from services.inventory.bootstrap import InventoryApp
from services.inventory.entrypoints.sales_consumer import SALES_CONSUMER
from tests.integration.inventory.conftest import level, stock
from tests.support.gateway import RunningGateway, gateway_schema, gateway_settings, idempotency_key, running_gateway
from tests.support.messaging import consumer_settled, jetstream

__all__ = ["gateway_schema", "gateway_settings"]


@pytest.fixture
async def gateway(app: InventoryApp, gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(gateway_backends=f"inventory=127.0.0.1:{app.server.bound_port}", rate_limit_burst=1000)
    async with running_gateway(settings) as running:
        yield running


def sale(sku: str, quantity: str, hours_ago: float) -> dict[str, Any]:
    return {
        "sale_id": f"S001-POS01-{uuid.uuid4().hex[:12]}",
        "kind": "sale",
        "store_id": "S001",
        "occurred_at": (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(),
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "9.90"}],
        "payments": [{"method": "cash", "amount": str(Decimal("9.90") * Decimal(quantity))}],
    }


async def settled(nats_url: str) -> None:
    """Wait until inventory has handled everything in the journal (nothing pending or unacked)."""
    async with jetstream(nats_url) as (_, js):
        await consumer_settled(js, SALES_CONSUMER.stream, SALES_CONSUMER.durable)


async def test_the_same_batch_sent_three_times_at_once_changes_stock_exactly_once(
    gateway: RunningGateway, inventory_url: str, nats_url: str
) -> None:
    sku = f"POS{uuid.uuid4().hex[:8].upper()}"
    await stock(inventory_url, sku, {"S001": Decimal(20)})
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001")
    sales = [sale(sku, str(n), hours_ago=3) for n in (1, 2, 3)]
    answers = await asyncio.gather(
        *(
            gateway.http.post("/v1/pos/sales/batch", json={"sales": sales}, headers=terminal | idempotency_key())
            for _ in range(3)
        )
    )
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    await settled(nats_url)
    assert (await level(inventory_url, sku, "S001"))["on_hand"] == Decimal(14)


async def test_a_day_of_offline_sales_replayed_late_converges_to_the_same_stock_as_online(
    gateway: RunningGateway, inventory_url: str, nats_url: str
) -> None:
    online_sku, offline_sku = f"ON{uuid.uuid4().hex[:8].upper()}", f"OFF{uuid.uuid4().hex[:8].upper()}"
    await stock(inventory_url, online_sku, {"S001": Decimal(50)})
    await stock(inventory_url, offline_sku, {"S001": Decimal(50)})
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001")
    day = [(str(q), 20 - h) for h, q in enumerate((1, 3, 2, 5, 1, 4, 2, 3), start=1)]
    for quantity, hours_ago in day:  # online: each sale as it happens
        answer = await gateway.http.post(
            "/v1/pos/sales/batch",
            json={"sales": [sale(online_sku, quantity, hours_ago)]},
            headers=terminal | idempotency_key(),
        )
        assert answer.json()["results"][0]["status"] == "accepted"
    offline = [sale(offline_sku, quantity, hours_ago) for quantity, hours_ago in day]
    first_half, everything = offline[:5], offline
    # The till comes back, uploads part of the day, loses the answer, then uploads it all.
    await gateway.http.post("/v1/pos/sales/batch", json={"sales": first_half}, headers=terminal | idempotency_key())
    replay = await gateway.http.post(
        "/v1/pos/sales/batch", json={"sales": everything}, headers=terminal | idempotency_key()
    )
    statuses = [result["status"] for result in replay.json()["results"]]
    assert statuses == ["duplicate"] * 5 + ["accepted"] * 3
    await settled(nats_url)
    online_level = await level(inventory_url, online_sku, "S001")
    offline_level = await level(inventory_url, offline_sku, "S001")
    assert online_level["on_hand"] == offline_level["on_hand"] == Decimal(50 - 21)
