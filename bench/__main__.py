"""`make bench`: platform benchmarks, each as a ratio against a raw baseline of the same run.

The machines this runs on are shared and their speed drifts, so absolute numbers are
printed but the ratios are what to compare between runs. Every load comes from a process
of its own (pgbench, wrk, a separate publisher), never from the process being measured.

1. Outbox relay: rows per second the relay publishes to JetStream and marks, against a
   raw publisher doing the same acknowledged publishes without PostgreSQL; and against
   the write path's ceiling, pgbench inserting outbox rows as handlers do. The rows belong
   to 1,000 aggregates; then as many rows of only 10 aggregates (a price change's events
   on ten stores' books) are drained too, to show what one aggregate's strict order costs.
2. Reservations through the gateway (see bench/reservations.py) against pgbench's naive
   one-UPDATE-per-request rate on a hot row and on 10,000 rows.
3. Gateway HTTP: requests per second `wrk` gets from the gateway's /healthz (its one
   middleware: tracing, access log, problem handling, body limit) against a bare uvicorn
   app answering the same JSON, and each server's CPU time per request (steadier on a
   shared machine; see bench/http.py).
4. POS ingestion (see bench/pos_ingest.py): sale lines per second journaled through
   `POST /v1/pos/sales/batch`, beside the raw JetStream publish ceiling and pgbench
   writing the same journal rows; end to end, until the inventory service has applied
   every journaled sale, against pgbench applying sale lines, with the consumer lag's
   drain time; tracing on against off. Then the gateway's added latency (p50/p99 of a
   stock read and a reservation through the gateway against the same gRPC calls made
   directly, see bench/gateway_latency.py).
5. Members (see bench/members.py): identity resolution through the gateway with a million
   members loaded, beside pgbench's lookup of the same row; points earned from a SALES
   journal backlog in sales/s, beside pgbench's naive per-sale write transaction
   (``--only members-earning``: the earning part alone, on the same million members).
6. Pricing (see bench/pricing.py): a chain-wide price change reaching 50,000 shelf labels in
   10 stores (seconds from the effective moment until every label confirmed it) beside the
   raw JetStream publish rate; baskets of 20 lines priced through the gateway beside
   pgbench reading the same rows.
7. Forecasts (see bench/forecast_accuracy.py): the served demand forecast's MAE as a ratio
   to seasonal naive's and the 28-day mean's, per synthetic series shape (true process
   known) and on the demo retailer, over rolling origins, with interval coverage; and the
   time to fit one location of 5,000 SKUs. No servers needed.
8. Supply settlement (see bench/supply_settlement.py): a month-end statement run over 1,000
   suppliers and 2,000,000 journal lines, beside the same aggregation as one SQL GROUP BY by psql;
   SALES journal lines accrued per second beside pgbench inserting the same rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
from pathlib import Path

import asyncpg

from bench.baseline import pgbench, python_module
from bench.targets import scoreboard
from devstack.servers import NatsServer, PostgresServer
from servicekit import migrations
from servicekit.messaging import StreamSpec, connect_nats, ensure_stream

OUTBOX_WRITE = """\\set aggregate random(1, 1000)
BEGIN;
INSERT INTO outbox (event_id, subject, event_type, aggregate_id, payload, occurred_at)
  VALUES (gen_random_uuid(), 'bench.outbox.event', 'retail.bench.v1.Event', 'agg-' || :aggregate,
          '\\x0a0568656c6c6f', now());
SELECT pg_notify('retail_outbox', '');
COMMIT;
"""


async def prepare(postgres: PostgresServer, nats: NatsServer) -> str:
    postgres.create_database("bench")
    url = postgres.url_for("bench")
    await asyncio.to_thread(migrations.upgrade, url)
    client = await connect_nats(nats.url, name="bench-setup")
    js = client.jetstream()
    for name, subjects in (("BENCHRAW", ["bench.raw"]), ("BENCHOUTBOX", ["bench.outbox.>"])):
        await ensure_stream(js, StreamSpec(name, subjects, max_age_seconds=3600))
    await client.close()
    return url


FEW_AGGREGATES = 10


async def write_few_aggregates(url: str, rows: int, aggregates: int) -> None:
    """``rows`` outbox rows in one transaction, round robin over ``aggregates`` aggregates."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            """
            INSERT INTO outbox (event_id, subject, event_type, aggregate_id, payload, occurred_at)
            SELECT gen_random_uuid(), 'bench.outbox.event', 'retail.bench.v1.Event', 'book-' || (n % $2),
                   '\\x0a0568656c6c6f'::bytea, now()
            FROM generate_series(1, $1) AS n
            """,
            rows,
            aggregates,
        )
    finally:
        await connection.close()


async def pending_rows(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    finally:
        await connection.close()


def bench_outbox(work: Path, seconds: int) -> dict[str, float]:
    postgres = PostgresServer(work / "postgres")
    nats = NatsServer(work / "nats")
    postgres.start()
    nats.start()
    try:
        url = asyncio.run(prepare(postgres, nats))
        script = work / "outbox_write.sql"
        script.write_text(OUTBOX_WRITE)
        written = pgbench(postgres, "bench", script, seconds, clients=8)
        write_tps, rows = written.tps, written.transactions
        assert asyncio.run(pending_rows(url)) == rows
        raw_publish = python_module("bench.js_publish", nats.url, "bench.raw", str(rows), "500")
        relay = python_module("bench.relay_drain", url, nats.url)
        left = asyncio.run(pending_rows(url))
        if left:
            raise SystemExit(f"relay left {left} rows unpublished")
        asyncio.run(write_few_aggregates(url, rows, FEW_AGGREGATES))
        relay_few = python_module("bench.relay_drain", url, nats.url)
    finally:
        nats.stop()
        postgres.stop()
    return {
        "rows": rows,
        "pgbench_outbox_write_tps": write_tps,
        "raw_jetstream_publish_per_s": raw_publish,
        "relay_publish_and_mark_per_s": relay,
        "relay_vs_raw_jetstream": relay / raw_publish,
        "relay_vs_write_ceiling": relay / write_tps,
        "relay_10_aggregates_per_s": relay_few,
        "relay_10_aggregates_vs_raw_jetstream": relay_few / raw_publish,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each timed load")
    parser.add_argument(
        "--only",
        choices=[
            "outbox",
            "http",
            "reservations",
            "pos",
            "members",
            "members-earning",
            "pricing",
            "forecast",
            "marketing",
            "supply-settlement",
        ],
        help="run one benchmark",
    )
    parser.add_argument(
        "--marketing-members", type=int, default=1_000_000, help="members of the marketing benchmark's population"
    )
    parser.add_argument(
        "--settlement-lines", type=int, default=2_000_000, help="journal lines of the month-end statement run"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (each server's log and data) and say where it is"
    )
    args = parser.parse_args()
    # The benchmark's own short-lived NATS clients close without saying so first: not a disconnection.
    logging.getLogger("servicekit.nats").setLevel(logging.ERROR)
    results: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as kept:
        if args.keep:
            folder = tempfile.mkdtemp(prefix="retail-bench-")
            print(f"(the work folder stays at {folder})", flush=True)
        else:
            folder = kept.enter_context(tempfile.TemporaryDirectory(prefix="retail-bench-"))
        work = Path(folder)
        if args.only in (None, "outbox"):
            print("== outbox relay", flush=True)
            results["outbox"] = bench_outbox(work / "outbox", args.seconds)
            print_results(results["outbox"])
        if args.only in (None, "reservations"):
            from bench.reservations import bench_reservations

            print("== reservations through the gateway", flush=True)
            results["reservations"] = bench_reservations(work / "reservations", args.seconds)
            print_results(results["reservations"])
        if args.only in (None, "http"):
            from bench.http import bench_http

            print("== gateway HTTP", flush=True)
            results["http"] = bench_http(work / "http", args.seconds)
            print_results(results["http"])
        if args.only in (None, "pos"):
            from bench.pos_ingest import bench_pos

            print("== POS sales ingestion", flush=True)
            results["pos"] = bench_pos(work / "pos", args.seconds)
            print_results(results["pos"])
        if args.only in (None, "members"):
            from bench.members import bench_members

            print("== members: identity resolution and points earning", flush=True)
            results["members"] = bench_members(work / "members", args.seconds)
            print_results(results["members"])
        if args.only == "members-earning":
            from bench.members import bench_members

            print("== members: points earning from the sales journal", flush=True)
            results["members_earning"] = bench_members(work / "members", args.seconds, resolution=False)
            print_results(results["members_earning"])
        if args.only in (None, "pricing"):
            from bench.pricing import bench_pricing

            print("== pricing: a label storm and basket lookups", flush=True)
            results["pricing"] = bench_pricing(work / "pricing", args.seconds)
            print_results(results["pricing"])
        if args.only in (None, "forecast"):
            from bench.forecast_accuracy import bench_forecast

            print("== forecasts: accuracy against the baselines, and a 5,000-SKU location's fit", flush=True)
            results["forecast"] = bench_forecast()
        if args.only in (None, "marketing"):
            from bench.marketing import bench_marketing

            print("== marketing: a hold storm, a segment, a launch and a model training", flush=True)
            results["marketing"] = bench_marketing(work / "marketing", args.seconds, args.marketing_members)
            print_results(results["marketing"])
        if args.only in (None, "supply-settlement"):
            from bench.supply_settlement import bench_supply_settlement

            print("== supply settlement: a month-end statement run", flush=True)
            results["supply_settlement"] = bench_supply_settlement(
                work / "settlement", args.seconds, args.settlement_lines
            )
            print_results(results["supply_settlement"])
    board = scoreboard(results)
    if board:
        print("== performance targets: each figure against its bound, baselines from this run", flush=True)
        for line in board:
            print(f"  {line}")
    out = Path(".local/bench-latest.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"(written to {out})")
    return 0


def print_results(figures: dict[str, float]) -> None:
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        if "_vs_" in name:
            shown = f"{value:.3f}"
        elif name.endswith(("_ms", "_seconds")) or "_ms_per_" in name:
            shown = f"{value:,.2f}"
        else:
            shown = f"{value:,.0f}"
        print(f"  {name:<{width}}  {shown}")


if __name__ == "__main__":
    sys.exit(main())
