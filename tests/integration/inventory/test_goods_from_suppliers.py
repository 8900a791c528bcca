"""Supply's goods receipts and returns to vendor move stock exactly once, and the ledger still explains it.

Real PostgreSQL and NATS: the events are published to the SUPPLY stream as supply's outbox
relay publishes them, and handled by the real consumer runner (inbox, batches, redelivery) —
through the whole inventory service where the wiring is what is tested. Every receipt's
line is applied once whether the event is redelivered after a lost ack, published again
under another message id, or handled by two consumers at the same moment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext
from retail.common.v1 import money_pb2
from retail.inventory.v1 import events_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc as pb_grpc
from retail.supply.v1 import events_pb2 as supply_events_pb2
from retail.supply.v1 import supply_service_pb2 as supply_pb2

from servicekit.consumer import EventConsumer
from servicekit.db import UnitOfWork
from servicekit.messaging import DEAD_LETTER_STREAM, ConsumerSpec, StreamSpec, ensure_consumer, ensure_stream
from servicekit.outbox import AGGREGATE_HEADER, EVENT_TYPE_HEADER, MSG_ID_HEADER, OCCURRED_AT_HEADER
from servicekit.settings import to_plain_url
from services.inventory.bootstrap import InventoryApp, build
from services.inventory.domain.model import LineSource
from services.inventory.entrypoints.supply_consumer import (
    GOODS_RECEIVED_SUBJECT,
    GOODS_RETURNED_TO_VENDOR_SUBJECT,
    SUPPLY_STREAM,
    SUPPLY_SUBJECTS,
    map_supply_lines,
    supply_consumer,
    supply_handlers,
)
from services.inventory.service_layer.handlers import InventoryService
from services.inventory.service_layer.supply import SupplyIntake
from services.inventory.settings import InventorySettings
from tests.integration.inventory.conftest import level, outbox_events, stock
from tests.support.clock import HandClock
from tests.support.messaging import consumer_settled, jetstream

# Supply's stream, as its relay declares it.
SUPPLY = StreamSpec(SUPPLY_STREAM, [SUPPLY_SUBJECTS], description="Facts of the supply context")
ARRIVED = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


def line(sku: str, accepted: str, rejected: str = "0", **fields: str | int) -> supply_pb2.ReceiptLine:
    return supply_pb2.ReceiptLine(
        sku=sku,
        accepted=money_pb2.Decimal(value=accepted),
        rejected=money_pb2.Decimal(value=rejected),
        **fields,  # type: ignore[arg-type]
    )


def moment(at: datetime = ARRIVED) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def receipt(location_id: str, *lines: supply_pb2.ReceiptLine) -> supply_events_pb2.GoodsReceived:
    return supply_events_pb2.GoodsReceived(
        receipt_id=f"GR-{uuid.uuid4().hex[:10]}",
        po_id=f"PO-{uuid.uuid4().hex[:6]}",
        supplier_id="SUP-7",
        location_id=location_id,
        lines=list(lines),
        occurred_at=moment(),
        received_by="clerk-1",
    )


def vendor_return(location_id: str, *lines: supply_pb2.ReceiptLine) -> supply_events_pb2.GoodsReturnedToVendor:
    return supply_events_pb2.GoodsReturnedToVendor(
        return_id=f"RTV-{uuid.uuid4().hex[:10]}",
        po_id="PO-1",
        supplier_id="SUP-7",
        location_id=location_id,
        lines=list(lines),
        occurred_at=moment(),
    )


class Supply:
    """Publishes to the real SUPPLY stream as supply's relay does; what a test published is
    deleted afterwards, so no later test's inventory replays it."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self.sequences: list[int] = []
        self.durables: list[str] = []

    async def publish(self, event: Message, event_id: str | None = None) -> str:
        event_id = event_id or str(uuid.uuid4())
        if isinstance(event, supply_events_pb2.GoodsReceived):
            subject, aggregate = GOODS_RECEIVED_SUBJECT, f"receipt:{event.receipt_id}"
        else:
            assert isinstance(event, supply_events_pb2.GoodsReturnedToVendor)
            subject, aggregate = GOODS_RETURNED_TO_VENDOR_SUBJECT, f"return:{event.return_id}"
        ack = await self.js.publish(
            subject,
            event.SerializeToString(),
            headers={
                MSG_ID_HEADER: event_id,
                EVENT_TYPE_HEADER: event.DESCRIPTOR.full_name,
                OCCURRED_AT_HEADER: ARRIVED.isoformat(),
                AGGREGATE_HEADER: aggregate,
            },
        )
        assert not ack.duplicate, "JetStream dropped it: the same message id within the duplicate window"
        self.sequences.append(ack.seq)
        return event_id

    async def consumer(self, durable: str, *, ack_wait_seconds: float = 30.0) -> ConsumerSpec:
        spec = replace(supply_consumer(durable), ack_wait_seconds=ack_wait_seconds)
        await ensure_consumer(self.js, spec)
        self.durables.append(durable)
        return spec

    async def settled(self, durable: str) -> None:
        """Until the consumer has handled everything on the stream (nothing pending or unacked)."""
        await consumer_settled(self.js, SUPPLY_STREAM, durable, declared_later=True)


@pytest.fixture
async def supply(nats_url: str) -> AsyncIterator[Supply]:
    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, SUPPLY)
        await ensure_stream(js, StreamSpec(DEAD_LETTER_STREAM, ["retail.deadletter.>"]))
        published = Supply(js)
        yield published
        for durable in published.durables:
            await js.delete_consumer(SUPPLY_STREAM, durable)
        for sequence in published.sequences:
            await js.delete_msg(SUPPLY_STREAM, sequence)


@pytest.fixture
def store(unique: str) -> str:
    return f"S{unique}"


@pytest.fixture
def intake(clock: HandClock) -> SupplyIntake:
    return SupplyIntake(clock=clock)


async def run_until_settled(supply: Supply, *consumers: EventConsumer[UnitOfWork]) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(consumer.run(stop)) for consumer in consumers]
    try:
        for durable in {consumer.spec.durable for consumer in consumers}:
            await supply.settled(durable)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def movements(url: str, sku: str, location_id: str) -> list[tuple[str, Decimal, str]]:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        rows = await connection.fetch(
            "SELECT kind, on_hand_delta, reference FROM stock_movement WHERE sku = $1 AND location_id = $2 "
            "AND kind IN ('receipt', 'vendor_return') ORDER BY id",
            sku,
            location_id,
        )
    finally:
        await connection.close()
    return [(row["kind"], row["on_hand_delta"], row["reference"]) for row in rows]


async def query(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


@pytest.fixture
async def app(inventory_url: str, nats_url: str, unique: str, supply: Supply) -> AsyncIterator[InventoryApp]:
    """The whole inventory service, its supply consumer on a durable of this test's own."""
    settings = InventorySettings(
        app_env="test",
        database_url=inventory_url,
        nats_url=nats_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        supply_consumer_durable=f"inventory-supply-{unique}",
    )
    supply.durables.append(settings.supply_consumer_durable)
    app = build(settings)
    await app.server.start()
    yield app
    await app.server.stop()
    await app.close()


async def test_the_service_puts_a_receipts_accepted_units_in_stock_once_and_its_ledger_still_explains_them(
    app: InventoryApp, supply: Supply, inventory_url: str, store: str, unique: str
) -> None:
    shelf, fresh = f"SHELF{unique}", f"FRESH{unique}"
    await stock(inventory_url, shelf, {store: Decimal(5)})
    await stock(inventory_url, fresh, {})  # known to inventory, never stocked at this store
    goods = receipt(
        store,
        line(shelf, "12", "3", reject_reason="crushed", lot="L-0412", expiry_date="2027-01-31", po_line_number=1),
        line(fresh, "4.5", lot="L-9", po_line_number=2),
        line(shelf, "0", "2", reject_reason="expired", po_line_number=3),  # all of it rejected
        line(shelf, "1", lot="L-0413", po_line_number=4),  # the same SKU again, another lot
    )
    durable = f"inventory-supply-{unique}"
    await supply.publish(goods)
    await supply.settled(durable)

    # Only accepted units entered stock, one receipt movement per line that had any.
    assert (await level(inventory_url, shelf, store))["on_hand"] == Decimal(18)
    assert (await level(inventory_url, fresh, store))["on_hand"] == Decimal("4.5")
    assert await movements(inventory_url, shelf, store) == [
        ("receipt", Decimal(12), f"receipt:{goods.receipt_id}#0"),
        ("receipt", Decimal(1), f"receipt:{goods.receipt_id}#3"),
    ]
    # Lot, expiry and what was rejected are kept beside the movement.
    kept = await query(
        inventory_url,
        "SELECT line_index, reference, quantity, rejected, reject_reason, lot, expiry_date, po_id, po_line_number, "
        "supplier_id FROM supply_line WHERE document_id = $1 ORDER BY line_index",
        goods.receipt_id,
    )
    assert [tuple(row) for row in kept] == [
        (0, f"receipt:{goods.receipt_id}#0", 12, 3, "crushed", "L-0412", "2027-01-31", goods.po_id, 1, "SUP-7"),
        (1, f"receipt:{goods.receipt_id}#1", Decimal("4.5"), 0, "", "L-9", "", goods.po_id, 2, "SUP-7"),
        (2, f"receipt:{goods.receipt_id}#2", 0, 2, "expired", "", "", goods.po_id, 3, "SUP-7"),
        (3, f"receipt:{goods.receipt_id}#3", 1, 0, "", "L-0413", "", goods.po_id, 4, "SUP-7"),
    ]
    # Published again under another message id (supply's relay re-sending): nothing moves twice.
    await supply.publish(goods)
    await supply.settled(durable)
    assert (await level(inventory_url, shelf, store))["on_hand"] == Decimal(18)
    assert len(await movements(inventory_url, shelf, store)) == 2
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        for sku, on_hand in ((shelf, "18"), (fresh, "4.5")):
            ledger = await stub.CheckLedger(pb.CheckLedgerRequest(sku=sku, location_id=store), timeout=5)
            assert (ledger.consistent, ledger.ledger_on_hand.value) == (True, on_hand)
    # Each level changed once, announced as a receipt.
    changes = [e.message for e in await outbox_events(inventory_url, events_pb2.StockLevelChanged)]
    assert sorted((m.sku, m.on_hand.value, m.cause) for m in changes) == [
        (fresh, "4.5", events_pb2.STOCK_CHANGE_CAUSE_RECEIPT),
        (shelf, "18", events_pb2.STOCK_CHANGE_CAUSE_RECEIPT),
    ]


async def test_a_receipt_redelivered_after_its_ack_was_lost_changes_nothing_the_second_time(
    supply: Supply, intake: SupplyIntake, unit_of_work: Callable[[], UnitOfWork], inventory_url: str, unique: str
) -> None:
    store, sku = f"S{unique}", f"SHELF{unique}"
    await stock(inventory_url, sku, {store: Decimal(2)})
    spec = await supply.consumer(f"redelivered-{unique}", ack_wait_seconds=1.0)
    goods = receipt(store, line(sku, "10", "1", reject_reason="torn"))
    event_id = await supply.publish(goods)
    crashed = EventConsumer(supply.js, spec, supply_handlers(intake), unit_of_work)
    subscription = await supply.js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
    async with asyncio.timeout(30):
        while True:  # the stream may hold other tests' events before ours
            [message] = await subscription.fetch(1, timeout=5)
            if (message.headers or {}).get(MSG_ID_HEADER) == event_id:
                break
            await crashed.handle(message)
    # The effect commits, then the process dies before its ack reaches the broker.
    assert await crashed._apply(message, dict(message.headers or {}), attempt=1) == "handled"
    await subscription.unsubscribe()
    survivor = EventConsumer(supply.js, spec, supply_handlers(intake), unit_of_work)
    await run_until_settled(supply, survivor)  # JetStream redelivers after ack_wait

    assert survivor.stats.duplicates >= 1
    assert (await level(inventory_url, sku, store))["on_hand"] == Decimal(12)
    assert await movements(inventory_url, sku, store) == [("receipt", Decimal(10), f"receipt:{goods.receipt_id}#0")]


async def test_two_consumers_on_a_batch_of_receipts_each_published_twice_apply_every_line_once(
    supply: Supply,
    intake: SupplyIntake,
    unit_of_work: Callable[[], UnitOfWork],
    service: InventoryService,
    inventory_url: str,
    unique: str,
) -> None:
    store, skus = f"S{unique}", [f"HOT{unique}-{n}" for n in range(3)]
    for sku in skus:
        await stock(inventory_url, sku, {store: Decimal(0)})
    receipts = [receipt(store, *(line(sku, f"{n + 1}") for sku in skus)) for n in range(30)]
    for goods in receipts:  # each twice, under two message ids, as a relay re-sending would
        await supply.publish(goods)
        await supply.publish(goods)
    # Two replicas share one durable; a third consumer of its own sees every event as well.
    shared = await supply.consumer(f"replicas-{unique}")
    other = await supply.consumer(f"another-{unique}")
    consumers = [
        EventConsumer(supply.js, spec, supply_handlers(intake), unit_of_work, batch_size=size)
        for spec, size in ((shared, 4), (shared, 7), (other, 5))
    ]
    await run_until_settled(supply, *consumers)

    assert sum(consumer.stats.handled for consumer in consumers) >= 2 * len(receipts)
    expected = sum(Decimal(n + 1) for n in range(len(receipts)))  # 465 of each SKU, once
    for sku in skus:
        assert (await level(inventory_url, sku, store))["on_hand"] == expected
        applied = await movements(inventory_url, sku, store)
        assert len(applied) == len(receipts)
        assert len({reference for _, _, reference in applied}) == len(receipts)
        position, ledger = await service.ledger_check(sku, store)
        assert ledger == (position.on_hand, position.reserved, position.in_transit)


async def test_the_same_receipt_in_two_transactions_at_once_is_applied_by_the_first_only(
    intake: SupplyIntake, unit_of_work: Callable[[], UnitOfWork], inventory_url: str, unique: str
) -> None:
    store, sku = f"S{unique}", f"SHELF{unique}"
    await stock(inventory_url, sku, {store: Decimal(1)})
    goods = receipt(store, line(sku, "6"))
    lines, _ = map_supply_lines(LineSource.RECEIPT, goods.receipt_id, goods.lines)

    async def apply(uow: UnitOfWork) -> None:
        await intake.apply_lines(uow, source=LineSource.RECEIPT, location_id=store, lines=lines, occurred_at=ARRIVED)

    async def second() -> None:
        async with unit_of_work() as uow:
            await apply(uow)
            await uow.commit()

    async with unit_of_work() as uow:
        await apply(uow)
        racer = asyncio.create_task(second())
        await wait_until_blocked(inventory_url)  # the second waits for the first's claim of the line
        await uow.commit()
    await asyncio.wait_for(racer, 10)
    assert (await level(inventory_url, sku, store))["on_hand"] == Decimal(7)
    assert await movements(inventory_url, sku, store) == [("receipt", Decimal(6), f"receipt:{goods.receipt_id}#0")]


async def test_a_return_to_vendor_takes_its_units_out_once(
    app: InventoryApp, supply: Supply, inventory_url: str, store: str, unique: str
) -> None:
    sku, scarce = f"SHELF{unique}", f"SCARCE{unique}"
    await stock(inventory_url, sku, {store: Decimal(20)})
    await stock(inventory_url, scarce, {store: Decimal(1)})
    goods_back = vendor_return(store, line(sku, "7", lot="L-1"), line(sku, "0.5"), line(scarce, "3"))
    await supply.publish(goods_back)
    await supply.publish(goods_back)  # again, under another message id
    await supply.settled(f"inventory-supply-{unique}")

    assert (await level(inventory_url, sku, store))["on_hand"] == Decimal("12.5")
    assert await movements(inventory_url, sku, store) == [
        ("vendor_return", Decimal(-7), f"vendor-return:{goods_back.return_id}#0"),
        ("vendor_return", Decimal("-0.5"), f"vendor-return:{goods_back.return_id}#1"),
    ]
    # More went back than the books held: applied all the same, and a shortfall to investigate.
    assert (await level(inventory_url, scarce, store))["on_hand"] == Decimal(-2)
    recorded = [e.message for e in await outbox_events(inventory_url, events_pb2.StockDiscrepancyRecorded)]
    assert [(m.sku, m.kind, m.on_hand_after.value, m.sale_id) for m in recorded] == [
        (scarce, pb.STOCK_DISCREPANCY_KIND_NEGATIVE_STOCK, "-2", f"vendor-return:{goods_back.return_id}#2")
    ]
    changes = [e.message for e in await outbox_events(inventory_url, events_pb2.StockLevelChanged)]
    assert sorted((m.sku, m.cause) for m in changes) == sorted(
        [(sku, events_pb2.STOCK_CHANGE_CAUSE_VENDOR_RETURN), (scarce, events_pb2.STOCK_CHANGE_CAUSE_VENDOR_RETURN)]
    )


async def test_receipt_lines_of_an_unknown_sku_or_store_wait_and_are_applied_once_when_both_exist(
    app: InventoryApp, supply: Supply, inventory_url: str, store: str, unique: str
) -> None:
    known, ghost, new_store = f"SHELF{unique}", f"GHOST{unique}", f"N{unique}"
    await stock(inventory_url, known, {store: Decimal(3)})
    goods = receipt(store, line(known, "2"), line(ghost, "8", "1", reject_reason="wet"), line(ghost, "bad"))
    at_new_store = receipt(new_store, line(known, "5"))
    back = vendor_return(store, line(ghost, "3"))
    for event in (goods, at_new_store, back, goods):
        await supply.publish(event)
    await supply.settled(f"inventory-supply-{unique}")

    # Nothing dead-lettered, nothing lost: what could be applied was, the rest waits.
    assert (await level(inventory_url, known, store))["on_hand"] == Decimal(5)
    recorded = [e.message for e in await outbox_events(inventory_url, events_pb2.StockDiscrepancyRecorded)]
    assert sorted((m.sale_id, m.sku, m.location_id, m.kind, m.quantity.value) for m in recorded) == sorted(
        [
            (f"receipt:{goods.receipt_id}#1", ghost, store, pb.STOCK_DISCREPANCY_KIND_UNKNOWN_SKU, "8"),
            (f"receipt:{goods.receipt_id}#2", ghost, store, pb.STOCK_DISCREPANCY_KIND_UNREADABLE_QUANTITY, ""),
            (f"receipt:{at_new_store.receipt_id}#0", known, new_store, pb.STOCK_DISCREPANCY_KIND_UNKNOWN_LOCATION, "5"),
            (f"vendor-return:{back.return_id}#0", ghost, store, pb.STOCK_DISCREPANCY_KIND_UNKNOWN_SKU, "3"),
        ]
    )

    # The SKU arrives (as the catalogue consumer registers it): its waiting lines are applied, once.
    for _ in range(2):
        async with app.connected.unit_of_work() as uow:
            await app.service.register_item(
                uow, sku=ghost, name=ghost, category="", unit="piece", supplier_id="SUP-7", active=True
            )
            await uow.commit()
    assert (await level(inventory_url, ghost, store))["on_hand"] == Decimal(5)
    assert await movements(inventory_url, ghost, store) == [
        ("receipt", Decimal(8), f"receipt:{goods.receipt_id}#1"),
        ("vendor_return", Decimal(-3), f"vendor-return:{back.return_id}#0"),
    ]
    # The store is set up, and headquarters applies what waited for it.
    await query(inventory_url, "INSERT INTO location (location_id, name, kind) VALUES ($1, $1, 'store')", new_store)
    async with app.connected.unit_of_work() as uow:
        report = await app.service.apply_pending_sale_lines(uow, new_store)
        await uow.commit()
    assert (report.applied, report.still_waiting) == (1, 0)
    assert (await level(inventory_url, known, new_store))["on_hand"] == Decimal(5)
    # Receipts and returns to vendor are no demand: the sales history did not move.
    assert await query(inventory_url, "SELECT 1 FROM daily_sales WHERE sku = ANY($1)", [known, ghost]) == []
    causes = [e.message for e in await outbox_events(inventory_url, events_pb2.StockLevelChanged)]
    assert {(m.sku, m.location_id, m.cause) for m in causes} == {
        (known, store, events_pb2.STOCK_CHANGE_CAUSE_RECEIPT),
        (ghost, store, events_pb2.STOCK_CHANGE_CAUSE_VENDOR_RETURN),
        (known, new_store, events_pb2.STOCK_CHANGE_CAUSE_RECEIPT),
    }


async def wait_until_blocked(url: str) -> None:
    """Until a transaction of this database waits for a lock another one holds."""
    async with asyncio.timeout(10):
        while not (
            await query(
                url,
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
        ):
            await asyncio.sleep(0.02)
