"""Supply settlement: a month-end statement run over 1,000 suppliers and 2,000,000 journal lines.

* **month-end run** — ``Statements.run`` (the service layer the ``RunStatements`` RPC calls, one
  transaction: a draft per contract, every open accrual of the month put on its statement, the
  period lines, totals from the lines) over ``lines`` sale accruals of 1,000 suppliers' contracts
  in November ÷ the same aggregation as one SQL ``GROUP BY`` run by psql on the same rows
  (``statement_run_vs_psql_group_by`` is psql's seconds ÷ the run's: 1 would be as fast as the
  bare aggregation);
* **rerun** — the same run again: it redrafts the same 1,000 statements, checked to have the same
  lines and totals, never doubled;
* **journal accrual** — SALES journal lines accrued per second by the journal consumer's handler
  (``Accruals.apply_journal_entry``, entries of two consignment lines, 50 entries per transaction
  as the consumer commits a fetch) ÷ pgbench, 4 clients, inserting the same rows (the entry, its two
  accruals, its two store × SKU × day upserts) one entry per transaction.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

from bench.baseline import pgbench
from bench.marketing import psql_seconds
from devstack.servers import PostgresServer
from servicekit import migrations
from servicekit.db import create_engine, units_of_work
from servicekit.idempotency import RequestFingerprint
from services.supply.migrate import VERSIONS as SUPPLY_VERSIONS
from services.supply.service_layer.accruals import Accruals, JournalEntry, JournalLine
from services.supply.service_layer.statements import RunStatements, Statements

SUPPLIERS = 1_000
GROUP_BY = (
    "SELECT contract_id, sum(amount_fen), count(*) FROM accrual "
    "WHERE occurred_on >= '2026-11-01' AND occurred_on < '2026-12-01' GROUP BY contract_id"
)

JOURNAL_ENTRIES = 20_000
BATCH = 50
PGBENCH_ENTRY = """\\set c random(1, 1000)
\\set d random(1, 1000)
\\set r random(1, 1000000000000)
BEGIN;
INSERT INTO journal_sale (sale_id, store_id, business_day, is_return)
  VALUES ('P' || :client_id || '-' || :r, 'S1', '2026-11-20', false);
INSERT INTO accrual (source_id, supplier_id, contract_id, kind, occurred_on, amount_fen, sku, store_id, quantity,
    unit_cost_fen, sale_id, recorded_at) VALUES
  ('sale:P' || :client_id || '-' || :r || ':1', 'SUP' || :c, 'CT' || :c, 'sale', '2026-11-20', 100 + :c,
   'SKU' || :c, 'S1', 1, 100 + :c, 'P' || :client_id || '-' || :r, now()),
  ('sale:P' || :client_id || '-' || :r || ':2', 'SUP' || :d, 'CT' || :d, 'sale', '2026-11-20', 100 + :d,
   'SKU' || :d, 'S1', 1, 100 + :d, 'P' || :client_id || '-' || :r, now());
INSERT INTO sales_day AS x (store_id, sku, business_day, sold, sold_fen)
  VALUES ('S1', 'SKU' || :c, '2026-11-20', 1, 500)
  ON CONFLICT (sku, business_day, store_id) DO UPDATE SET sold = x.sold + 1, sold_fen = x.sold_fen + 500;
INSERT INTO sales_day AS x (store_id, sku, business_day, sold, sold_fen)
  VALUES ('S1', 'SKU' || :d, '2026-11-20', 1, 500)
  ON CONFLICT (sku, business_day, store_id) DO UPDATE SET sold = x.sold + 1, sold_fen = x.sold_fen + 500;
COMMIT;
"""

SEED = """
INSERT INTO supplier (supplier_id, code, name, payment_terms_days, active, version, created_at, updated_at)
  SELECT 'SUP' || n, 'C' || n, 'Supplier ' || n, 30, true, 1, now(), now() FROM generate_series(1, $1) AS n;
INSERT INTO contract (contract_id, supplier_id, mode, valid_from, created_by, created_at)
  SELECT 'CT' || n, 'SUP' || n, 'consignment', '2026-01-01', 'bench', now() FROM generate_series(1, $1) AS n;
INSERT INTO contract_item (contract_id, sku, unit_cost_fen)
  SELECT 'CT' || n, 'SKU' || n, 100 + n FROM generate_series(1, $1) AS n;
INSERT INTO accrual (source_id, supplier_id, contract_id, kind, occurred_on, amount_fen, sku, store_id, quantity,
    unit_cost_fen, sale_id, recorded_at)
  SELECT 'sale:B' || g || ':1', 'SUP' || c, 'CT' || c, 'sale', date '2026-11-01' + (g % 30), (100 + c) * (1 + g % 3),
    'SKU' || c, 'S' || (g % 50), 1 + g % 3, 100 + c, 'B' || g, now()
  FROM (SELECT g, 1 + g % $1 AS c FROM generate_series(1, $2) AS g) AS v;
"""


async def seed(url: str, lines: int) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in SEED.split(";"):
            if statement.strip():
                arguments = (SUPPLIERS, lines) if "$2" in statement else (SUPPLIERS,)
                await connection.execute(statement, *arguments)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def run_twice(url: str) -> dict[str, float]:
    engine = create_engine(url, pool_size=2, max_overflow=0)
    statements = Statements(units_of_work(engine), clock=lambda: datetime(2026, 12, 1, 2, tzinfo=UTC))
    figures: dict[str, float] = {}
    try:
        for name in ("month_end_run_seconds", "rerun_seconds"):
            request = RequestFingerprint(uuid.uuid4().hex, "bench", uuid.uuid4().bytes)
            started = time.perf_counter()
            result = await statements.run(RunStatements(request, date(2026, 11, 15)))
            figures[name] = time.perf_counter() - started
            figures[name.replace("_seconds", "_statements")] = result.statements
            figures[name.replace("_seconds", "_lines")] = result.lines
            figures[name.replace("_seconds", "_total_fen")] = result.total_fen
    finally:
        await engine.dispose()
    return figures


async def journal_accrual(url: str) -> float:
    """Journal lines accrued per second through the consumer's handler, a fetch of entries per transaction."""
    engine = create_engine(url, pool_size=2, max_overflow=0)
    unit_of_work = units_of_work(engine)
    accruals = Accruals(unit_of_work)
    start = datetime(2026, 11, 20, 2, tzinfo=UTC)
    entries = [
        JournalEntry(
            sale_id=f"J{n}",
            is_return=False,
            store_id=f"S{n % 50}",
            occurred_at=start + timedelta(seconds=n),
            lines=(
                JournalLine(1, f"SKU{1 + n % SUPPLIERS}", Decimal(1), 500),
                JournalLine(2, f"SKU{1 + (n * 7) % SUPPLIERS}", Decimal(2), 900),
            ),
        )
        for n in range(JOURNAL_ENTRIES)
    ]
    try:
        started = time.perf_counter()
        for first in range(0, len(entries), BATCH):
            async with unit_of_work() as uow:
                for entry in entries[first : first + BATCH]:
                    await accruals.apply_journal_entry(uow, entry)
                await uow.commit()
        elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    return 2 * JOURNAL_ENTRIES / elapsed


async def expected_total(url: str) -> tuple[int, int]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow("SELECT count(*) AS n, sum(amount_fen) AS total FROM accrual")
        return int(row["n"]), int(row["total"])
    finally:
        await connection.close()


def bench_supply_settlement(work: Path, seconds: int, lines: int = 2_000_000) -> dict[str, float]:
    postgres = PostgresServer(work / "postgres")
    postgres.start()
    try:
        postgres.create_database("supply")
        url = postgres.url_for("supply")
        migrations.upgrade(url, SUPPLY_VERSIONS)
        started = time.perf_counter()
        asyncio.run(seed(url, lines))
        seeded = time.perf_counter() - started
        count, total = asyncio.run(expected_total(url))
        psql = psql_seconds(postgres, "supply", GROUP_BY)
        figures = asyncio.run(run_twice(url))
        accrued_per_s = asyncio.run(journal_accrual(url))
        script = work / "journal_entry.sql"
        script.write_text(PGBENCH_ENTRY)
        pgbench_lines_per_s = 2 * pgbench(postgres, "supply", script, seconds, clients=4).tps
    finally:
        postgres.stop()
    for run in ("month_end_run", "rerun"):
        if (figures[f"{run}_statements"], figures[f"{run}_lines"], figures[f"{run}_total_fen"]) != (
            SUPPLIERS,
            count,
            total,
        ):
            raise SystemExit(f"{run}: {figures} is not {SUPPLIERS} statements of {count} lines and {total} fen")
    return {
        "journal_lines": float(lines),
        "suppliers": float(SUPPLIERS),
        "seed_seconds": seeded,
        "psql_group_by_seconds": psql,
        "month_end_run_seconds": figures["month_end_run_seconds"],
        "rerun_seconds": figures["rerun_seconds"],
        "statement_run_vs_psql_group_by": psql / figures["month_end_run_seconds"],
        "journal_lines_accrued_per_s": accrued_per_s,
        "pgbench_journal_lines_per_s": pgbench_lines_per_s,
        "journal_accrual_vs_pgbench": accrued_per_s / pgbench_lines_per_s,
    }
