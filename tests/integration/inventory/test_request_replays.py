"""Every mutating inventory RPC, retried with its request_id, answers exactly as the first call did.

The handlers keep each answer in the request-id store in its RPC's wire format and decode it
back on a retry; these tests hold a replay to the very bytes of the first answer, to a
single effect, and refuse the same id for a different request.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from retail.common.v1 import money_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

from servicekit.db import UnitOfWork
from services.inventory.bootstrap import InventoryApp
from tests.integration.inventory.conftest import level, stock

RequestT = TypeVar("RequestT", bound=Message)
ResponseT = TypeVar("ResponseT", bound=Message)


def quantity(text: str) -> money_pb2.Decimal:
    return money_pb2.Decimal(value=text)


async def twice(call: Callable[[RequestT], Awaitable[ResponseT]], request: RequestT) -> ResponseT:
    """Call, retry with the same request, and hold the retry to the first answer's bytes."""
    first = await call(request)
    again = await call(request)
    assert again.SerializeToString(deterministic=True) == first.SerializeToString(deterministic=True)
    return first


async def refused_as_reused(call: Callable[[RequestT], Awaitable[Message]], request: RequestT) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(request)
    return refused.value.code()


async def test_transfer_steps_retried_answer_as_the_first_time_and_move_stock_once(
    app: InventoryApp, inventory_url: str
) -> None:
    await stock(inventory_url, "REPLAY-T", {"S001": Decimal(10), "S002": Decimal(0)})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        ask = pb.RequestTransferRequest(
            request_id="rt-1", sku="REPLAY-T", quantity=quantity("4.5"), from_location_id="S001", to_location_id="S002"
        )
        requested = await twice(lambda r: stub.RequestTransfer(r, timeout=5), ask)
        transfer_id = requested.transfer.transfer_id
        dispatched = await twice(
            lambda r: stub.DispatchTransfer(r, timeout=5),
            pb.DispatchTransferRequest(request_id="rt-2", transfer_id=transfer_id),
        )
        received = await twice(
            lambda r: stub.ReceiveTransfer(r, timeout=5),
            pb.ReceiveTransferRequest(request_id="rt-3", transfer_id=transfer_id, received_quantity=quantity("4")),
        )
        other = await stub.RequestTransfer(
            pb.RequestTransferRequest(
                request_id="rt-4",
                sku="REPLAY-T",
                quantity=quantity("1"),
                from_location_id="S001",
                to_location_id="S002",
            ),
            timeout=5,
        )
        cancelled = await twice(
            lambda r: stub.CancelTransfer(r, timeout=5),
            pb.CancelTransferRequest(request_id="rt-5", transfer_id=other.transfer.transfer_id),
        )
        reused = await refused_as_reused(
            lambda r: stub.DispatchTransfer(r, timeout=5),
            pb.DispatchTransferRequest(request_id="rt-2", transfer_id=other.transfer.transfer_id),
        )
    assert dispatched.transfer.status == pb.TRANSFER_STATUS_DISPATCHED
    assert (received.transfer.status, received.transfer.received_quantity.value) == (pb.TRANSFER_STATUS_RECEIVED, "4")
    assert cancelled.transfer.status == pb.TRANSFER_STATUS_CANCELLED
    assert reused == grpc.StatusCode.ALREADY_EXISTS
    assert (await level(inventory_url, "REPLAY-T", "S001"))["on_hand"] == Decimal("5.5")
    assert (await level(inventory_url, "REPLAY-T", "S002"))["on_hand"] == Decimal(4)


async def test_reservation_steps_retried_answer_as_the_first_time_and_hold_stock_once(
    app: InventoryApp, inventory_url: str
) -> None:
    await stock(inventory_url, "REPLAY-R", {"S001": Decimal(10)})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.InventoryServiceStub(channel)

        def reserve(request_id: str) -> pb.ReserveStockRequest:
            return pb.ReserveStockRequest(
                request_id=request_id, sku="REPLAY-R", quantity=quantity("2"), location_id="S001", owner="APP"
            )

        to_commit = await twice(lambda r: stub.ReserveStock(r, timeout=5), reserve("rr-1"))
        to_release = await stub.ReserveStock(reserve("rr-2"), timeout=5)
        committed = await twice(
            lambda r: stub.CommitReservation(r, timeout=5),
            pb.CommitReservationRequest(
                request_id="rr-3", reservation_id=to_commit.reservation.reservation_id, owner="APP"
            ),
        )
        released = await twice(
            lambda r: stub.ReleaseReservation(r, timeout=5),
            pb.ReleaseReservationRequest(
                request_id="rr-4", reservation_id=to_release.reservation.reservation_id, owner="APP"
            ),
        )
        reused = await refused_as_reused(
            lambda r: stub.ReleaseReservation(r, timeout=5),
            pb.ReleaseReservationRequest(
                request_id="rr-4", reservation_id=to_commit.reservation.reservation_id, owner="APP"
            ),
        )
    assert committed.reservation.status == pb.RESERVATION_STATUS_COMMITTED
    assert released.reservation.status == pb.RESERVATION_STATUS_RELEASED
    assert reused == grpc.StatusCode.ALREADY_EXISTS
    assert (await level(inventory_url, "REPLAY-R", "S001"))["reserved"] == Decimal(2)


async def test_imports_counts_and_reconciliations_retried_answer_as_the_first_time(
    app: InventoryApp, inventory_url: str, unit_of_work: Callable[[], UnitOfWork]
) -> None:
    await stock(inventory_url, "REPLAY-C", {"S001": Decimal(10)})
    unknown_sku = f"REPLAY-NEW-{uuid.uuid4().hex[:8]}"
    async with unit_of_work() as uow:  # a journaled sale of a SKU inventory does not know yet: it waits
        await app.service.apply_sale(
            uow,
            sale_id=f"sale-{unknown_sku}",
            location_id="S001",
            is_return=False,
            lines=[(unknown_sku, Decimal("1.5"))],
            reservation_id="",
            occurred_at=datetime(2026, 11, 3, 9, 30, 15, 250000, tzinfo=UTC),
        )
        await uow.commit()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        imported = await twice(
            lambda r: stub.ImportSalesHistory(r, timeout=5),
            pb.ImportSalesHistoryRequest(
                request_id="ri-1",
                location_id="S001",
                lines=[pb.SalesHistoryLine(sku="REPLAY-C", date="2026-10-01", quantity=quantity("3"))],
            ),
        )
        counted = await twice(
            lambda r: stub.RecordStockCount(r, timeout=5),
            pb.RecordStockCountRequest(
                request_id="ri-2",
                location_id="S001",
                lines=[pb.CountLine(sku="REPLAY-C", counted_quantity=quantity("7"), reason="damaged")],
            ),
        )
        pending = await twice(
            lambda r: stub.ApplyPendingSaleLines(r, timeout=5),
            pb.ApplyPendingSaleLinesRequest(request_id="ri-3", location_id="S001"),
        )
        reused = await refused_as_reused(
            lambda r: stub.RecordStockCount(r, timeout=5),
            pb.RecordStockCountRequest(
                request_id="ri-2",
                location_id="S001",
                lines=[pb.CountLine(sku="REPLAY-C", counted_quantity=quantity("6"), reason="damaged")],
            ),
        )
    assert imported.imported_lines == 1
    assert counted.adjusted_levels == 1
    waiting = [(line.sku, line.quantity.value, line.kind) for line in pending.pending_lines]
    assert (unknown_sku, "1.5", pb.STOCK_DISCREPANCY_KIND_UNKNOWN_SKU) in waiting
    assert reused == grpc.StatusCode.ALREADY_EXISTS
    assert (await level(inventory_url, "REPLAY-C", "S001"))["on_hand"] == Decimal(7)
