"""The inventory service as bootstrapped: gRPC API, sales journal consumer, outbox relay."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import money_pb2
from retail.inventory.v1 import events_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc as pb_grpc
from retail.sales.v1 import events_pb2 as sales_pb2
from sqlalchemy import text

from servicekit.db import create_engine
from services.inventory.bootstrap import InventoryApp
from tests.integration.inventory.conftest import level, stock
from tests.support.messaging import jetstream, read_all


def sale(sale_id: str, location_id: str, lines: dict[str, str], **fields: Any) -> sales_pb2.SaleRecorded:
    occurred_at = Timestamp()
    occurred_at.GetCurrentTime()
    return sales_pb2.SaleRecorded(
        sale_id=sale_id,
        kind=fields.pop("kind", sales_pb2.SALE_KIND_SALE),
        location_id=location_id,
        channel=sales_pb2.SALES_CHANNEL_STORE,
        occurred_at=occurred_at,
        lines=[
            sales_pb2.SaleLine(line_number=n, sku=sku, quantity=money_pb2.Decimal(value=quantity))
            for n, (sku, quantity) in enumerate(lines.items(), start=1)
        ],
        **fields,
    )


async def journal(js: Any, entry: sales_pb2.SaleRecorded) -> None:
    await js.publish(
        f"retail.sales.v1.sale_recorded.{entry.location_id}",
        entry.SerializeToString(),
        headers={"Nats-Msg-Id": entry.sale_id, "Retail-Event-Type": "retail.sales.v1.SaleRecorded"},
    )


async def wait_for_on_hand(url: str, sku: str, location_id: str, expected: Decimal) -> dict[str, Decimal]:
    async with asyncio.timeout(30):
        while (current := await level(url, sku, location_id))["on_hand"] != expected:
            await asyncio.sleep(0.05)
    return current


async def test_out_of_stock_over_grpc_says_how_much_is_available(app: InventoryApp, inventory_url: str) -> None:
    await stock(inventory_url, "GRPC", {"S001": Decimal(2)})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        request = pb.ReserveStockRequest(
            request_id=str(uuid.uuid4()), sku="GRPC", quantity=money_pb2.Decimal(value="5"), location_id="S001"
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ReserveStock(request, timeout=5)
        ledger = await stub.CheckLedger(pb.CheckLedgerRequest(sku="GRPC", location_id="S001"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    metadata: Any = refused.value.trailing_metadata()
    trailers = {str(key): str(value) for key, value in metadata}
    assert trailers["retail-error-reason"] == "out-of-stock"
    assert json.loads(trailers["retail-error-details"])["available"] == "2"
    assert ledger.consistent


async def test_journaled_sales_and_returns_change_stock_once_and_shortfalls_are_reported(
    app: InventoryApp, inventory_url: str, nats_url: str, unique: str
) -> None:
    sku = f"J{unique}"
    await stock(inventory_url, sku, {"S001": Decimal(5)})
    async with jetstream(nats_url) as (_, js):
        first = sale(f"{unique}-1", "S001", {sku: "3"})
        await journal(js, first)
        await journal(js, first)  # the terminal retried: JetStream and the inbox both absorb it
        await wait_for_on_hand(inventory_url, sku, "S001", Decimal(2))
        await journal(js, sale(f"{unique}-2", "S001", {sku: "4"}))  # happened offline: stock goes negative
        await wait_for_on_hand(inventory_url, sku, "S001", Decimal(-2))
        await journal(
            js, sale(f"{unique}-3", "S001", {sku: "1"}, kind=sales_pb2.SALE_KIND_RETURN, original_sale_id=f"{unique}-1")
        )
        await wait_for_on_hand(inventory_url, sku, "S001", Decimal(-1))
        async with asyncio.timeout(30):
            while not (
                discrepancies := await read_all(js, "INVENTORY", "retail.inventory.v1.stock_discrepancy_recorded.S001")
            ):
                await asyncio.sleep(0.05)
    recorded = [events_pb2.StockDiscrepancyRecorded.FromString(payload) for _, _, payload in discrepancies]
    engine = create_engine(inventory_url)
    async with engine.connect() as connection:
        sold = (
            await connection.execute(
                text("SELECT sum(quantity) FROM daily_sales WHERE sku = :sku AND source = 'journal'"), {"sku": sku}
            )
        ).scalar_one()
    await engine.dispose()
    assert sold == Decimal(6)  # 3 + 4 − 1 returned, each sale counted once
    assert [(d.sku, d.sale_id, d.on_hand_after.value) for d in recorded if d.sku == sku] == [(sku, f"{unique}-2", "-2")]


async def test_a_transfer_and_a_count_over_grpc_are_idempotent_per_request_id(
    app: InventoryApp, inventory_url: str
) -> None:
    await stock(inventory_url, "XFER", {"S001": Decimal(10), "S002": Decimal(0)})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        ask = pb.RequestTransferRequest(
            request_id="t-1",
            sku="XFER",
            quantity=money_pb2.Decimal(value="4"),
            from_location_id="S001",
            to_location_id="S002",
        )
        first = (await stub.RequestTransfer(ask, timeout=5)).transfer
        again = (await stub.RequestTransfer(ask, timeout=5)).transfer
        transfer_id = first.transfer_id
        await stub.DispatchTransfer(pb.DispatchTransferRequest(request_id="t-2", transfer_id=transfer_id), timeout=5)
        received = await stub.ReceiveTransfer(
            pb.ReceiveTransferRequest(
                request_id="t-3", transfer_id=transfer_id, received_quantity=money_pb2.Decimal(value="4")
            ),
            timeout=5,
        )
        with pytest.raises(grpc.aio.AioRpcError) as same_place:
            await stub.RequestTransfer(
                pb.RequestTransferRequest(
                    request_id="t-4",
                    sku="XFER",
                    quantity=money_pb2.Decimal(value="1"),
                    from_location_id="S001",
                    to_location_id="S001",
                ),
                timeout=5,
            )
        counted = await stub.RecordStockCount(
            pb.RecordStockCountRequest(
                request_id="c-1",
                location_id="S002",
                lines=[pb.CountLine(sku="XFER", counted_quantity=money_pb2.Decimal(value="3"), reason="damaged")],
            ),
            timeout=5,
        )
    assert again.transfer_id == transfer_id
    assert received.transfer.status == pb.TRANSFER_STATUS_RECEIVED
    assert same_place.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert counted.adjusted_levels == 1
    assert (await level(inventory_url, "XFER", "S001"))["on_hand"] == Decimal(6)
    assert (await level(inventory_url, "XFER", "S002"))["on_hand"] == Decimal(3)


async def test_importing_the_same_sales_history_twice_changes_nothing_and_never_touches_stock(
    app: InventoryApp, inventory_url: str
) -> None:
    await stock(inventory_url, "HIST", {"S001": Decimal(9)})
    lines = [
        pb.SalesHistoryLine(sku="HIST", date=f"2026-10-{day:02}", quantity=money_pb2.Decimal(value=str(day)))
        for day in range(1, 11)
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        for attempt in ("h-1", "h-2"):  # two different requests carrying the same file
            answer = await stub.ImportSalesHistory(
                pb.ImportSalesHistoryRequest(request_id=attempt, location_id="S001", lines=lines), timeout=5
            )
            assert answer.imported_lines == 10
        refusals = []
        for bad in (
            [pb.SalesHistoryLine(sku="NOPE", date="2026-10-01", quantity=money_pb2.Decimal(value="1"))],
            [pb.SalesHistoryLine(sku="HIST", date="2099-01-01", quantity=money_pb2.Decimal(value="1"))],
            [pb.SalesHistoryLine(sku="HIST", date="01/10/2026", quantity=money_pb2.Decimal(value="1"))],
            [pb.SalesHistoryLine(sku="HIST", date="2026-10-01", quantity=money_pb2.Decimal(value="-1"))],
            lines + lines[:1],
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ImportSalesHistory(
                    pb.ImportSalesHistoryRequest(request_id=str(uuid.uuid4()), location_id="S001", lines=bad), timeout=5
                )
            refusals.append(refused.value.code())
    assert set(refusals) <= {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
    engine = create_engine(inventory_url)
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT day, sum(quantity) AS q FROM daily_sales WHERE sku = 'HIST' GROUP BY day ORDER BY day")
        )
        series = [(row.day, row.q) for row in rows]
    await engine.dispose()
    assert [(day.day, quantity) for day, quantity in series] == [(d, Decimal(d)) for d in range(1, 11)]
    assert (await level(inventory_url, "HIST", "S001"))["on_hand"] == Decimal(9)
