"""Pricing's ItemChanged events into inventory's catalogue projection: only a higher version changes it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from retail.pricing.v1 import events_pb2 as pricing_events_pb2
from retail.pricing.v1 import pricing_service_pb2 as pricing_pb2

from devstack.servers import NatsServer
from servicekit.db import UnitOfWork
from servicekit.messaging import StreamSpec, ensure_consumer, ensure_stream
from servicekit.outbox import AGGREGATE_HEADER, EVENT_TYPE_HEADER, MSG_ID_HEADER, OCCURRED_AT_HEADER
from services.inventory.adapters.catalogue_store import CatalogueItem, catalogue_items
from services.inventory.bootstrap import GRPC_SERVICE, InventoryApp, build
from services.inventory.entrypoints.catalogue_consumer import ITEM_CHANGED_SUBJECT, PRICING_STREAM, catalogue_consumer
from services.inventory.settings import InventorySettings
from tests.support.messaging import consumer_settled, jetstream

PRICING = StreamSpec(PRICING_STREAM, ["retail.pricing.v1.>"], description="Facts of the pricing context")


def settings(inventory_url: str, nats_url: str, durable: str) -> InventorySettings:
    return InventorySettings(
        app_env="test",
        database_url=inventory_url,
        nats_url=nats_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        catalogue_consumer_durable=durable,
    )


@pytest.fixture
def durable(unique: str) -> str:
    """A consumer of this test's own, so no other test's inventory takes its events."""
    return f"inventory-catalogue-{unique}"


@pytest.fixture
async def catalogue_app(inventory_url: str, nats_url: str, durable: str) -> AsyncIterator[InventoryApp]:
    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, PRICING)  # pricing's stream, as its relay declares it
    app = build(settings(inventory_url, nats_url, durable))
    await app.server.start()
    yield app
    await app.server.stop()
    await app.close()


def item_changed(sku: str, version: int, *, name: str, supplier_id: str = "SUP-1", active: bool = True) -> bytes:
    updated_at = Timestamp()
    updated_at.FromDatetime(datetime(2026, 11, 24, 9, 0, version % 60, tzinfo=UTC))
    item = pricing_pb2.Item(
        sku=sku,
        name=name,
        category="dairy.milk",
        barcode="6901234567892",
        unit=pricing_pb2.UNIT_PIECE,
        supplier_id=supplier_id,
        active=active,
        version=version,
        updated_at=updated_at,
    )
    return pricing_events_pb2.ItemChanged(item=item, created=version == 1, occurred_at=updated_at).SerializeToString()


async def publish(js: JetStreamContext, sku: str, payload: bytes, event_id: str | None = None) -> str:
    """Publish as pricing's outbox relay does: the event id as Nats-Msg-Id, the type and aggregate in headers."""
    event_id = event_id or str(uuid.uuid4())
    await js.publish(
        ITEM_CHANGED_SUBJECT,
        payload,
        headers={
            MSG_ID_HEADER: event_id,
            EVENT_TYPE_HEADER: pricing_events_pb2.ItemChanged.DESCRIPTOR.full_name,
            OCCURRED_AT_HEADER: datetime.now(UTC).isoformat(),
            AGGREGATE_HEADER: f"item:{sku}",
        },
    )
    return event_id


async def projected(unit_of_work: Callable[[], UnitOfWork], sku: str) -> CatalogueItem | None:
    async with unit_of_work() as uow:
        return (await catalogue_items(uow.session, [sku])).get(sku)


async def wait_for_version(unit_of_work: Callable[[], UnitOfWork], sku: str, version: int) -> CatalogueItem:
    async with asyncio.timeout(30):
        while (item := await projected(unit_of_work, sku)) is None or item.version != version:
            await asyncio.sleep(0.05)
    return item


async def settled(js: JetStreamContext, durable: str) -> None:
    """Wait until the consumer has handled everything on the stream (nothing pending or unacked)."""
    await consumer_settled(js, PRICING_STREAM, durable, timeout=30)


async def test_an_item_changed_event_creates_the_item_in_the_projection(
    catalogue_app: InventoryApp, unit_of_work: Callable[[], UnitOfWork], nats_url: str, unique: str
) -> None:
    sku = f"CAT{unique}"
    async with jetstream(nats_url) as (_, js):
        await publish(js, sku, item_changed(sku, 1, name="Fresh milk 1 l"))
        item = await wait_for_version(unit_of_work, sku, 1)
    assert item == CatalogueItem(
        sku=sku,
        name="Fresh milk 1 l",
        category="dairy.milk",
        barcode="6901234567892",
        unit="piece",
        supplier_id="SUP-1",
        active=True,
        version=1,
        updated_at=datetime(2026, 11, 24, 9, 0, 1, tzinfo=UTC),
    )


async def test_a_higher_version_updates_the_item_and_an_older_one_arriving_late_is_ignored(
    catalogue_app: InventoryApp, unit_of_work: Callable[[], UnitOfWork], nats_url: str, durable: str, unique: str
) -> None:
    sku = f"CAT{unique}"
    async with jetstream(nats_url) as (_, js):
        await publish(js, sku, item_changed(sku, 1, name="Fresh milk 1 l"))
        await wait_for_version(unit_of_work, sku, 1)
        await publish(js, sku, item_changed(sku, 3, name="Fresh milk 1 l (new pack)", supplier_id="SUP-2"))
        await wait_for_version(unit_of_work, sku, 3)
        await publish(js, sku, item_changed(sku, 2, name="Fresh milk 1 l (old name)", active=False))
        await settled(js, durable)
    item = await projected(unit_of_work, sku)
    assert item is not None
    assert (item.version, item.name, item.supplier_id, item.active) == (3, "Fresh milk 1 l (new pack)", "SUP-2", True)


async def test_redelivered_events_change_nothing(
    catalogue_app: InventoryApp, unit_of_work: Callable[[], UnitOfWork], nats_url: str, durable: str, unique: str
) -> None:
    sku = f"CAT{unique}"
    async with jetstream(nats_url) as (_, js):
        await publish(js, sku, item_changed(sku, 2, name="Yoghurt 500 g"))
        await publish(js, sku, item_changed(sku, 1, name="Yoghurt 450 g"))  # out of order: older, so ignored
        first = await publish(js, sku, item_changed(sku, 3, name="Yoghurt 400 g"))
        await wait_for_version(unit_of_work, sku, 3)
        await settled(js, durable)
        # The relay published the same outbox row again (it died before marking it sent).
        await publish(js, sku, item_changed(sku, 3, name="Yoghurt 400 g"), event_id=first)
        # The durable consumer is lost and declared again: JetStream delivers every event once more.
        await js.delete_consumer(PRICING_STREAM, durable)
        await ensure_consumer(js, catalogue_consumer(durable))
        await settled(js, durable)
        # Pricing's own item history replayed under fresh event ids: same versions, nothing new.
        await publish(js, sku, item_changed(sku, 2, name="Yoghurt 500 g"))
        await publish(js, sku, item_changed(sku, 3, name="Yoghurt 400 g (replayed)"))
        await settled(js, durable)
    item = await projected(unit_of_work, sku)
    assert item is not None
    assert (item.version, item.name) == (3, "Yoghurt 400 g")


async def wait_until_serving(port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        async with asyncio.timeout(30):
            while (
                await stub.Check(health_pb2.HealthCheckRequest(service=GRPC_SERVICE), timeout=2)
            ).status != health_pb2.HealthCheckResponse.SERVING:
                await asyncio.sleep(0.05)


async def test_inventory_becomes_ready_without_pricing_and_catches_up_once_its_stream_appears(
    inventory_url: str, unit_of_work: Callable[[], UnitOfWork], tmp_path: Path, unique: str
) -> None:
    # A NATS of this test's own: on the shared one another test may have declared PRICING already.
    nats = NatsServer(tmp_path / "nats", durable=False)
    nats.start()
    try:
        app = build(settings(inventory_url, nats.url, f"inventory-catalogue-{unique}"))
        await app.server.start()
        try:
            await wait_until_serving(app.server.bound_port)
            sku = f"CAT{unique}"
            async with jetstream(nats.url) as (_, js):
                with pytest.raises(NotFoundError):
                    await js.stream_info(PRICING_STREAM)
                await ensure_stream(js, PRICING)  # pricing starts later
                await publish(js, sku, item_changed(sku, 1, name="Rice 5 kg"))
                item = await wait_for_version(unit_of_work, sku, 1)
            assert item.name == "Rice 5 kg"
        finally:
            await app.server.stop()
            await app.close()
    finally:
        nats.stop()
