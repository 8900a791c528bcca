"""Alerts databases and a running alerts service for tests: the kit's and alerts' migrations, copied per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import asyncpg
import grpc
import pytest
from retail.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.messaging import StreamSpec, ensure_stream
from servicekit.settings import load_settings, to_plain_url
from services.alerts.adapters.integration_events import ALERTS_STREAM
from services.alerts.bootstrap import AlertsApp, build
from services.alerts.migrate import VERSIONS
from services.alerts.settings import AlertsSettings
from tests.conftest import Infra, create_database_from, service_template
from tests.support.clock import HandClock
from tests.support.messaging import jetstream, streams_left_as_found

# The streams alerts consumes, as their owners declare them.
OTHER_STREAMS = [
    StreamSpec("SALES", ["retail.sales.v1.>"]),
    StreamSpec("PRICING", ["retail.pricing.v1.>"]),
    StreamSpec("INVENTORY", ["retail.inventory.v1.>"]),
    StreamSpec("MARKETING", ["retail.marketing.v1.>"]),
    StreamSpec("SUPPLY", ["retail.supply.v1.>"]),
]


@pytest.fixture(scope="session")
def alerts_template(infra: Infra, kit_template: str) -> str:
    return service_template(infra, kit_template, VERSIONS)


@pytest.fixture
def alerts_url(infra: Infra, alerts_template: str) -> str:
    return create_database_from(infra, alerts_template)


@pytest.fixture
def clock() -> HandClock:
    # Thursday 3 December 2026, 10:00 in Shanghai: the stores are open.
    return HandClock(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))


@pytest.fixture
async def engine(alerts_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(alerts_url, pool_size=20, max_overflow=20)
    yield engine
    await engine.dispose()


@pytest.fixture
def unit_of_work(engine: AsyncEngine) -> Callable[[], UnitOfWork]:
    return units_of_work(engine)


async def fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def alerts_settings(alerts_url: str, nats_url: str, unique: str, **overrides: object) -> AlertsSettings:
    values: dict[str, object] = {
        "app_env": "test",
        "database_url": alerts_url,
        "nats_url": nats_url,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "alerts_inventory_durable": f"alerts-inventory-{unique}",
        "alerts_pricing_durable": f"alerts-pricing-{unique}",
        "alerts_marketing_durable": f"alerts-marketing-{unique}",
        "alerts_supply_durable": f"alerts-supply-{unique}",
        "alerts_sales_durable": f"alerts-sales-{unique}",
        # The tests run the periodic rounds themselves, with the hand clock (unless they override these).
        "terminal_check_seconds": 0,
        "delivery_poll_seconds": 0,
    }
    return load_settings(AlertsSettings, **(values | overrides))


@pytest.fixture(autouse=True)
async def leave_streams_as_found(nats_url: str) -> AsyncIterator[None]:
    """Delete what a test published to the shared streams (itself or through the relay), so that no
    later test replays it. Set up before the service and torn down after it stopped."""
    async with jetstream(nats_url) as (_, js):
        for spec in [*OTHER_STREAMS, ALERTS_STREAM]:
            await ensure_stream(js, spec)
    async with streams_left_as_found(nats_url):
        yield


@pytest.fixture
async def app(alerts_url: str, nats_url: str, unique: str, clock: HandClock) -> AsyncIterator[AlertsApp]:
    alerts = build(alerts_settings(alerts_url, nats_url, unique), clock=clock)
    await alerts.server.start()
    yield alerts
    await alerts.server.stop()
    await alerts.close()


@pytest.fixture
async def stub(app: AlertsApp) -> AsyncIterator[pb_grpc.AlertsServiceAsyncStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        yield pb_grpc.AlertsServiceStub(channel)  # type: ignore[no-untyped-call]
