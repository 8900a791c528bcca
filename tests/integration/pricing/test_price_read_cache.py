"""Effective prices come from each process's in-process cache of items and rules, and the cache
never answers with what a committed change replaced — also when another process made the change.

Two pricing service processes share one database: changes go through one, baskets are priced
through the other, which has cached the SKU's item and rules before each change. A change that
has committed (its RPC answered) is in the very next answer of the other process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from retail.common.v1 import money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from servicekit.settings import to_plain_url
from tests.integration.pricing.conftest import HQ, barcode_for, cny, request_id
from tests.support.grpc_status import reasons_of
from tests.support.processes import ServiceProcess, serving

pytestmark = pytest.mark.slow

STORE = "S1"
SKUS = ("SKU-CACHE-1", "SKU-CACHE-2")
ONE = money_pb2.Decimal(value="1")
CALL_TIMEOUT = 30


@pytest.fixture
def two_processes(pricing_url: str, nats_url: str, unique: str, tmp_path: Path) -> Iterator[tuple[int, int]]:
    started: list[ServiceProcess] = []
    ports: list[int] = []
    for name in ("writer", "reader"):
        process, port = ServiceProcess.grpc_service(
            "services.pricing",
            database_url=pricing_url,
            nats_url=nats_url,
            log=tmp_path / f"pricing-{name}.log",
            INVENTORY_CONSUMER_DURABLE=f"pricing-inventory-{unique}",
            SCHEDULE_POLL_SECONDS="60",
            LABEL_POLL_SECONDS="600",
            LABEL_STATUS_SECONDS="3600",
        )
        process.start()
        started.append(process)
        ports.append(port)
    try:
        yield ports[0], ports[1]
    finally:
        for process in started:
            process.stop()


@pytest.fixture
async def stubs(two_processes: tuple[int, int]) -> AsyncIterator[tuple[pb_grpc.PricingServiceAsyncStub, ...]]:
    writer_port, reader_port = two_processes
    for port in (writer_port, reader_port):
        await serving(port)
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{writer_port}") as writer,
        grpc.aio.insecure_channel(f"127.0.0.1:{reader_port}") as reader,
    ):
        yield pb_grpc.PricingServiceStub(writer), pb_grpc.PricingServiceStub(reader)


async def prices(stub: pb_grpc.PricingServiceAsyncStub, store_id: str = STORE) -> list[int]:
    answer = await stub.PriceBasket(
        pb.PriceBasketRequest(
            question=pb.PriceQuestion(store_id=store_id),
            lines=[pb.BasketLine(sku=sku, quantity=ONE) for sku in SKUS],
        ),
        timeout=CALL_TIMEOUT,
    )
    return [line.unit_price.minor_units for line in answer.lines]


async def set_prices(
    stub: pb_grpc.PricingServiceAsyncStub, sku: str, base_fen: int, *, store_fen: int | None = None
) -> None:
    overrides = [] if store_fen is None else [pb.RegularPrice(scope=pb.RuleScope(store_id=STORE), price=cny(store_fen))]
    await stub.SetPrices(
        pb.SetPricesRequest(
            request_id=request_id(),
            sku=sku,
            currency_code="CNY",
            base_price=cny(base_fen),
            overrides=overrides,
            actor=HQ,
        ),
        timeout=CALL_TIMEOUT,
    )


async def put_item(stub: pb_grpc.PricingServiceAsyncStub, sku: str, *, active: bool = True) -> None:
    await stub.PutItem(
        pb.PutItemRequest(
            request_id=request_id(),
            item=pb.Item(
                sku=sku,
                name=f"Item {sku}",
                category="C0101",
                barcode=barcode_for(sku),
                unit=pb.UNIT_PIECE,
                cost=cny(100),
                supplier_id="SUP001",
                active=active,
            ),
            actor=HQ,
        ),
        timeout=CALL_TIMEOUT,
    )


async def test_a_change_committed_through_one_process_is_in_the_next_answer_of_another_that_cached_the_sku(
    stubs: tuple[pb_grpc.PricingServiceAsyncStub, pb_grpc.PricingServiceAsyncStub], pricing_url: str
) -> None:
    writer, reader = stubs
    for store_id in (STORE, "S2"):
        await writer.PutStore(
            pb.PutStoreRequest(
                request_id=request_id(), store=pb.Store(store_id=store_id, name=store_id, currency_code="CNY"), actor=HQ
            ),
            timeout=CALL_TIMEOUT,
        )
    for sku in SKUS:
        await put_item(writer, sku)
        await set_prices(writer, sku, 1000)
    assert await prices(reader) == [1000, 1000]

    # The reader answers from memory: a change written behind the generation's back (triggers off
    # for this session) is not seen by it, while the writer, which never read these SKUs, sees it.
    connection = await asyncpg.connect(to_plain_url(pricing_url))
    try:
        await connection.execute("SET session_replication_role = replica")
        await connection.execute("UPDATE price_rule SET price_fen = 1111 WHERE sku = $1", SKUS[0])
    finally:
        await connection.close()
    assert await prices(reader) == [1000, 1000], "the reader did not answer from its cache"
    assert await prices(writer) == [1111, 1000]

    # Every change committed through the writer is in the reader's very next answer, in both stores.
    expected = {STORE: [1111, 1000], "S2": [1111, 1000]}
    for step in range(1, 21):
        index, fen = step % 2, 1000 + 10 * step
        override = step % 3 == 0  # an override for S1 beats the new base price there
        await set_prices(writer, SKUS[index], fen, store_fen=fen - 5 if override else None)
        expected[STORE][index] = fen - 5 if override else fen
        expected["S2"][index] = fen
        for store_id, wanted in expected.items():
            assert await prices(reader, store_id) == wanted, f"step {step}: {store_id} was answered a replaced price"

    # The catalogue too: a deactivated item is not sold any more, at once.
    await put_item(writer, SKUS[0], active=False)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await prices(reader)
    assert "sku-not-listed" in reasons_of(refused.value)
