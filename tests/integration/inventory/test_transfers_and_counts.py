"""Transfers as a saga and stock counts, against real PostgreSQL, with failures injected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

import asyncpg
import pytest

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from servicekit.settings import to_plain_url
from services.inventory.domain.model import (
    ZERO,
    CountedLine,
    Transfer,
    TransferStatus,
    TransferStepNotAllowed,
    UnknownSku,
)
from services.inventory.service_layer.transfers import TransferSaga, record_stock_count
from tests.integration.inventory.conftest import level, stock

T = TypeVar("T")
UowFactory = Callable[[], UnitOfWork]


class InjectedFault(Exception):
    pass


async def step(unit_of_work: UowFactory, action: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    async with unit_of_work() as uow:
        result = await action(uow)
        await uow.commit()
        return result


async def chain_total(url: str, sku: str) -> Decimal:
    """On-hand plus in-transit of a SKU over every location (also checks balance = ledger)."""
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        locations = [
            r["location_id"] for r in await connection.fetch("SELECT location_id FROM stock_level WHERE sku = $1", sku)
        ]
    finally:
        await connection.close()
    total = ZERO
    for location in locations:
        current = await level(url, sku, location)
        total += current["on_hand"] + current["in_transit"]
    return total


@pytest.mark.parametrize("failing_step", ["request", "dispatch", "receive"])
async def test_a_failure_after_any_step_conserves_stock_and_the_retried_step_completes_the_transfer(
    unit_of_work: UowFactory, inventory_url: str, failing_step: str
) -> None:
    await stock(inventory_url, "MOVE", {"S001": Decimal(20), "S002": Decimal(5)})
    armed = {"step": failing_step}

    def fault(current: str) -> None:
        if armed["step"] == current:
            armed["step"] = ""  # fail once, as a crash would
            raise InjectedFault(current)

    saga = TransferSaga(fault)

    async def attempt(action: Callable[[UnitOfWork], Awaitable[Transfer]]) -> Transfer:
        try:
            return await step(unit_of_work, action)
        except InjectedFault:
            assert await chain_total(inventory_url, "MOVE") == Decimal(25)
            return await step(unit_of_work, action)  # the caller retries the same step

    transfer = await attempt(
        lambda uow: saga.request(uow, sku="MOVE", quantity=Decimal(8), from_location="S001", to_location="S002")
    )
    assert (await level(inventory_url, "MOVE", "S001"))["reserved"] == Decimal(8)
    await attempt(lambda uow: saga.dispatch(uow, transfer.transfer_id))
    assert (await level(inventory_url, "MOVE", "S002"))["in_transit"] == Decimal(8)
    assert await chain_total(inventory_url, "MOVE") == Decimal(25)
    received = await attempt(lambda uow: saga.receive(uow, transfer.transfer_id, Decimal(7)))
    assert (received.status, received.received_quantity) == (TransferStatus.RECEIVED, Decimal(7))
    source, destination = await level(inventory_url, "MOVE", "S001"), await level(inventory_url, "MOVE", "S002")
    assert (source["on_hand"], source["reserved"]) == (Decimal(12), ZERO)
    assert (destination["on_hand"], destination["in_transit"]) == (Decimal(12), ZERO)
    assert await chain_total(inventory_url, "MOVE") == Decimal(24)  # one unit of shrink, recorded as such


async def test_steps_out_of_order_and_bad_transfers_are_refused_and_change_nothing(
    unit_of_work: UowFactory, inventory_url: str
) -> None:
    await stock(inventory_url, "ODD", {"S001": Decimal(10), "S002": Decimal(0)})
    saga = TransferSaga()
    with pytest.raises(InvalidArgument, match="two different locations"):
        await step(
            unit_of_work,
            lambda uow: saga.request(uow, sku="ODD", quantity=Decimal(1), from_location="S001", to_location="S001"),
        )
    with pytest.raises(UnknownSku):
        await step(
            unit_of_work,
            lambda uow: saga.request(uow, sku="NOPE", quantity=Decimal(1), from_location="S001", to_location="S002"),
        )
    transfer = await step(
        unit_of_work,
        lambda uow: saga.request(uow, sku="ODD", quantity=Decimal(4), from_location="S001", to_location="S002"),
    )
    with pytest.raises(TransferStepNotAllowed):
        await step(unit_of_work, lambda uow: saga.receive(uow, transfer.transfer_id, Decimal(4)))
    await step(unit_of_work, lambda uow: saga.dispatch(uow, transfer.transfer_id))
    with pytest.raises(InvalidArgument, match="only 4 were dispatched"):
        await step(unit_of_work, lambda uow: saga.receive(uow, transfer.transfer_id, Decimal(5)))
    with pytest.raises(TransferStepNotAllowed):
        await step(unit_of_work, lambda uow: saga.cancel(uow, transfer.transfer_id))
    assert await chain_total(inventory_url, "ODD") == Decimal(10)


async def test_cancelling_before_dispatch_releases_the_hold(unit_of_work: UowFactory, inventory_url: str) -> None:
    await stock(inventory_url, "STAY", {"S001": Decimal(10), "S002": Decimal(0)})
    saga = TransferSaga()
    transfer = await step(
        unit_of_work,
        lambda uow: saga.request(uow, sku="STAY", quantity=Decimal(6), from_location="S001", to_location="S002"),
    )
    cancelled = await step(unit_of_work, lambda uow: saga.cancel(uow, transfer.transfer_id))
    assert cancelled.status is TransferStatus.CANCELLED
    assert (await level(inventory_url, "STAY", "S001"))["reserved"] == ZERO


async def test_a_stock_count_adjusts_on_hand_through_the_ledger_all_or_nothing(
    unit_of_work: UowFactory, inventory_url: str
) -> None:
    await stock(inventory_url, "CNT-A", {"S001": Decimal(10)})
    await stock(inventory_url, "CNT-B", {"S001": Decimal(4)})
    with pytest.raises(UnknownSku):
        await step(
            unit_of_work,
            lambda uow: record_stock_count(
                uow, "S001", [CountedLine("CNT-A", Decimal(1)), CountedLine("NOPE", Decimal(1))]
            ),
        )
    assert (await level(inventory_url, "CNT-A", "S001"))["on_hand"] == Decimal(10)
    with pytest.raises(InvalidArgument):
        await step(unit_of_work, lambda uow: record_stock_count(uow, "S001", [CountedLine("CNT-A", Decimal(-1))]))
    adjusted = await step(
        unit_of_work,
        lambda uow: record_stock_count(
            uow, "S001", [CountedLine("CNT-A", Decimal(8), "damaged"), CountedLine("CNT-B", Decimal(4))]
        ),
    )
    assert adjusted == 1
    assert (await level(inventory_url, "CNT-A", "S001"))["on_hand"] == Decimal(8)
