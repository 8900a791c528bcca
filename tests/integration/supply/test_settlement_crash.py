"""`kill -9` of the supply process in the middle of a statement run: the run's transaction dies with it,
and the rerun after a restart produces the same statements, one per contract and period, never two."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from retail.supply.v1 import supply_service_pb2 as pb
from retail.supply.v1 import supply_service_pb2_grpc as pb_grpc

from servicekit.settings import to_plain_url
from tests.integration.supply.support import HQ, eventually, rid
from tests.support.processes import ServiceProcess, serving

pytestmark = pytest.mark.slow

CONTRACTS = 3
LINES_PER_CONTRACT = 400


@pytest.fixture
def supply_process(supply_url: str, nats_url: str, unique: str, tmp_path: Path) -> Iterator[tuple[ServiceProcess, int]]:
    process, port = ServiceProcess.grpc_service(
        "services.supply",
        database_url=supply_url,
        nats_url=nats_url,
        log=tmp_path / "supply.log",
        SUPPLY_CATALOGUE_DURABLE=f"sup-cat-{unique}",
        SUPPLY_REPLENISHMENT_DURABLE=f"sup-rep-{unique}",
        SUPPLY_SALES_DURABLE=f"sup-sales-{unique}",
        SUPPLY_SETTLEMENT_DURABLE=f"sup-settle-{unique}",
    )
    process.start()
    yield process, port
    process.stop()


async def seed(connection: asyncpg.Connection, unique: str) -> dict[str, int]:
    """Suppliers with a consignment contract each and their November sale accruals; totals by contract."""
    totals = {}
    for n in range(1, CONTRACTS + 1):
        supplier, contract = f"K{unique}{n}", f"KC{unique}{n}"
        await connection.execute(
            "INSERT INTO supplier (supplier_id, code, name, payment_terms_days, active, version, created_at, "
            "updated_at) VALUES ($1, $1, $1, 30, true, 1, now(), now())",
            supplier,
        )
        await connection.execute(
            "INSERT INTO contract (contract_id, supplier_id, mode, valid_from, created_by, created_at) "
            "VALUES ($1, $2, 'consignment', '2026-01-01', 'test', now())",
            contract,
            supplier,
        )
        await connection.execute(
            "INSERT INTO accrual (source_id, supplier_id, contract_id, kind, occurred_on, amount_fen, sku, store_id, "
            "quantity, unit_cost_fen, sale_id, recorded_at) SELECT 'sale:' || $2 || '-' || g || ':1', $1, $2, 'sale', "
            "date '2026-11-01' + g % 30, 100 + g, 'SKU', 'S1', 1, 100 + g, $2 || '-' || g, now() "
            "FROM generate_series(1, $3) AS g",
            supplier,
            contract,
            LINES_PER_CONTRACT,
        )
        totals[contract] = sum(100 + g for g in range(1, LINES_PER_CONTRACT + 1))
    return totals


async def test_a_statement_run_killed_midway_is_rerun_into_the_same_statements_never_two(
    supply_process: tuple[ServiceProcess, int], supply_url: str, unique: str
) -> None:
    process, port = supply_process
    await serving(port)
    url = to_plain_url(supply_url)
    connection = await asyncpg.connect(url)
    holder = await asyncpg.connect(url)
    try:
        totals = await seed(connection, unique)
        last = f"KC{unique}{CONTRACTS}"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.SupplyServiceStub(channel)  # type: ignore[no-untyped-call]
            # The last contract's statement exists and is held locked: the run will stop there, mid-transaction,
            # with the other contracts' drafts already written (uncommitted).
            await stub.RunStatements(
                pb.RunStatementsRequest(
                    request_id=rid(), actor=HQ, period_date="2026-11-15", supplier_id=f"K{unique}{CONTRACTS}"
                )
            )
            held = holder.transaction()
            await held.start()
            await holder.execute(f"SELECT 1 FROM statement WHERE contract_id = '{last}' FOR UPDATE")
            run = asyncio.ensure_future(
                stub.RunStatements(pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-11-20"))
            )

            async def run_waits() -> int | None:
                pid = await connection.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%' "
                    "AND query LIKE '%FROM statement%'"
                )
                return int(pid) if pid else None

            blocked = await eventually(run_waits)
            process.kill()
            with pytest.raises(grpc.aio.AioRpcError):
                await run
            await held.rollback()

        async def run_gone() -> bool:
            return not await connection.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", blocked)

        await eventually(run_gone)
        # Nothing of the killed run stayed: only the statement drafted before it.
        assert await connection.fetchval("SELECT count(*) FROM statement") == 1

        process.start()
        await serving(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.SupplyServiceStub(channel)  # type: ignore[no-untyped-call]
            for _ in range(2):
                rerun = await stub.RunStatements(
                    pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-11-20")
                )
                assert (rerun.statements, rerun.lines, rerun.total.minor_units) == (
                    CONTRACTS,
                    CONTRACTS * LINES_PER_CONTRACT,
                    sum(totals.values()),
                )
            rows = await connection.fetch("SELECT contract_id, total_fen FROM statement ORDER BY contract_id")
            assert {row["contract_id"]: row["total_fen"] for row in rows} == totals
            # (The seeded accruals have no journal behind them: only the statements' own checks apply here.)
            check = await stub.CheckSettlement(pb.CheckSettlementRequest(actor=HQ))
            assert [p for p in check.problems if p.kind in ("total-mismatch", "line-outside-statement")] == []
            assert check.statements == CONTRACTS
    finally:
        await holder.close()
        await connection.close()
