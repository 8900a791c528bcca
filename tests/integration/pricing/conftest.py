"""Pricing databases and a running pricing service for tests: real PostgreSQL and NATS, a hand-moved clock.

Each test gets its own database (copied from a migrated template). The background rounds
(schedule, label push, acknowledgements, status) run on long intervals so that tests drive
them explicitly through ``app.services``; one test lets them run by themselves.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import identifiers_pb2, money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from sqlalchemy import text

from servicekit.protowire import timestamp
from servicekit.settings import load_settings
from services.pricing.bootstrap import PricingApp, build
from services.pricing.migrate import VERSIONS
from services.pricing.settings import PricingSettings
from tests.conftest import Infra, create_database_from, service_template

HQ = identifiers_pb2.Actor(
    client_id="HQ-PRICING",
    client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
    staff_role=identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
)


def store_manager(store_id: str) -> identifiers_pb2.Actor:
    return identifiers_pb2.Actor(
        client_id=f"{store_id}-MGR",
        client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
        staff_role=identifiers_pb2.STAFF_ROLE_STORE_MANAGER,
        store_id=store_id,
    )


@pytest.fixture(scope="session")
def pricing_template(infra: Infra, kit_template: str) -> str:
    return service_template(infra, kit_template, VERSIONS)


@pytest.fixture
def pricing_url(infra: Infra, pricing_template: str) -> str:
    return create_database_from(infra, pricing_template)


class Clock:
    """Real time at the start of a test, then moved by hand (scheduled changes need no sleeping)."""

    def __init__(self) -> None:
        self._now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        self._now += (delta or timedelta()) + timedelta(**parts)
        return self._now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pricing_settings(pricing_url: str, nats_url: str, unique: str) -> Callable[..., PricingSettings]:
    def settings(**overrides: Any) -> PricingSettings:
        values: dict[str, Any] = {
            "app_env": "test",
            "database_url": pricing_url,
            "nats_url": nats_url,
            "grpc_host": "127.0.0.1",
            "grpc_port": 0,
            "inventory_consumer_durable": f"pricing-inventory-{unique}",
            "schedule_poll_seconds": 60,
            "label_poll_seconds": 600,
            "label_status_seconds": 3600,
            "label_station_timeout_seconds": 2,
            "label_retry_base_seconds": 5,
            "label_max_attempts": 3,
            "label_ack_timeout_seconds": 120,
            "label_ack_deadline_seconds": 300,
        }
        return load_settings(PricingSettings, **(values | overrides))

    return settings


async def start_pricing_app(settings: PricingSettings, clock: Callable[[], datetime]) -> PricingApp:
    app = build(settings, clock=clock)
    await app.server.start()
    return app


@pytest.fixture
async def app(pricing_settings: Callable[..., PricingSettings], clock: Clock) -> AsyncIterator[PricingApp]:
    app = await start_pricing_app(pricing_settings(), clock)
    yield app
    await app.server.stop()
    await app.close()


@pytest.fixture
async def stub(app: PricingApp) -> AsyncIterator[pb_grpc.PricingServiceAsyncStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        yield pb_grpc.PricingServiceStub(channel)


def request_id() -> str:
    return str(uuid.uuid4())


def cny(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="CNY", minor_units=fen)


def stamp(moment: datetime) -> Timestamp:
    return timestamp(moment)


async def put_label(stub: pb_grpc.PricingServiceAsyncStub, store_id: str, label_id: str, sku: str) -> None:
    """Link a shelf label to a SKU, as headquarters."""
    await stub.PutLabel(
        pb.PutLabelRequest(request_id=request_id(), store_id=store_id, label_id=label_id, sku=sku, actor=HQ),
        timeout=10,
    )


async def _stub_call(app: PricingApp, method: str, request: Any) -> Any:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.PricingServiceStub(channel)
        return await getattr(stub, method)(request, timeout=10)


async def put_store(
    app: PricingApp,
    store_id: str,
    *,
    name: str = "",
    price_groups: Sequence[str] = (),
    currency: str = "CNY",
    station_kind: str = "",
    station_url: str = "",
) -> pb.Store:
    answer = await _stub_call(
        app,
        "PutStore",
        pb.PutStoreRequest(
            request_id=request_id(),
            store=pb.Store(
                store_id=store_id,
                name=name or f"Store {store_id}",
                price_groups=list(price_groups),
                currency_code=currency,
                label_station_kind=station_kind,
                label_station_url=station_url,
            ),
            actor=HQ,
        ),
    )
    store: pb.Store = answer.store
    return store


def barcode_for(sku: str) -> str:
    """A valid EAN-13 for any SKU (GS1 China prefix 690, check digit computed)."""
    body = "690" + f"{zlib.crc32(sku.encode()) % 10**9:09d}"
    total = sum(int(digit) * (3 if position % 2 else 1) for position, digit in enumerate(body))
    return body + str((10 - total % 10) % 10)


async def put_item(
    app: PricingApp,
    sku: str,
    *,
    cost_fen: int = 500,
    store_ids: Sequence[str] = (),
    name: str = "",
    unit: pb.Unit.ValueType = pb.UNIT_PIECE,
    active: bool = True,
    supplier_id: str = "SUP001",
) -> pb.Item:
    answer = await _stub_call(
        app,
        "PutItem",
        pb.PutItemRequest(
            request_id=request_id(),
            item=pb.Item(
                sku=sku,
                name=name or f"Item {sku}",
                category="C0101",
                barcode=barcode_for(sku),
                unit=unit,
                cost=cny(cost_fen),
                supplier_id=supplier_id,
                store_ids=list(store_ids),
                active=active,
            ),
            actor=HQ,
        ),
    )
    item: pb.Item = answer.item
    return item


async def store_of_labels(app: PricingApp, count: int, state: str) -> None:
    """Store S1 (a batch station) with ``count`` labels L000001… of one SKU, written in one statement
    as a large store's are: ``state`` is the SQL for each label's state (``g`` its number), every
    label's desired and sent digest ``d``; then the table is analysed."""
    await put_store(app, "S1", station_kind="batch", station_url="http://127.0.0.1:9/")
    await put_item(app, "SKU-P", cost_fen=100)
    async with app.services.pricing._uow() as uow:
        await uow.session.execute(
            text(
                "INSERT INTO label (store_id, label_id, sku, state, desired_digest, sent_digest, next_attempt_at) "
                f"SELECT 'S1', 'L' || lpad(g::text, 6, '0'), 'SKU-P', {state}, 'd', 'd', now() "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": count},
        )
        await uow.commit()
    async with app.connected.engine.connect() as connection:
        await connection.execute(text("ANALYZE label"))
        await connection.commit()


async def set_prices(
    app: PricingApp,
    sku: str,
    base_fen: int,
    *,
    overrides: Sequence[pb.RegularPrice] = (),
    promotions: Sequence[pb.Promotion] = (),
    override_reason: str = "",
) -> pb.SkuPrices:
    request = pb.SetPricesRequest(
        request_id=request_id(),
        sku=sku,
        currency_code="CNY",
        base_price=cny(base_fen),
        overrides=list(overrides),
        promotions=list(promotions),
        actor=HQ,
    )
    if override_reason:
        request.guard_rail_override.reason = override_reason
    answer = await _stub_call(app, "SetPrices", request)
    prices: pb.SkuPrices = answer.prices
    return prices
