"""Supply databases and a running supply service for tests: the kit's and supply's migrations, copied per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import asyncpg
import grpc
import pytest
from retail.supply.v1 import supply_service_pb2_grpc as pb_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.messaging import StreamSpec, ensure_stream
from servicekit.settings import load_settings, to_plain_url
from services.supply.adapters.integration_events import SUPPLY_STREAM
from services.supply.bootstrap import SupplyApp, build
from services.supply.migrate import VERSIONS
from services.supply.settings import SupplySettings
from tests.conftest import Infra, create_database_from, service_template
from tests.support.clock import HandClock
from tests.support.messaging import jetstream, streams_left_as_found


@pytest.fixture(scope="session")
def supply_template(infra: Infra, kit_template: str) -> str:
    return service_template(infra, kit_template, VERSIONS)


@pytest.fixture
def supply_url(infra: Infra, supply_template: str) -> str:
    return create_database_from(infra, supply_template)


@pytest.fixture
def clock() -> HandClock:
    return HandClock(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))


@pytest.fixture
async def engine(supply_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(supply_url, pool_size=30, max_overflow=30)
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


def supply_settings(supply_url: str, nats_url: str, unique: str) -> SupplySettings:
    return load_settings(
        SupplySettings,
        app_env="test",
        database_url=supply_url,
        nats_url=nats_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        db_pool_size=20,
        db_max_overflow=20,
        supply_catalogue_durable=f"supply-catalogue-{unique}",
        supply_replenishment_durable=f"supply-replenishment-{unique}",
        supply_sales_durable=f"supply-sales-{unique}",
    )


async def other_streams(nats_url: str) -> None:
    """The streams supply consumes, as their owners would declare them."""
    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, StreamSpec("SALES", ["retail.sales.v1.>"]))
        await ensure_stream(js, StreamSpec("PRICING", ["retail.pricing.v1.>"]))
        await ensure_stream(js, StreamSpec("INVENTORY", ["retail.inventory.v1.>"]))


@pytest.fixture(autouse=True)
async def leave_streams_as_found(nats_url: str) -> AsyncIterator[None]:
    """Delete what a test published (itself, or through the service's relay) to the streams other
    services' tests read, so that no later test's inventory, pricing or marketing replays it. Set up
    before the service and torn down after it stopped."""
    await other_streams(nats_url)
    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, SUPPLY_STREAM)
    async with streams_left_as_found(nats_url):
        yield


@pytest.fixture
async def app(supply_url: str, nats_url: str, unique: str, clock: HandClock) -> AsyncIterator[SupplyApp]:
    await other_streams(nats_url)
    supply = build(supply_settings(supply_url, nats_url, unique), clock=clock)
    await supply.server.start()
    yield supply
    await supply.server.stop()
    await supply.close()


@pytest.fixture
async def stub(app: SupplyApp) -> AsyncIterator[pb_grpc.SupplyServiceAsyncStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        yield pb_grpc.SupplyServiceStub(channel)  # type: ignore[no-untyped-call]
