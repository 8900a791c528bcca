"""Inventory's integration events: written to the outbox with the change, and relayed to NATS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import money_pb2
from retail.inventory.v1 import events_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from services.inventory.bootstrap import InventoryApp
from services.inventory.domain.model import CountedLine, OutOfStock, Reservation, UnknownSku
from services.inventory.entrypoints.wire import map_reserve
from services.inventory.service_layer.handlers import InventoryService
from services.inventory.service_layer.transfers import TransferSaga, record_stock_count
from tests.integration.inventory.conftest import outbox_events, stock
from tests.integration.inventory.test_reservations import reserve, reserve_request
from tests.integration.inventory.test_transfers_and_counts import InjectedFault, UowFactory, step
from tests.support.clock import HandClock
from tests.support.messaging import jetstream, receive

LEVEL = "retail.inventory.v1.stock_level_changed"


async def sell(
    service: InventoryService,
    unit_of_work: UowFactory,
    sale_id: str,
    location_id: str,
    lines: list[tuple[str, Decimal]],
    *,
    reservation_id: str = "",
    is_return: bool = False,
    occurred_at: datetime | None = None,
) -> None:
    await step(
        unit_of_work,
        lambda uow: service.apply_sale(
            uow,
            sale_id=sale_id,
            location_id=location_id,
            is_return=is_return,
            lines=lines,
            reservation_id=reservation_id,
            occurred_at=occurred_at,
        ),
    )


def figures(event: events_pb2.StockLevelChanged) -> tuple[str, str, str, str, str, str, str]:
    """(sku, location, on_hand, reserved, in_transit, safety_stock, available_to_promise) as on the wire."""
    return (
        event.sku,
        event.location_id,
        event.on_hand.value,
        event.reserved.value,
        event.in_transit.value,
        event.safety_stock.value,
        event.available_to_promise.value,
    )


def at(timestamp: Timestamp) -> datetime:
    return timestamp.ToDatetime(tzinfo=UTC)


def held(
    event: events_pb2.ReservationMade
    | events_pb2.ReservationCommitted
    | events_pb2.ReservationReleased
    | events_pb2.ReservationExpired,
) -> list[tuple[str, str]]:
    return [(allocation.location_id, allocation.quantity.value) for allocation in event.allocations]


async def test_a_coalesced_burst_announces_the_level_once_and_each_granted_reservation_once(
    service: InventoryService, inventory_url: str, clock: HandClock
) -> None:
    await stock(inventory_url, "HOT", {"ONLINE01": Decimal(10)}, safety=Decimal(1))
    twice = reserve_request("HOT", "1", location_id="ONLINE01", channel="app", ttl_seconds=600)
    requests = [reserve_request("HOT", "1", location_id="ONLINE01", channel="app", ttl_seconds=600) for _ in range(29)]
    requests[3:3] = [twice]
    requests[7:7] = [twice]  # the same request twice in the batch: one reservation, one answer
    outcomes = await asyncio.gather(*(service.reserve(map_reserve(r)) for r in requests), return_exceptions=True)
    assert (service.coalescer.stats.batches, service.coalescer.stats.largest_batch) == (1, 31), "one transaction"
    granted = {o.reservation_id: o for o in outcomes if isinstance(o, Reservation)}
    assert len(granted) == 9  # 10 on hand, 1 of it safety stock
    assert sum(isinstance(o, OutOfStock) for o in outcomes) == 21

    (level_event,) = await outbox_events(inventory_url, events_pb2.StockLevelChanged)
    assert (level_event.subject, level_event.aggregate_id) == (f"{LEVEL}.ONLINE01", "HOT@ONLINE01")
    assert figures(level_event.message) == ("HOT", "ONLINE01", "10", "9", "0", "1", "0")
    assert level_event.message.cause == events_pb2.STOCK_CHANGE_CAUSE_RESERVATION
    assert at(level_event.message.occurred_at) == clock.now
    made = await outbox_events(inventory_url, events_pb2.ReservationMade)
    assert sorted(e.message.reservation_id for e in made) == sorted(granted)
    for event in made:
        assert event.subject == "retail.inventory.v1.reservation_made.ONLINE01"
        assert event.aggregate_id == f"reservation:{event.message.reservation_id}"
        assert (event.message.sku, event.message.channel, held(event.message)) == ("HOT", "app", [("ONLINE01", "1")])
        assert at(event.message.expires_at) == granted[event.message.reservation_id].expires_at
        assert at(event.message.expires_at) == clock.now + timedelta(seconds=600)

    # A retried request is answered from the request log; a refusal changes nothing: no new events.
    assert (await service.reserve(map_reserve(twice))).reservation_id in granted
    with pytest.raises(OutOfStock):
        await reserve(service, "HOT", "1", location_id="ONLINE01")
    assert len(await outbox_events(inventory_url, events_pb2.StockLevelChanged)) == 1
    assert len(await outbox_events(inventory_url, events_pb2.ReservationMade)) == 9


async def test_a_split_reservation_announces_each_level_it_holds_and_itself_once(
    service: InventoryService, inventory_url: str
) -> None:
    await stock(inventory_url, "SPLIT", {"S001": Decimal(3), "S002": Decimal(8)})
    reservation = await reserve(service, "SPLIT", "9", channel="click_and_collect", allow_split=True)
    levels = await outbox_events(inventory_url, events_pb2.StockLevelChanged)
    assert [(e.subject, figures(e.message)) for e in levels] == [
        (f"{LEVEL}.S001", ("SPLIT", "S001", "3", "1", "0", "0", "2")),
        (f"{LEVEL}.S002", ("SPLIT", "S002", "8", "8", "0", "0", "0")),
    ]
    (made,) = await outbox_events(inventory_url, events_pb2.ReservationMade)
    assert made.subject == "retail.inventory.v1.reservation_made.S001"  # the lowest location holding units
    assert (made.message.reservation_id, sorted(held(made.message))) == (
        reservation.reservation_id,
        [("S001", "1"), ("S002", "8")],
    )


async def test_a_sale_carrying_a_reservation_commits_it_and_announces_the_level_it_leaves(
    service: InventoryService, unit_of_work: UowFactory, inventory_url: str, clock: HandClock
) -> None:
    await stock(inventory_url, "PAID", {"ONLINE01": Decimal(10)})
    reservation = await reserve(service, "PAID", "3", location_id="ONLINE01", channel="app")
    await step(unit_of_work, lambda uow: service.commit(uow, reservation.reservation_id))
    # Paid is not yet sold: the units are still held until the journaled sale arrives.
    assert await outbox_events(inventory_url, events_pb2.ReservationCommitted) == []
    clock.advance(minutes=2)
    await sell(
        service, unit_of_work, "paid-1", "ONLINE01", [("PAID", Decimal(2))], reservation_id=reservation.reservation_id
    )

    (committed,) = await outbox_events(inventory_url, events_pb2.ReservationCommitted)
    assert committed.subject == "retail.inventory.v1.reservation_committed.ONLINE01"
    assert committed.aggregate_id == f"reservation:{reservation.reservation_id}"
    message = committed.message
    assert (message.reservation_id, message.sku, message.channel, message.sale_id, held(message)) == (
        reservation.reservation_id,
        "PAID",
        "app",
        "paid-1",
        [("ONLINE01", "3")],
    )
    assert at(message.occurred_at) == clock.now
    reserved, sold = await outbox_events(inventory_url, events_pb2.StockLevelChanged)
    assert reserved.message.cause == events_pb2.STOCK_CHANGE_CAUSE_RESERVATION
    # Two sold, the third unit held went back: one event for the level, as the sale left it.
    assert figures(sold.message) == ("PAID", "ONLINE01", "8", "0", "0", "0", "8")
    assert (sold.message.cause, at(sold.message.occurred_at)) == (events_pb2.STOCK_CHANGE_CAUSE_SALE, clock.now)


async def test_journaled_sales_and_returns_announce_every_level_they_change(
    service: InventoryService, unit_of_work: UowFactory, inventory_url: str
) -> None:
    await stock(inventory_url, "MILK", {"S001": Decimal(10)})
    await stock(inventory_url, "EGGS", {"S001": Decimal(1)})
    offline_sale_at = datetime(2026, 11, 23, 20, 15, tzinfo=UTC)  # replayed hours later by a till
    await sell(
        service,
        unit_of_work,
        "till-1",
        "S001",
        [("EGGS", Decimal(3)), ("MILK", Decimal(4))],
        occurred_at=offline_sale_at,
    )
    await sell(service, unit_of_work, "till-2", "S001", [("MILK", Decimal(1))], is_return=True)
    levels = await outbox_events(inventory_url, events_pb2.StockLevelChanged)
    assert [(figures(e.message), e.message.cause) for e in levels] == [
        (("EGGS", "S001", "-2", "0", "0", "0", "0"), events_pb2.STOCK_CHANGE_CAUSE_SALE),
        (("MILK", "S001", "6", "0", "0", "0", "6"), events_pb2.STOCK_CHANGE_CAUSE_SALE),
        (("MILK", "S001", "7", "0", "0", "0", "7"), events_pb2.STOCK_CHANGE_CAUSE_RETURN),
    ]
    (short,) = await outbox_events(inventory_url, events_pb2.StockDiscrepancyRecorded)
    assert (short.message.sku, short.message.sale_id, short.message.on_hand_after.value) == ("EGGS", "till-1", "-2")
    assert at(short.message.occurred_at) == offline_sale_at  # when the sale happened, not when it was applied


async def test_a_release_announces_the_reservation_and_the_level_it_frees(
    service: InventoryService, unit_of_work: UowFactory, inventory_url: str, clock: HandClock
) -> None:
    await stock(inventory_url, "BACK", {"S001": Decimal(10)})
    reservation = await reserve(service, "BACK", "3", location_id="S001", channel="click_and_collect")
    clock.advance(minutes=1)
    await step(unit_of_work, lambda uow: service.release(uow, reservation.reservation_id))
    (released,) = await outbox_events(inventory_url, events_pb2.ReservationReleased)
    assert released.subject == "retail.inventory.v1.reservation_released.S001"
    message = released.message
    assert (message.reservation_id, message.sku, message.channel, held(message), at(message.occurred_at)) == (
        reservation.reservation_id,
        "BACK",
        "click_and_collect",
        [("S001", "3")],
        clock.now,
    )
    last = (await outbox_events(inventory_url, events_pb2.StockLevelChanged))[-1].message
    assert (figures(last), last.cause) == (
        ("BACK", "S001", "10", "0", "0", "0", "10"),
        events_pb2.STOCK_CHANGE_CAUSE_RELEASE,
    )


async def test_an_expiry_sweep_announces_every_expired_reservation_and_each_level_once(
    service: InventoryService, inventory_url: str, clock: HandClock
) -> None:
    await stock(inventory_url, "LAPSE", {"S001": Decimal(10), "S002": Decimal(10)})
    due = [
        await reserve(service, "LAPSE", q, location_id=where, ttl_seconds=60)
        for q, where in (("1", "S001"), ("2", "S001"), ("3", "S001"), ("4", "S002"))
    ]
    kept = await reserve(service, "LAPSE", "4", location_id="S001", ttl_seconds=600)
    announced_before = len(await outbox_events(inventory_url, events_pb2.StockLevelChanged))
    clock.advance(seconds=61)
    assert await service.expire_due() == 4

    expired = await outbox_events(inventory_url, events_pb2.ReservationExpired)
    assert sorted(e.message.reservation_id for e in expired) == sorted(r.reservation_id for r in due)
    by_id = {r.reservation_id: r for r in due}
    for event in expired:
        reservation = by_id[event.message.reservation_id]
        location_id = reservation.allocations[0].location_id
        assert event.subject == f"retail.inventory.v1.reservation_expired.{location_id}"
        assert held(event.message) == [(location_id, str(reservation.quantity))]
        assert (at(event.message.expires_at), at(event.message.occurred_at)) == (reservation.expires_at, clock.now)
    sweep = (await outbox_events(inventory_url, events_pb2.StockLevelChanged))[announced_before:]
    # Three reservations expired at S001: one event for that level, as the sweep left it.
    assert [(figures(e.message), e.message.cause) for e in sweep] == [
        (("LAPSE", "S001", "10", "4", "0", "0", "6"), events_pb2.STOCK_CHANGE_CAUSE_EXPIRY),
        (("LAPSE", "S002", "10", "0", "0", "0", "10"), events_pb2.STOCK_CHANGE_CAUSE_EXPIRY),
    ]
    assert kept.reservation_id not in {e.message.reservation_id for e in expired}


async def test_each_transfer_step_announces_its_state_and_the_levels_it_moves_and_a_failed_step_nothing(
    unit_of_work: UowFactory, inventory_url: str
) -> None:
    await stock(inventory_url, "MOVE", {"S001": Decimal(20), "S002": Decimal(5)})
    armed = {"step": "dispatch"}

    def fault(current: str) -> None:
        if armed["step"] == current:
            armed["step"] = ""
            raise InjectedFault(current)

    saga = TransferSaga(fault)
    transfer = await step(
        unit_of_work,
        lambda uow: saga.request(uow, sku="MOVE", quantity=Decimal(8), from_location="S001", to_location="S002"),
    )
    with pytest.raises(InjectedFault):
        await step(unit_of_work, lambda uow: saga.dispatch(uow, transfer.transfer_id))
    await step(unit_of_work, lambda uow: saga.dispatch(uow, transfer.transfer_id))  # the retry
    await step(unit_of_work, lambda uow: saga.receive(uow, transfer.transfer_id, Decimal(7)))

    states = await outbox_events(inventory_url, events_pb2.TransferStateChanged)
    assert {(e.subject, e.aggregate_id) for e in states} == {
        ("retail.inventory.v1.transfer_state_changed.S001.S002", f"transfer:{transfer.transfer_id}")
    }
    assert [
        (e.message.status, e.message.HasField("received_quantity"), e.message.HasField("shrink_quantity"))
        for e in states
    ] == [
        (pb.TRANSFER_STATUS_REQUESTED, False, False),
        (pb.TRANSFER_STATUS_DISPATCHED, False, False),  # once: the failed attempt rolled its event back
        (pb.TRANSFER_STATUS_RECEIVED, True, True),
    ]
    received = states[-1].message
    assert (received.transfer_id, received.sku, received.from_location_id, received.to_location_id) == (
        transfer.transfer_id,
        "MOVE",
        "S001",
        "S002",
    )
    shipped = (received.quantity.value, received.received_quantity.value, received.shrink_quantity.value)
    assert shipped == ("8", "7", "1")
    levels = await outbox_events(inventory_url, events_pb2.StockLevelChanged)
    assert [figures(e.message) for e in levels] == [
        ("MOVE", "S001", "20", "8", "0", "0", "12"),  # requested: the source holds
        ("MOVE", "S001", "12", "0", "0", "0", "12"),  # dispatched: gone from the source ...
        ("MOVE", "S002", "5", "0", "8", "0", "5"),  # ... and in transit to the destination
        ("MOVE", "S002", "12", "0", "0", "0", "12"),  # received, one unit short
    ]
    assert {e.message.cause for e in levels} == {events_pb2.STOCK_CHANGE_CAUSE_TRANSFER}


async def test_a_cancelled_transfer_announces_it_and_the_released_hold(
    unit_of_work: UowFactory, inventory_url: str
) -> None:
    await stock(inventory_url, "STAY", {"S001": Decimal(10), "S002": Decimal(0)})
    saga = TransferSaga()
    transfer = await step(
        unit_of_work,
        lambda uow: saga.request(uow, sku="STAY", quantity=Decimal(6), from_location="S001", to_location="S002"),
    )
    await step(unit_of_work, lambda uow: saga.cancel(uow, transfer.transfer_id))
    states = await outbox_events(inventory_url, events_pb2.TransferStateChanged)
    assert [e.message.status for e in states] == [pb.TRANSFER_STATUS_REQUESTED, pb.TRANSFER_STATUS_CANCELLED]
    assert [figures(e.message) for e in await outbox_events(inventory_url, events_pb2.StockLevelChanged)] == [
        ("STAY", "S001", "10", "6", "0", "0", "4"),
        ("STAY", "S001", "10", "0", "0", "0", "10"),
    ]


async def test_a_stock_count_announces_the_levels_it_adjusted_and_a_refused_count_nothing(
    unit_of_work: UowFactory, inventory_url: str
) -> None:
    await stock(inventory_url, "CNT-A", {"S001": Decimal(10)}, safety=Decimal(2))
    await stock(inventory_url, "CNT-B", {"S001": Decimal(4)})
    with pytest.raises(UnknownSku):
        await step(
            unit_of_work,
            lambda uow: record_stock_count(
                uow, "S001", [CountedLine("CNT-A", Decimal(1)), CountedLine("NOPE", Decimal(1))]
            ),
        )
    assert await outbox_events(inventory_url, events_pb2.StockLevelChanged) == []
    await step(
        unit_of_work,
        lambda uow: record_stock_count(
            uow, "S001", [CountedLine("CNT-A", Decimal("8.5"), "damaged"), CountedLine("CNT-B", Decimal(4))]
        ),
    )
    (counted,) = await outbox_events(inventory_url, events_pb2.StockLevelChanged)  # CNT-B was as booked
    assert (counted.subject, figures(counted.message), counted.message.cause) == (
        f"{LEVEL}.S001",
        ("CNT-A", "S001", "8.5", "0", "0", "2", "6.5"),
        events_pb2.STOCK_CHANGE_CAUSE_COUNT,
    )


async def test_the_relay_publishes_a_reservation_made_over_grpc_to_the_inventory_stream(
    app: InventoryApp, inventory_url: str, nats_url: str, unique: str
) -> None:
    location_id = f"ONLINE{unique}"  # the INVENTORY stream is shared by the test run; this subject is ours
    await stock(inventory_url, "RELAYED", {location_id: Decimal(5)})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        answer = await pb_grpc.InventoryServiceStub(channel).ReserveStock(
            pb.ReserveStockRequest(
                request_id=unique,
                sku="RELAYED",
                quantity=money_pb2.Decimal(value="2"),
                location_id=location_id,
                channel="app",
            ),
            timeout=5,
        )
    async with jetstream(nats_url) as (_, js):
        (level_message,) = await receive(js, "INVENTORY", f"{LEVEL}.{location_id}", 1)
        (made_message,) = await receive(js, "INVENTORY", f"retail.inventory.v1.reservation_made.{location_id}", 1)
    level_event = events_pb2.StockLevelChanged.FromString(level_message.data)
    made = events_pb2.ReservationMade.FromString(made_message.data)
    assert figures(level_event) == ("RELAYED", location_id, "5", "2", "0", "0", "3")
    assert made.reservation_id == answer.reservation.reservation_id
    assert (made_message.headers or {})[EVENT_TYPE_HEADER] == "retail.inventory.v1.ReservationMade"
    (written,) = await outbox_events(inventory_url, events_pb2.ReservationMade)
    assert (made_message.headers or {})[MSG_ID_HEADER] == str(written.event_id)
