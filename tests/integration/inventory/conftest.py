"""Inventory databases for tests: the kit's and inventory's migrations, copied per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Generic, TypeVar

import asyncpg
import pytest
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.messaging import StreamSpec, ensure_stream
from servicekit.settings import to_plain_url
from services.inventory.bootstrap import InventoryApp, build
from services.inventory.entrypoints.wire import RESERVATION_CODEC
from services.inventory.migrate import VERSIONS
from services.inventory.service_layer.handlers import InventoryService
from services.inventory.settings import InventorySettings
from tests.conftest import Infra, create_database_from, service_template
from tests.support.clock import HandClock
from tests.support.messaging import jetstream


@pytest.fixture(scope="session")
def inventory_template(infra: Infra, kit_template: str) -> str:
    return service_template(infra, kit_template, VERSIONS)


@pytest.fixture
def inventory_url(infra: Infra, inventory_template: str) -> str:
    return create_database_from(infra, inventory_template)


@pytest.fixture
def clock() -> HandClock:
    return HandClock(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))


@pytest.fixture
async def engine(inventory_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(inventory_url, pool_size=20, max_overflow=10)
    yield engine
    await engine.dispose()


@pytest.fixture
def unit_of_work(engine: AsyncEngine) -> Callable[[], UnitOfWork]:
    return units_of_work(engine)


@pytest.fixture
def service(unit_of_work: Callable[[], UnitOfWork], clock: HandClock) -> InventoryService:
    return InventoryService(unit_of_work, RESERVATION_CODEC, clock=clock)


# What each kind of test location serves; a warehouse serves no sales channel.
CHANNELS_SERVED = {"online": ["online", "click_and_collect"], "warehouse": [], "store": ["store", "click_and_collect"]}


async def stock(
    url: str, sku: str, levels: dict[str, Decimal], *, safety: Decimal = Decimal(0), supplier_id: str | None = None
) -> None:
    """Create an item with opening stock at locations (created on the fly: ONLINE… online, W… a
    warehouse serving no channel, anything else a store), ledger included."""
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO item (sku, name, supplier_id) VALUES ($1, $1, $2) ON CONFLICT DO NOTHING", sku, supplier_id
            )
            for location_id, on_hand in levels.items():
                kind = (
                    "online" if location_id.startswith("ONLINE") else "warehouse" if location_id[0] == "W" else "store"
                )
                channels = CHANNELS_SERVED[kind]
                await connection.execute(
                    "INSERT INTO location (location_id, name, kind, channels) VALUES ($1, $1, $2, $3) "
                    "ON CONFLICT DO NOTHING",
                    location_id,
                    kind,
                    channels,
                )
                await connection.execute(
                    "INSERT INTO stock_level (sku, location_id, on_hand, safety_stock) VALUES ($1, $2, $3, $4)",
                    sku,
                    location_id,
                    on_hand,
                    safety,
                )
                await connection.execute(
                    "INSERT INTO stock_movement (sku, location_id, kind, on_hand_delta) "
                    "VALUES ($1, $2, 'opening_balance', $3)",
                    sku,
                    location_id,
                    on_hand,
                )
    finally:
        await connection.close()


async def level(url: str, sku: str, location_id: str) -> dict[str, Decimal]:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        # One snapshot for both reads: a sale committing in between must not look like drift.
        transaction = connection.transaction(isolation="repeatable_read", readonly=True)
        await transaction.start()
        row = await connection.fetchrow(
            "SELECT on_hand, reserved, in_transit, safety_stock FROM stock_level WHERE sku = $1 AND location_id = $2",
            sku,
            location_id,
        )
        ledger = await connection.fetchrow(
            "SELECT coalesce(sum(on_hand_delta), 0) AS on_hand, coalesce(sum(reserved_delta), 0) AS reserved, "
            "coalesce(sum(in_transit_delta), 0) AS in_transit FROM stock_movement WHERE sku = $1 AND location_id = $2",
            sku,
            location_id,
        )
        await transaction.rollback()
    finally:
        await connection.close()
    assert row is not None
    assert (row["on_hand"], row["reserved"], row["in_transit"]) == (
        ledger["on_hand"],
        ledger["reserved"],
        ledger["in_transit"],
    ), "the balance drifted from its ledger"
    return dict(row)


MessageT = TypeVar("MessageT", bound=Message)


@dataclass(frozen=True)
class Written(Generic[MessageT]):
    """One integration event as the outbox holds it."""

    event_id: uuid.UUID
    subject: str
    aggregate_id: str
    occurred_at: datetime
    message: MessageT


async def outbox_events(url: str, message_type: type[MessageT]) -> list[Written[MessageT]]:
    """Every event of one type written to the outbox (so committed), in the order it was written."""
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        rows = await connection.fetch(
            "SELECT event_id, subject, aggregate_id, occurred_at, payload FROM outbox "
            "WHERE event_type = $1 ORDER BY id",
            message_type.DESCRIPTOR.full_name,
        )
    finally:
        await connection.close()
    return [
        Written(
            row["event_id"],
            row["subject"],
            row["aggregate_id"],
            row["occurred_at"],
            message_type.FromString(row["payload"]),
        )
        for row in rows
    ]


@pytest.fixture
async def app(inventory_url: str, nats_url: str) -> AsyncIterator[InventoryApp]:
    settings = InventorySettings(
        app_env="test", database_url=inventory_url, nats_url=nats_url, grpc_host="127.0.0.1", grpc_port=0
    )
    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, StreamSpec("SALES", ["retail.sales.v1.>"]))  # the gateway's stream
    app = build(settings)
    await app.server.start()
    yield app
    await app.server.stop()
    await app.close()
