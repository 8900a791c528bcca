"""Sales applied a fetched batch at a time (InventoryService.apply_sales) leave what applying them one by one
leaves; repeated deliveries and two replicas on one durable still apply each sale exactly once.

Real PostgreSQL and NATS: the batch test calls the service as the consumer does; the others go
through the real consumer runner (inbox, fetched batches, the one-by-one fallback).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import money_pb2
from retail.inventory.v1 import events_pb2
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.consumer import EventConsumer
from servicekit.db import UnitOfWork
from servicekit.messaging import ConsumerSpec, StreamSpec, ensure_consumer, ensure_stream
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.settings import to_plain_url
from services.inventory.domain.journal import JournalSale
from services.inventory.domain.model import Reservation
from services.inventory.entrypoints.sales_consumer import SALES_CONSUMER, map_sale, sales_handlers
from services.inventory.entrypoints.wire import map_reserve
from services.inventory.service_layer.handlers import InventoryService
from tests.integration.inventory.conftest import level, outbox_events, stock
from tests.integration.inventory.test_reservations import reserve_request
from tests.support.messaging import consumer_settled, jetstream

SALE_TYPE = sales_pb2.SaleRecorded.DESCRIPTOR.full_name
SOLD_AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def journal_sale(
    sale_id: str,
    store: str,
    lines: Sequence[tuple[str, str]],
    *,
    is_return: bool = False,
    reservation_id: str = "",
    minutes: int = 0,
) -> sales_pb2.SaleRecorded:
    moment = Timestamp()
    moment.FromDatetime(SOLD_AT + timedelta(minutes=minutes))
    return sales_pb2.SaleRecorded(
        sale_id=sale_id,
        kind=sales_pb2.SALE_KIND_RETURN if is_return else sales_pb2.SALE_KIND_SALE,
        location_id=store,
        occurred_at=moment,
        recorded_at=moment,
        reservation_id=reservation_id,
        lines=[
            sales_pb2.SaleLine(line_number=n, sku=sku, quantity=money_pb2.Decimal(value=quantity))
            for n, (sku, quantity) in enumerate(lines, start=1)
        ],
    )


async def reserve(service: InventoryService, sku: str, quantity: str, location_id: str) -> Reservation:
    return await service.reserve(map_reserve(reserve_request(sku, quantity, location_id=location_id)))


async def world(
    service: InventoryService, unit_of_work: Callable[[], UnitOfWork], url: str, tag: str
) -> tuple[list[JournalSale], dict[str, str]]:
    """A store with its stock and reservations, and a journal touching every rule of a sale: the same SKU
    sold several times (going below zero twice), a return, an unknown SKU, an unknown store, an unreadable
    quantity, a sale fulfilling a reservation (part of it), the same reservation named again, a released
    one named, a known SKU new at the store. Returns the journal and what to rename to compare worlds."""
    store, online = f"S{tag}", f"ONLINE{tag}"
    shelf, other, held, new, ghost = (f"{name}{tag}" for name in ("SHELF", "OTHER", "HELD", "NEW", "GHOST"))
    await stock(url, shelf, {store: Decimal(3)})
    await stock(url, other, {store: Decimal(10)})
    await stock(url, held, {store: Decimal(5), online: Decimal(4)})
    await stock(url, new, {online: Decimal(1)})  # known, never stocked at the store
    paid = await reserve(service, held, "3", store)
    async with unit_of_work() as uow:
        await service.commit(uow, paid.reservation_id)
        await uow.commit()
    dropped = await reserve(service, held, "1", online)
    async with unit_of_work() as uow:
        await service.release(uow, dropped.reservation_id)
        await uow.commit()

    def sale_id(name: str) -> str:
        return f"{store}-POS01-{name}"

    journal = [
        journal_sale(sale_id("s1"), store, [(shelf, "2"), (other, "1"), (shelf, "0")]),
        journal_sale(sale_id("s2"), store, [(shelf, "2")]),  # below zero
        journal_sale(sale_id("r1"), store, [(shelf, "1")], is_return=True),
        journal_sale(sale_id("s3"), store, [(ghost, "1"), (other, "1")]),  # an unknown SKU
        journal_sale(sale_id("s4"), f"U{tag}", [(other, "1"), (ghost, "2")]),  # an unknown store
        journal_sale(sale_id("s5"), store, [(other, "1"), (shelf, "two")]),  # an unreadable quantity
        journal_sale(sale_id("s6"), store, [(held, "2"), (other, "1")], reservation_id=paid.reservation_id),
        journal_sale(sale_id("s7"), store, [(held, "1")], reservation_id=paid.reservation_id),  # fulfilled already
        journal_sale(sale_id("s8"), store, [(held, "1")], reservation_id=dropped.reservation_id),  # released
        journal_sale(sale_id("s9"), store, [(shelf, "1"), (new, "1")], minutes=24 * 60),  # the next day
        journal_sale(sale_id("r2"), store, [(ghost, "1"), (held, "2")], is_return=True),
        journal_sale(sale_id("s10"), store, [(shelf, "1.5")], reservation_id="not-a-uuid"),
    ]
    renames = {paid.reservation_id: "PAID", dropped.reservation_id: "DROPPED", tag: "@"}
    return [map_sale(sale) for sale in journal], renames


async def figures(url: str, tag: str, renames: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the world's sales left, with its names made comparable across worlds."""

    def plain(value: Any) -> Any:
        if isinstance(value, str | uuid.UUID):
            value = str(value)
            for old, new in renames.items():
                value = value.replace(old, new)
        return value

    queries = {
        "levels": "SELECT sku, location_id, on_hand, reserved, in_transit FROM stock_level "
        "WHERE sku LIKE '%' || $1 ORDER BY sku, location_id",
        "ledger": "SELECT sku, location_id, kind, on_hand_delta, reserved_delta, reference FROM stock_movement "
        "WHERE sku LIKE '%' || $1 ORDER BY sku, location_id, id",
        "daily": "SELECT location_id, sku, day, quantity FROM daily_sales WHERE sku LIKE '%' || $1 "
        "ORDER BY location_id, sku, day",
        "discrepancies": "SELECT sale_id, sku, kind, location_id, on_hand_after, quantity, is_return, detail, "
        "status, occurred_at FROM stock_discrepancy WHERE sku LIKE '%' || $1 ORDER BY sale_id, sku, kind",
        "reservations": "SELECT reservation_id, status, sale_id, closed_at IS NOT NULL FROM reservation "
        "WHERE sku LIKE '%' || $1 ORDER BY reservation_id",
    }
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        found = {name: await connection.fetch(sql, tag) for name, sql in queries.items()}
    finally:
        await connection.close()
    shown = {name: [tuple(plain(value) for value in row) for row in rows] for name, rows in found.items()}
    for name, rows in shown.items():
        if name != "ledger":  # a level's ledger stays in the order it was written
            rows.sort()  # the names' order, not the database's collation of them
    return shown


async def test_a_batch_applied_at_once_leaves_what_its_sales_applied_one_by_one_leave(
    service: InventoryService, unit_of_work: Callable[[], UnitOfWork], inventory_url: str, unique: str
) -> None:
    together, together_names = await world(service, unit_of_work, inventory_url, f"T{unique}")
    alone, alone_names = await world(service, unit_of_work, inventory_url, f"A{unique}")

    async with unit_of_work() as uow:
        await service.apply_sales(uow, together)
        await uow.commit()
    for sale in alone:
        async with unit_of_work() as uow:
            await service.apply_sale(
                uow,
                sale_id=sale.sale_id,
                location_id=sale.location_id,
                is_return=sale.is_return,
                lines=sale.lines,
                reservation_id=sale.reservation_id,
                occurred_at=sale.occurred_at,
                unreadable=sale.unreadable,
            )
            await uow.commit()

    batch = await figures(inventory_url, f"T{unique}", together_names)
    assert batch == await figures(inventory_url, f"A{unique}", alone_names)
    # The paths the journal was built to take, so the comparison covers them.
    assert [(row[0], row[1], row[2], row[4], row[5]) for row in batch["discrepancies"]] == [
        ("S@-POS01-r2", "GHOST@", "unknown_sku", None, 1),
        ("S@-POS01-s1", "SHELF@", "unreadable_quantity", None, None),  # the line of 0
        ("S@-POS01-s10", "SHELF@", "negative_stock", Decimal("-2.5"), None),
        ("S@-POS01-s2", "SHELF@", "negative_stock", Decimal(-1), None),
        ("S@-POS01-s3", "GHOST@", "unknown_sku", None, 1),
        ("S@-POS01-s4", "GHOST@", "unknown_sku", None, 2),
        ("S@-POS01-s4", "OTHER@", "unknown_location", None, 1),
        ("S@-POS01-s5", "SHELF@", "unreadable_quantity", None, None),
        ("S@-POS01-s9", "NEW@", "negative_stock", Decimal(-1), None),
        ("S@-POS01-s9", "SHELF@", "negative_stock", Decimal(-1), None),
    ]
    assert [row[:3] for row in batch["reservations"]] == [
        ("DROPPED", "released", ""),
        ("PAID", "fulfilled", "S@-POS01-s6"),
    ]
    levels = {(sku, where): (on_hand, reserved) for sku, where, on_hand, reserved, _ in batch["levels"]}
    assert levels[("SHELF@", "S@")] == (Decimal("-2.5"), 0)  # 3 − 2 − 2 + 1 − 1 − 1.5
    assert levels[("OTHER@", "S@")] == (6, 0)  # 10 − 1 − 1 − 1 − 1 (s4's line waits for its store)
    assert levels[("HELD@", "S@")] == (3, 0)  # 5 − 2 (held: the third unit released) − 1 − 1 + 2
    assert levels[("NEW@", "S@")] == (-1, 0)

    # One StockLevelChanged per level the batch changed, as the last of the single sales left it,
    # announced as a sale: a sale (not only a return) moved each of them.
    changes = [event.message for event in await outbox_events(inventory_url, events_pb2.StockLevelChanged)]
    journal_causes = (events_pb2.STOCK_CHANGE_CAUSE_SALE, events_pb2.STOCK_CHANGE_CAUSE_RETURN)
    last_alone = {
        (m.sku.replace(f"A{unique}", "@"), m.location_id.replace(f"A{unique}", "@")): m
        for m in changes
        if m.sku.endswith(f"A{unique}")
    }
    of_batch = [m for m in changes if m.sku.endswith(f"T{unique}") and m.cause in journal_causes]
    assert len({(m.sku, m.location_id) for m in of_batch}) == len(of_batch) == 4
    for message in of_batch:
        single = last_alone[(message.sku.replace(f"T{unique}", "@"), message.location_id.replace(f"T{unique}", "@"))]
        assert (message.on_hand, message.reserved) == (single.on_hand, single.reserved)
        assert message.cause == events_pb2.STOCK_CHANGE_CAUSE_SALE


class Journal:
    """A stream of this test's own carrying journal entries as the gateway publishes them."""

    def __init__(self, js: Any, unique: str) -> None:
        self.js = js
        self.stream = StreamSpec(name=f"T{unique}", subjects=[f"test.{unique}.>"])
        self.subject = f"test.{unique}.sale_recorded"

    async def publish(self, sale: sales_pb2.SaleRecorded) -> None:
        ack = await self.js.publish(
            self.subject, sale.SerializeToString(), headers={MSG_ID_HEADER: sale.sale_id, EVENT_TYPE_HEADER: SALE_TYPE}
        )
        assert not ack.duplicate

    async def consumer(self, durable: str, ack_wait_seconds: float = 30.0) -> ConsumerSpec:
        spec = replace(
            SALES_CONSUMER,
            stream=self.stream.name,
            durable=durable,
            filter_subjects=[self.subject],
            ack_wait_seconds=ack_wait_seconds,
        )
        await ensure_consumer(self.js, spec)
        return spec

    async def run_until_settled(self, *consumers: EventConsumer[UnitOfWork]) -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(consumer.run(stop)) for consumer in consumers]
        try:
            async with asyncio.timeout(60):  # for all of them together
                for durable in {consumer.spec.durable for consumer in consumers}:
                    await consumer_settled(self.js, self.stream.name, durable)
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def sale_movements(url: str, skus: Sequence[str]) -> list[tuple[str, str, str, Decimal]]:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        rows = await connection.fetch(
            "SELECT reference, sku, location_id, on_hand_delta FROM stock_movement "
            "WHERE sku = ANY($1) AND kind IN ('sale', 'return') ORDER BY reference, sku",
            list(skus),
        )
    finally:
        await connection.close()
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_fetch_of_sales_is_applied_as_one_batch_announcing_each_level_once(
    service: InventoryService,
    unit_of_work: Callable[[], UnitOfWork],
    inventory_url: str,
    nats_url: str,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, skus = f"S{unique}", [f"FAST{unique}-{n}" for n in range(3)]
    for sku in skus:
        await stock(inventory_url, sku, {store: Decimal(1000)})
    sales = [journal_sale(f"{store}-{n}", store, [(sku, "2") for sku in skus]) for n in range(40)]
    async with jetstream(nats_url) as (_, js):
        journal = Journal(js, unique)
        await ensure_stream(js, journal.stream)
        spec = await journal.consumer(f"batch{unique}")
        for sale in sales:
            await journal.publish(sale)
        consumer = EventConsumer(js, spec, sales_handlers(service), unit_of_work, batch_size=spec.fetch_batch)
        with caplog.at_level(logging.INFO, logger="servicekit.consumer"):
            await journal.run_until_settled(consumer)
    assert "a batch failed as a whole" not in caplog.text
    assert consumer.stats.handled == len(sales)
    for sku in skus:
        assert (await level(inventory_url, sku, store))["on_hand"] == Decimal(1000 - 2 * len(sales))
    changes = [e.message for e in await outbox_events(inventory_url, events_pb2.StockLevelChanged)]
    ours = [m for m in changes if m.sku in skus]
    # Sale by sale, each level would have been announced 40 times; a batch announces it once.
    assert len(ours) < len(sales)
    assert {m.sku: Decimal(m.on_hand.value) for m in ours} == dict.fromkeys(skus, Decimal(1000 - 2 * len(sales)))


async def test_two_replicas_on_one_durable_and_repeated_deliveries_apply_each_sale_once(
    service: InventoryService, unit_of_work: Callable[[], UnitOfWork], inventory_url: str, nats_url: str, unique: str
) -> None:
    stores = [f"S{unique}", f"T{unique}"]
    skus = [f"HOT{unique}-{n}" for n in range(4)]
    for sku in skus:
        await stock(inventory_url, sku, dict.fromkeys(stores, Decimal(500)))
    sales = [
        journal_sale(
            f"{stores[n % 2]}-POS01-{n:03}",
            stores[n % 2],
            [(skus[n % 4], "1"), (skus[(n + 1) % 4], "2")],
            is_return=n % 10 == 9,
        )
        for n in range(200)
    ]
    async with jetstream(nats_url) as (_, js):
        journal = Journal(js, unique)
        await ensure_stream(js, journal.stream)
        spec = await journal.consumer(f"replicas{unique}", ack_wait_seconds=1.0)
        for sale in sales:
            await journal.publish(sale)
        # A replica applies the first sales in two batches, then dies before its acks reach the
        # broker: JetStream delivers those sales again, after ack_wait, to the replicas left.
        async with jetstream(nats_url) as (_, doomed):
            subscription = await doomed.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
            fetched: list[Any] = []
            while len(fetched) < 60:
                fetched += await subscription.fetch(60 - len(fetched), timeout=5)
        crashed = EventConsumer(js, spec, sales_handlers(service), unit_of_work)
        for part in (fetched[:25], fetched[25:]):
            assert await crashed._handle_together(part, asyncio.Event()) == []
        assert crashed.stats.handled == 60
        replicas = [
            EventConsumer(js, spec, sales_handlers(service), unit_of_work, batch_size=size)
            for size in (spec.fetch_batch, 7)
        ]
        await journal.run_until_settled(*replicas)
    assert sum(replica.stats.handled for replica in replicas) == len(sales) - 60
    assert sum(replica.stats.duplicates for replica in replicas) >= 60
    expected: dict[tuple[str, str], Decimal] = {}
    for sale in sales:
        sign = 1 if sale.kind == sales_pb2.SALE_KIND_RETURN else -1
        for line in sale.lines:
            key = (line.sku, sale.location_id)
            expected[key] = expected.get(key, Decimal(500)) + sign * Decimal(line.quantity.value)
    for (sku, store), on_hand in expected.items():
        assert (await level(inventory_url, sku, store))["on_hand"] == on_hand  # also: balance = ledger
    movements = await sale_movements(inventory_url, skus)
    assert len(movements) == len({(m[0], m[1]) for m in movements}) == 2 * len(sales)  # each line moved once
