"""A waiting sale line is applied exactly once, whatever races it: its SKU's registration, its sale redelivered.

Real PostgreSQL and NATS: the sales go through the real consumer runner (inbox and all) and
the SKU arrives through the service's registration, as the catalogue consumer calls it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.msg import Msg
from retail.common.v1 import money_pb2
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.consumer import EventConsumer
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec, ensure_consumer
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.settings import to_plain_url
from services.inventory.entrypoints.sales_consumer import sales_handlers
from services.inventory.service_layer.handlers import InventoryService
from tests.integration.inventory.conftest import level, stock
from tests.support.messaging import jetstream, own_stream

ROUNDS = 20
Step = Callable[[UnitOfWork], Awaitable[None]]


def journal_sale(store: str, sku: str) -> sales_pb2.SaleRecorded:
    moment = Timestamp()
    moment.FromDatetime(datetime(2026, 11, 24, 9, 30, tzinfo=UTC))
    return sales_pb2.SaleRecorded(
        sale_id=f"{store}-POS01-{uuid.uuid4().hex[:12]}",
        kind=sales_pb2.SALE_KIND_SALE,
        location_id=store,
        occurred_at=moment,
        recorded_at=moment,
        lines=[sales_pb2.SaleLine(line_number=1, sku=sku, quantity=money_pb2.Decimal(value="1"))],
    )


async def register(service: InventoryService, unit_of_work: Callable[[], UnitOfWork], sku: str) -> int:
    """The SKU arrives, as the catalogue consumer registers it: in a transaction of its own."""
    async with unit_of_work() as uow:
        applied = await service.register_item(
            uow, sku=sku, name=sku, category="", unit="piece", supplier_id="", active=True
        )
        await uow.commit()
    return applied


async def sale_movements(url: str, sku: str) -> list[tuple[str, Decimal]]:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        rows = await connection.fetch(
            "SELECT reference, on_hand_delta FROM stock_movement WHERE sku = $1 AND kind = 'sale' ORDER BY id", sku
        )
    finally:
        await connection.close()
    return [(row["reference"], row["on_hand_delta"]) for row in rows]


async def still_waiting(url: str) -> int:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM stock_discrepancy WHERE status = 'open' "
                "AND kind IN ('unknown_sku', 'unknown_location')"
            )
        )
    finally:
        await connection.close()


async def wait_until_blocked(url: str) -> None:
    """Until a transaction of this database waits for a lock another one holds."""
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        async with asyncio.timeout(10):
            while not await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ):
                await asyncio.sleep(0.02)
    finally:
        await connection.close()


async def race(unit_of_work: Callable[[], UnitOfWork], url: str, first: Step, then: Step) -> None:
    """``first`` done but not committed when ``then`` starts, so ``then`` must wait for it."""

    async def second() -> None:
        async with unit_of_work() as uow:
            await then(uow)
            await uow.commit()

    async with unit_of_work() as uow:
        await first(uow)
        racer = asyncio.create_task(second())
        await wait_until_blocked(url)
        await uow.commit()
    await asyncio.wait_for(racer, 10)


async def test_a_sale_finding_its_sku_unknown_and_the_skus_registration_at_the_same_moment_apply_the_line_once(
    service: InventoryService, unit_of_work: Callable[[], UnitOfWork], inventory_url: str, unique: str
) -> None:
    store = f"S{unique}"
    await stock(inventory_url, f"SHELF{unique}", {store: Decimal(5)})  # the store exists

    async def sell(sku: str, sale_id: str, uow: UnitOfWork) -> None:
        await service.apply_sale(
            uow,
            sale_id=sale_id,
            location_id=store,
            is_return=False,
            lines=[(sku, Decimal(1))],
            reservation_id="",
            occurred_at=None,
        )

    async def arrive(sku: str, uow: UnitOfWork) -> None:
        await service.register_item(uow, sku=sku, name=sku, category="", unit="piece", supplier_id="", active=True)

    for first in ("sale", "registration"):
        sku, sale_id = f"RACE-{first}-{unique}", f"{store}-{first}"
        sale, registration = partial(sell, sku, sale_id), partial(arrive, sku)
        if first == "sale":  # the line is recorded as waiting while the SKU is being registered
            await race(unit_of_work, inventory_url, sale, registration)
        else:  # the SKU is being registered while the sale looks it up
            await race(unit_of_work, inventory_url, registration, sale)
        assert await sale_movements(inventory_url, sku) == [(sale_id, Decimal(-1))], first
        assert (await level(inventory_url, sku, store))["on_hand"] == Decimal(-1)
    assert await still_waiting(inventory_url) == 0


async def test_waiting_lines_racing_their_redelivered_sales_and_their_skus_arrival_are_applied_exactly_once(
    service: InventoryService, unit_of_work: Callable[[], UnitOfWork], inventory_url: str, nats_url: str, unique: str
) -> None:
    store = f"S{unique}"
    await stock(inventory_url, f"SHELF{unique}", {store: Decimal(5)})
    async with jetstream(nats_url) as (_, js):
        stream = await own_stream(js, unique)
        spec = ConsumerSpec(
            stream=stream.name, durable=f"sales{unique}", filter_subjects=[f"test.{unique}.>"], ack_wait_seconds=300
        )
        await ensure_consumer(js, spec)
        consumer = EventConsumer(js, spec, sales_handlers(service), unit_of_work)
        sales = {f"LATE{n:02}{unique}": journal_sale(store, f"LATE{n:02}{unique}") for n in range(ROUNDS)}
        sales |= {f"RACE{n:02}{unique}": journal_sale(store, f"RACE{n:02}{unique}") for n in range(ROUNDS)}
        for sale in sales.values():
            await js.publish(
                f"test.{unique}.sale",
                sale.SerializeToString(),
                headers={MSG_ID_HEADER: sale.sale_id, EVENT_TYPE_HEADER: "retail.sales.v1.SaleRecorded"},
            )
        subscription = await js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
        delivered: dict[str, Msg] = {}
        while len(delivered) < len(sales):
            for message in await subscription.fetch(len(sales) - len(delivered), timeout=5):
                delivered[message.headers[MSG_ID_HEADER]] = message  # type: ignore[index]
        await subscription.unsubscribe()

        def deliver(sku: str, attempt: int) -> asyncio.Future[str]:
            message = delivered[sales[sku].sale_id]
            return asyncio.ensure_future(consumer._apply(message, dict(message.headers or {}), attempt))

        # LATE…: each sale was applied (its line waits) but its ack was lost; the redelivery
        # arrives just as the SKU does. RACE…: the first delivery and the SKU arrive together.
        late = [sku for sku in sales if sku.startswith("LATE")]
        assert await asyncio.gather(*(deliver(sku, 1) for sku in late)) == ["handled"] * ROUNDS
        outcomes = await asyncio.gather(
            *(deliver(sku, 2) for sku in late),
            *(register(service, unit_of_work, sku) for sku in late),
            *(deliver(sku, 1) for sku in sales if sku.startswith("RACE")),
            *(register(service, unit_of_work, sku) for sku in sales if sku.startswith("RACE")),
        )
    assert outcomes[:ROUNDS] == ["duplicates"] * ROUNDS
    assert outcomes[ROUNDS : 2 * ROUNDS] == [1] * ROUNDS  # each late line applied by its SKU's arrival
    for sku, sale in sales.items():
        assert await sale_movements(inventory_url, sku) == [(sale.sale_id, Decimal(-1))], sku
    assert await still_waiting(inventory_url) == 0
