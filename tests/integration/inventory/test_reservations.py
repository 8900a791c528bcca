"""Reservations against real PostgreSQL: never oversell, however hard they are hit."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import TypedDict, Unpack

import pytest
from retail.common.v1 import money_pb2
from retail.inventory.v1 import events_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from servicekit.idempotency import RequestIdReused
from services.inventory.domain.model import (
    ZERO,
    MovementKind,
    OutOfStock,
    Reservation,
    ReservationNotActive,
    ReservationNotFound,
    ReservationStatus,
    UnknownLocation,
    UnknownSku,
    format_quantity,
)
from services.inventory.entrypoints.wire import map_reserve
from services.inventory.service_layer.handlers import InventoryService
from tests.integration.inventory.conftest import level, outbox_events, stock
from tests.support.clock import HandClock


def reserve_request(
    sku: str,
    quantity: str,
    *,
    location_id: str = "",
    channel: str = "",
    request_id: str = "",
    ttl_seconds: int = 0,
    allow_split: bool = False,
    owner: str = "",
) -> pb.ReserveStockRequest:
    return pb.ReserveStockRequest(
        request_id=request_id or str(uuid.uuid4()),
        sku=sku,
        quantity=money_pb2.Decimal(value=quantity),
        location_id=location_id,
        channel=channel,
        ttl_seconds=ttl_seconds,
        allow_split=allow_split,
        owner=owner,
    )


class ReserveOptions(TypedDict, total=False):
    location_id: str
    channel: str
    request_id: str
    ttl_seconds: int
    allow_split: bool
    owner: str


async def reserve(service: InventoryService, sku: str, quantity: str, **options: Unpack[ReserveOptions]) -> Reservation:
    return await service.reserve(map_reserve(reserve_request(sku, quantity, **options)))


async def test_three_hundred_buyers_of_one_hot_sku_get_exactly_the_stock_there_is(
    service: InventoryService, inventory_url: str
) -> None:
    await stock(inventory_url, "HOT", {"ONLINE01": Decimal(100)})
    outcomes = await asyncio.gather(
        *(reserve(service, "HOT", "1", location_id="ONLINE01") for _ in range(300)), return_exceptions=True
    )
    granted = [o for o in outcomes if isinstance(o, Reservation)]
    refused = [o for o in outcomes if isinstance(o, OutOfStock)]
    assert (len(granted), len(refused)) == (100, 200)
    assert len({r.reservation_id for r in granted}) == 100
    assert refused[0].details["available"] == "0"
    after = await level(inventory_url, "HOT", "ONLINE01")
    assert (after["on_hand"], after["reserved"]) == (Decimal(100), Decimal(100))
    # The burst was coalesced: far fewer transactions than requests.
    assert service.coalescer.stats.batches < 300
    assert service.coalescer.stats.largest_batch > 1


async def test_requests_in_one_batch_are_served_in_arrival_order(service: InventoryService, inventory_url: str) -> None:
    await stock(inventory_url, "ORDER", {"S001": Decimal(5)})
    quantities = ["3", "4", "2", "1"]  # 3 fits, 4 does not (2 left), 2 fits, 1 does not (0 left)
    outcomes = await asyncio.gather(
        *(reserve(service, "ORDER", q, location_id="S001") for q in quantities), return_exceptions=True
    )
    assert [isinstance(o, Reservation) for o in outcomes] == [True, False, True, False]


async def test_a_request_id_retried_returns_the_first_reservation_and_holds_nothing_more(
    service: InventoryService, inventory_url: str
) -> None:
    await stock(inventory_url, "RETRY", {"S001": Decimal(10)})
    request = reserve_request("RETRY", "2", location_id="S001", request_id="order-42")
    first = await service.reserve(map_reserve(request))
    again = await asyncio.gather(*(service.reserve(map_reserve(request)) for _ in range(20)))
    assert {r.reservation_id for r in again} == {first.reservation_id}
    assert (await level(inventory_url, "RETRY", "S001"))["reserved"] == Decimal(2)
    with pytest.raises(RequestIdReused):
        await service.reserve(map_reserve(reserve_request("RETRY", "3", location_id="S001", request_id="order-42")))


async def test_bad_reservations_are_refused_precisely_and_change_nothing(
    service: InventoryService, inventory_url: str
) -> None:
    await stock(inventory_url, "GOOD", {"S001": Decimal(10)})
    with pytest.raises(UnknownSku):
        await reserve(service, "NOPE", "1", location_id="S001")
    with pytest.raises(UnknownLocation):
        await reserve(service, "GOOD", "1", location_id="S999")
    for quantity in ("0", "-1", "abc", "1000000", "0.0001", "NaN"):
        with pytest.raises(InvalidArgument):
            await reserve(service, "GOOD", quantity, location_id="S001")
    with pytest.raises(InvalidArgument):
        await reserve(service, "GOOD", "1", location_id="S001", ttl_seconds=10**7)
    after = await level(inventory_url, "GOOD", "S001")
    assert (after["on_hand"], after["reserved"]) == (Decimal(10), ZERO)


async def test_safety_stock_is_never_promised(service: InventoryService, inventory_url: str) -> None:
    await stock(inventory_url, "SAFE", {"S001": Decimal(10)}, safety=Decimal(4))
    await reserve(service, "SAFE", "6", location_id="S001")
    with pytest.raises(OutOfStock):
        await reserve(service, "SAFE", "1", location_id="S001")


async def test_without_a_location_the_one_with_most_available_for_the_channel_is_chosen(
    service: InventoryService, inventory_url: str
) -> None:
    await stock(inventory_url, "PICK", {"S001": Decimal(3), "S002": Decimal(8), "ONLINE01": Decimal(5)})
    reservation = await reserve(service, "PICK", "4", channel="click_and_collect")
    assert [a.location_id for a in reservation.allocations] == ["S002"]
    with pytest.raises(OutOfStock):
        await reserve(service, "PICK", "9", channel="click_and_collect")
    split = await reserve(service, "PICK", "9", channel="click_and_collect", allow_split=True)
    assert sorted((a.location_id, a.quantity) for a in split.allocations) == [
        ("ONLINE01", Decimal(5)),
        ("S002", Decimal(4)),
    ]


async def test_release_and_expiry_give_units_back_once(
    service: InventoryService, unit_of_work: Callable[[], UnitOfWork], inventory_url: str, clock: HandClock
) -> None:
    await stock(inventory_url, "BACK", {"S001": Decimal(10)})
    released = await reserve(service, "BACK", "3", location_id="S001")
    expiring = await reserve(service, "BACK", "4", location_id="S001", ttl_seconds=60)
    async with unit_of_work() as uow:
        await service.release(uow, released.reservation_id)
        await uow.commit()
    with pytest.raises(ReservationNotActive):
        async with unit_of_work() as uow:
            await service.release(uow, released.reservation_id)
    clock.advance(seconds=61)
    assert await service.expire_due() == 1
    assert await service.expire_due() == 0
    with pytest.raises(ReservationNotActive):
        async with unit_of_work() as uow:
            await service.commit(uow, expiring.reservation_id)
    assert (await service.get_reservation(expiring.reservation_id)).status is ReservationStatus.EXPIRED
    after = await level(inventory_url, "BACK", "S001")
    assert (after["on_hand"], after["reserved"]) == (Decimal(10), ZERO)


@pytest.mark.slow
async def test_a_storm_of_reservations_releases_expiries_commits_and_sales_ends_with_exactly_the_stock_there_was(
    service: InventoryService, unit_of_work: Callable[[], UnitOfWork], inventory_url: str, clock: HandClock
) -> None:
    await stock(inventory_url, "STORM", {"S001": Decimal(60), "S002": Decimal(40)})
    rng = random.Random(20261124)
    sold = {"S001": ZERO, "S002": ZERO}
    committed: list[Reservation] = []

    async def buyer(n: int) -> None:
        location = rng.choice(["S001", "S002"])
        try:
            reservation = await reserve(
                service, "STORM", str(rng.randint(1, 3)), location_id=location, ttl_seconds=rng.choice([30, 600])
            )
        except OutOfStock:
            return
        fate = rng.random()
        async with unit_of_work() as uow:
            try:
                if fate < 0.3:
                    await service.release(uow, reservation.reservation_id)
                elif fate < 0.7:
                    await service.commit(uow, reservation.reservation_id)
                    committed.append(reservation)
                await uow.commit()
            except ReservationNotActive:
                pass  # expired meanwhile: that is allowed to happen

    async def walk_in_sale(n: int) -> None:
        location = rng.choice(["S001", "S002"])
        async with unit_of_work() as uow:
            await service.apply_sale(
                uow,
                sale_id=f"walk-in-{n}",
                location_id=location,
                is_return=False,
                lines=[("STORM", Decimal(1))],
                reservation_id="",
                occurred_at=None,
            )
            await uow.commit()
        sold[location] += 1

    async def sweeper() -> None:
        for _ in range(5):
            clock.advance(seconds=10)
            await service.expire_due()
            await asyncio.sleep(0)

    jobs = [buyer(n) for n in range(250)] + [walk_in_sale(n) for n in range(20)] + [sweeper()]
    rng.shuffle(jobs)
    await asyncio.gather(*jobs)
    # Committed orders are paid: their sales arrive through the journal and sell the held units.
    for n, reservation in enumerate(committed):
        allocation = reservation.allocations[0]
        async with unit_of_work() as uow:
            await service.apply_sale(
                uow,
                sale_id=f"online-{n}",
                location_id=allocation.location_id,
                is_return=False,
                lines=[(reservation.sku, allocation.quantity)],
                reservation_id=reservation.reservation_id,
                occurred_at=None,
            )
            await uow.commit()
        sold[allocation.location_id] += allocation.quantity
    clock.advance(hours=1)
    while await service.expire_due():
        pass
    announced = {
        e.message.location_id: e.message for e in await outbox_events(inventory_url, events_pb2.StockLevelChanged)
    }
    for location, opening in (("S001", Decimal(60)), ("S002", Decimal(40))):
        after = await level(inventory_url, "STORM", location)  # also proves balance = ledger
        assert after["reserved"] == ZERO, "every reservation ended (sold, released or expired)"
        assert after["on_hand"] == opening - sold[location]
        assert after["on_hand"] >= ZERO, "reservations can never oversell"
        last = announced[location]  # a projection keeping the latest event ends where the database did
        assert (last.on_hand.value, last.reserved.value) == (format_quantity(after["on_hand"]), "0")
    made = [e.message.reservation_id for e in await outbox_events(inventory_url, events_pb2.ReservationMade)]
    ended = [e.message.reservation_id for e in await outbox_events(inventory_url, events_pb2.ReservationCommitted)]
    ended += [e.message.reservation_id for e in await outbox_events(inventory_url, events_pb2.ReservationReleased)]
    ended += [e.message.reservation_id for e in await outbox_events(inventory_url, events_pb2.ReservationExpired)]
    assert len(set(made)) == len(made)
    assert sorted(ended) == sorted(made), "each reservation ended exactly once: sold, released or expired"
    assert await outbox_events(inventory_url, events_pb2.StockDiscrepancyRecorded) == []


async def test_a_sale_carrying_a_committed_reservation_sells_the_held_units_once(
    service: InventoryService, unit_of_work: Callable[[], UnitOfWork], inventory_url: str
) -> None:
    await stock(inventory_url, "PAID", {"ONLINE01": Decimal(10)})
    reservation = await reserve(service, "PAID", "3", location_id="ONLINE01")
    async with unit_of_work() as uow:
        await service.commit(uow, reservation.reservation_id)
        await uow.commit()
    async with unit_of_work() as uow:
        await service.apply_sale(
            uow,
            sale_id="paid-1",
            location_id="ONLINE01",
            is_return=False,
            lines=[("PAID", Decimal(3))],
            reservation_id=reservation.reservation_id,
            occurred_at=None,
        )
        await uow.commit()
    assert await outbox_events(inventory_url, events_pb2.StockDiscrepancyRecorded) == []
    after = await level(inventory_url, "PAID", "ONLINE01")
    assert (after["on_hand"], after["reserved"]) == (Decimal(7), ZERO)
    fulfilled = await service.get_reservation(reservation.reservation_id)
    assert (fulfilled.status, fulfilled.sale_id) == (ReservationStatus.FULFILLED, "paid-1")
    assert MovementKind.RESERVED_SALE.value == "reserved_sale"


async def test_another_client_cannot_see_commit_or_release_a_reservation(
    service: InventoryService, unit_of_work: Callable[[], UnitOfWork], inventory_url: str
) -> None:
    await stock(inventory_url, "MINE", {"ONLINE01": Decimal(5)})
    mine = await service.reserve(map_reserve(reserve_request("MINE", "2", location_id="ONLINE01", owner="APP-A")))
    with pytest.raises(ReservationNotFound):
        await service.get_reservation(mine.reservation_id, owner="APP-B")
    for action in (service.commit, service.release):
        with pytest.raises(ReservationNotFound):
            async with unit_of_work() as uow:
                await action(uow, mine.reservation_id, "APP-B")
    assert (await service.get_reservation(mine.reservation_id, owner="APP-A")).status is ReservationStatus.ACTIVE
    assert (await level(inventory_url, "MINE", "ONLINE01"))["reserved"] == Decimal(2)
