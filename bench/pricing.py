"""Pricing: a chain-wide price change reaching 50,000 shelf labels, and basket lookups through the gateway.

1. Label storm. Ten stores, each with its own batch ESL server simulator (``python -m
   tools.esl_simulators batch``: a process per store, so neither the bench's nor the
   service's CPU accounting includes it) holding 5,000 labels that check in every 200–500 ms.
   5,000 SKUs listed in every store with a chain-wide base price, and in every store 5,000
   labels, each showing one SKU, are bulk-loaded (``COPY``) in the service's own schema; the
   pricing service (``python -m services.pricing``) then materialises the books itself, from
   a timer per SKU due now (what ``PutStore`` leaves when a store is added), and pushes every
   label its first content. Once all 50,000 confirmed it (not timed), 5,000 scheduled price
   changes, one per SKU, chain-wide, each a new price, are inserted as ``SchedulePriceChange``
   writes them (and analysed, as autovacuum would have long before a real effective moment),
   all effective at T a few seconds ahead. Timed from T until every label row is
   ``acknowledged`` with its SKU's new price (the bench polls the database every 100 ms under
   a deadline that only progress extends). Printed: seconds until every label confirmed and
   labels per second; seconds until the books had advanced (every change applied); the
   ``PriceChanged`` events written (one per store and SKU) and when the service's outbox relay
   had published the last onto JetStream; the pricing process's CPU seconds. Beside it, the
   raw JetStream rate: 50,000 acknowledged publishes of the same payload size and headers from
   a process of its own (500 in flight, as in the outbox benchmark), and the ratio of label
   events per second end to end to it.

2. Basket lookups. ``wrk`` (its own process, 32 connections) POSTs baskets of 20 random lines
   in random stores to ``/v1/prices/effective/basket`` of the real gateway in front of the
   pricing process, as an app client (``prices:read`` is an app's by default). Beside it, in
   the same run on the same PostgreSQL, ``pgbench`` (32 clients, prepared statements) runs
   what the service reads per basket, in one transaction: the store row, the 20 item rows and
   their price rules (the statements of ``pricing_store``). Printed: baskets and lines per
   second, p50/p99, the ratio to pgbench, and CPU milliseconds per basket of the gateway and
   of the pricing service.

``python -m bench.pricing raw-publish NATS_URL SUBJECT COUNT WINDOW PAYLOAD_BYTES`` is the raw
publisher of part 1 (run by the benchmark as its own process); it prints messages per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

from bench.baseline import grpc_service, pgbench, profiled
from bench.cpu import CpuAccount
from bench.members import WrkRun, gateway_in_front_of, run_wrk
from bench.pos_ingest import wait_ready
from bench.reservations import register_app_client, rss_mb, token_for
from devstack.servers import NatsServer, PostgresServer, free_port
from gateway.migrate import GATEWAY_VERSIONS
from servicekit import migrations
from servicekit.messaging import StreamSpec, connect_nats, ensure_stream
from servicekit.outbox import AGGREGATE_HEADER, EVENT_TYPE_HEADER, MSG_ID_HEADER, OCCURRED_AT_HEADER
from services.inventory.entrypoints.sales_consumer import INVENTORY_STREAM
from services.pricing.adapters.integration_events import SUBJECT_PREFIX, price_aggregate
from services.pricing.adapters.pricing_store import _ITEM_COLUMNS, _RULE_COLUMNS, _STORE_COLUMNS
from services.pricing.domain.catalogue import gs1_check_digit
from services.pricing.migrate import VERSIONS as PRICING_VERSIONS
from tools.esl_simulators.batch import generate_label_ids

STORES = 10
SKUS = 5_000
LABELS_PER_STORE = 5_000  # label n of every store shows SKU n
CHECKIN_MS = (200, 500)  # each store's labels check in at one period in this range
CHANGE_LEAD_SECONDS = 4.0  # T: this long after the changes start being inserted
PRICE_STEP_FEN = 30  # the storm raises every SKU's price by this much
BASKET_LINES = 20
CONNECTIONS = 32
RAW_PUBLISH_WINDOW = 500  # acknowledged publishes in flight (as in the outbox benchmark)
POLL_SECONDS = 0.1
STALL_SECONDS = 60.0  # a phase fails when nothing moves for this long
CHANGED_BY = "BENCH-HQ"
CLIENT_ID = "BENCH-PRICING-APP"
PRICE_CHANGED = f"{SUBJECT_PREFIX}.price_changed."
RAW_STREAM = StreamSpec("BENCHRAW", ["bench.raw.>"], max_age_seconds=3600)
LUA = Path(__file__).resolve().parent / "pricing_basket.lua"


def store_id(number: int) -> str:
    return f"S{number:03d}"


def sku_of(number: int) -> str:
    return f"SKU{number:05d}"


def base_price_fen(number: int) -> int:
    """SKU n's chain-wide price before the storm: 2.00 to 99.90 yuan."""
    return 200 + (number * 37) % 9_800 // 10 * 10


def basket_script() -> str:
    """What ``Pricing.effective_prices`` reads per basket (pricing_store.get_store, get_items,
    rules_for_store), in one transaction, for a random store and 20 random SKUs."""
    sets = [f"\\set st random(1, {STORES})"] + [f"\\set s{i} random(1, {SKUS})" for i in range(1, BASKET_LINES + 1)]
    skus = ", ".join(f"'SKU' || lpad(CAST(:s{i} AS text), 5, '0')" for i in range(1, BASKET_LINES + 1))
    return "\n".join(
        [
            *sets,
            "BEGIN;",
            f"SELECT {_STORE_COLUMNS} FROM store WHERE store_id = 'S' || lpad(CAST(:st AS text), 3, '0');",
            f"SELECT {_ITEM_COLUMNS} FROM item WHERE sku = ANY(ARRAY[{skus}]);",
            f"SELECT {_RULE_COLUMNS} FROM price_rule WHERE sku = ANY(ARRAY[{skus}]) AND currency = 'CNY' "
            "AND (valid_from IS NULL OR valid_from <= now()) AND (valid_to IS NULL OR valid_to > now()) "
            "AND (store_id IS NULL OR store_id = 'S' || lpad(CAST(:st AS text), 3, '0')) "
            "AND (store_group IS NULL OR store_group = ANY(CAST(ARRAY[] AS text[])));",
            "COMMIT;",
            "",
        ]
    )


@dataclass(frozen=True)
class Stack:
    postgres: PostgresServer
    nats: NatsServer
    pricing_url: str
    gateway_url: str
    env: dict[str, str]  # what every service process gets (NATS, tracing off)


# ---- processes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Simulator:
    store_id: str
    process: subprocess.Popen[bytes]
    base_url: str


@contextlib.contextmanager
def simulators(stack: Stack, work: Path) -> Iterator[list[Simulator]]:
    """One batch ESL server simulator process per store, its labels checking in every 200–500 ms."""
    low, high = CHECKIN_MS
    started: list[Simulator] = []
    with contextlib.ExitStack() as logs:
        try:
            for number in range(1, STORES + 1):
                port = free_port()
                period = low + (high - low) * (number - 1) // max(STORES - 1, 1)
                log = logs.enter_context((work / f"esl-{store_id(number)}.log").open("wb"))
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tools.esl_simulators",
                        "batch",
                        "--port",
                        str(port),
                        "--generate",
                        str(LABELS_PER_STORE),
                        "--checkin-ms",
                        str(period),
                    ],
                    env=stack.env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
                started.append(Simulator(store_id(number), process, f"http://127.0.0.1:{port}"))
            for simulator in started:
                wait_ready(f"{simulator.base_url}/api/v1/labels?ids=L0000000", {simulator.store_id: simulator.process})
            yield started
        finally:
            for simulator in started:
                simulator.process.terminate()
            for simulator in started:
                simulator.process.wait(20)


@contextlib.contextmanager
def pricing_service(stack: Stack, work: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    # Label status refreshes (online state, battery of every label) every 5 minutes by default:
    # moved out of the measured phases.
    env = {**stack.env, "LABEL_STATUS_SECONDS": "3600"}
    with grpc_service("services.pricing", env, stack.pricing_url, work / "pricing.log") as started:
        yield started


# ---- loading the chain ----------------------------------------------------------------------------


async def load_chain(stack: Stack, stations: list[Simulator]) -> float:
    """COPY the stores, items, base prices and labels, and a timer per SKU due now; returns seconds."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    connection = await asyncpg.connect(stack.pricing_url)
    try:
        await connection.executemany(
            "INSERT INTO store (store_id, name, currency, label_station_kind, label_station_url, created_at, "
            "updated_at) VALUES ($1, $2, 'CNY', 'batch', $3, $4, $4)",
            [(station.store_id, f"bench store {station.store_id}", station.base_url, now) for station in stations],
        )
        items: list[tuple[object, ...]] = []
        for number in range(1, SKUS + 1):
            body = f"69{number:010d}"
            cost = base_price_fen(number) * 6 // 10
            items.append(
                (
                    sku_of(number),
                    f"bench item {number}",
                    f"C{number % 50:04d}",
                    f"{body}{gs1_check_digit(body)}",
                    "piece",
                    cost,
                    f"SUP{number % 20:03d}",
                    [],
                    True,
                    number,
                    now,
                )
            )
        await connection.copy_records_to_table(
            "item",
            records=items,
            columns=[
                "sku",
                "name",
                "category",
                "barcode",
                "unit",
                "cost_fen",
                "supplier_id",
                "store_ids",
                "active",
                "version",
                "updated_at",
            ],
        )
        await connection.execute("SELECT setval('item_version', $1)", SKUS)
        await connection.copy_records_to_table(
            "price_rule",
            records=[(f"R{n}", sku_of(n), "regular", "CNY", n, base_price_fen(n)) for n in range(1, SKUS + 1)],
            columns=["rule_id", "sku", "kind", "currency", "sequence", "price_fen"],
        )
        await connection.execute("SELECT setval('price_rule_sequence', $1)", SKUS)
        label_ids = generate_label_ids(LABELS_PER_STORE)
        for station in stations:
            await connection.copy_records_to_table(
                "label",
                records=[(station.store_id, label_id, sku_of(n % SKUS + 1)) for n, label_id in enumerate(label_ids)],
                columns=["store_id", "label_id", "sku"],
            )
        await connection.copy_records_to_table(
            "price_timer", records=[(sku_of(n), now) for n in range(1, SKUS + 1)], columns=["sku", "due_at"]
        )
        for table in ("store", "item", "price_rule", "label", "price_timer"):
            await connection.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await connection.close()
    return time.perf_counter() - started


async def provision_streams(nats_url: str) -> None:
    """The raw baseline's stream, and INVENTORY, which the pricing service consumes (markdowns)."""
    client = await connect_nats(nats_url, name="bench-setup")
    try:
        js = client.jetstream()
        for spec in (RAW_STREAM, INVENTORY_STREAM):
            await ensure_stream(js, spec)
    finally:
        await client.close()


# ---- following the service --------------------------------------------------------------------------

# What the service has done so far, counted exactly: read only to confirm the end and to say where a stalled
# phase stopped. A full pass over the labels costs a hundred milliseconds of the database's CPU in a storm,
# which the service being measured would pay for (it was a tenth of PostgreSQL's CPU when read every 2 s).
PROGRESS = """
    SELECT (SELECT count(*) FROM price_change WHERE created_by = $1 AND state = 'applied') AS applied,
           (SELECT count(*) FROM label l JOIN price_change c ON c.sku = l.sku AND c.created_by = $1
             WHERE l.state = 'acknowledged' AND l.acked_price_fen = c.price_fen) AS storm_acknowledged,
           (SELECT count(*) FROM label WHERE state = 'acknowledged') AS acknowledged,
           (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS unpublished
"""
# Whether it may be done, every poll: probes of the partial indexes on due work (label_due, label_sent,
# price_change_due, outbox_unpublished), each stopping at the first row.
QUIET = """
    SELECT NOT EXISTS (SELECT 1 FROM price_timer) AND NOT EXISTS (SELECT 1 FROM price_change WHERE state = 'scheduled')
             AND NOT EXISTS (SELECT 1 FROM label WHERE state IN ('pending', 'failed'))
             AND NOT EXISTS (SELECT 1 FROM label WHERE state = 'sent') AS labels_quiet,
           (SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1) IS NULL AS outbox_quiet
"""
# Whether the service is still moving, every 2 s: PostgreSQL's own counters of rows written (flushed by the
# writing sessions about once a second), free to read.
MOVEMENT = """
    SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) AS written FROM pg_stat_user_tables
     WHERE relname IN ('label', 'outbox', 'book_entry', 'price_change')
"""
MOVEMENT_EVERY = 20  # polls


async def wait_for(
    url: str, what: str, done: str, processes: dict[str, subprocess.Popen[bytes]], *, target: int
) -> float:
    """Poll until :data:`PROGRESS` column ``done`` reaches ``target``, then until the outbox is empty; returns
    when ``done`` was first seen at ``target`` (``time.time()``). Only a service that makes no progress for
    :data:`STALL_SECONDS` (or exits) fails."""
    connection = await asyncpg.connect(url)
    try:
        reached: float | None = None
        last = -1
        deadline = time.monotonic() + STALL_SECONDS
        for poll in itertools.count():
            quiet = await connection.fetchrow(QUIET)
            if (
                reached is None
                and quiet["labels_quiet"]
                and (await connection.fetchrow(PROGRESS, CHANGED_BY))[done] >= target
            ):
                reached = time.time()
            if reached is not None and quiet["outbox_quiet"]:
                return reached
            if poll % MOVEMENT_EVERY == 0:
                written = await connection.fetchval(MOVEMENT)
                if written != last:
                    last, deadline = written, time.monotonic() + STALL_SECONDS
                elif time.monotonic() > deadline:
                    row = await connection.fetchrow(PROGRESS, CHANGED_BY)
                    raise SystemExit(f"{what} stalled for {STALL_SECONDS:.0f}s at {dict(row)}")
            for name, process in processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"the {name} process exited with code {process.returncode}")
            await asyncio.sleep(POLL_SECONDS)
        raise AssertionError("unreachable")
    finally:
        await connection.close()


async def schedule_storm(url: str, effective_at: datetime) -> int:
    """One chain-wide change per SKU to its base price plus :data:`PRICE_STEP_FEN`, as
    ``pricing_store.insert_change`` writes them; returns the rows inserted."""
    now = datetime.now(UTC)
    connection = await asyncpg.connect(url)
    try:
        await connection.copy_records_to_table(
            "price_change",
            records=[
                (
                    f"PC{uuid.uuid4().hex[:20].upper()}",
                    sku_of(n),
                    base_price_fen(n) + PRICE_STEP_FEN,
                    "CNY",
                    effective_at,
                    [],
                    None,
                    "scheduled",
                    "",
                    None,
                    now,
                    CHANGED_BY,
                )
                for n in range(1, SKUS + 1)
            ],
            columns=[
                "change_id",
                "sku",
                "price_fen",
                "currency",
                "effective_at",
                "store_ids",
                "channel",
                "state",
                "override_reason",
                "markdown_id",
                "created_at",
                "created_by",
            ],
        )
        # Changes are scheduled long before they take effect, so autovacuum has analysed them by then; with
        # statistics of an empty table the scheduler's claim (an anti-join per SKU) turns quadratic.
        await connection.execute("ANALYZE price_change")
        return int(await connection.fetchval("SELECT count(*) FROM price_change WHERE created_by = $1", CHANGED_BY))
    finally:
        await connection.close()


@dataclass(frozen=True)
class StormRecord:
    """What the database says happened after T."""

    books_advanced_seconds: float
    events: int
    events_created_seconds: float  # the last PriceChanged row written
    relay_drained_seconds: float  # the last one published
    relay_publish_per_s: float  # from the first row written to the last published
    payload_bytes: float
    labels_pushed_again: int  # labels that needed more than one push of the new content


async def storm_record(url: str, effective_at: datetime) -> StormRecord:
    connection = await asyncpg.connect(url)
    try:
        applied = await connection.fetchrow(
            "SELECT count(*) AS n, max(applied_at) AS last FROM price_change WHERE created_by = $1 "
            "AND state = 'applied'",
            CHANGED_BY,
        )
        events = await connection.fetchrow(
            "SELECT count(*) AS n, min(created_at) AS first, max(created_at) AS last_created, "
            "max(published_at) AS last_published, avg(octet_length(payload)) AS size, "
            "count(*) FILTER (WHERE published_at IS NULL) AS unpublished "
            "FROM outbox WHERE subject LIKE $1 AND occurred_at >= $2",
            PRICE_CHANGED + "%",
            effective_at,
        )
        again = await connection.fetchval("SELECT count(*) FROM label WHERE attempts > 1")
    finally:
        await connection.close()
    if applied["n"] != SKUS or events["unpublished"]:
        raise SystemExit(f"{applied['n']} of {SKUS} changes applied, {events['unpublished']} events unpublished")
    relay_span = (events["last_published"] - events["first"]).total_seconds()
    return StormRecord(
        books_advanced_seconds=(applied["last"] - effective_at).total_seconds(),
        events=int(events["n"]),
        events_created_seconds=(events["last_created"] - effective_at).total_seconds(),
        relay_drained_seconds=(events["last_published"] - effective_at).total_seconds(),
        relay_publish_per_s=events["n"] / relay_span if relay_span > 0 else 0.0,
        payload_bytes=float(events["size"]),
        labels_pushed_again=int(again),
    )


# ---- the raw JetStream baseline (its own process) ------------------------------------------------------


async def raw_publish(nats_url: str, subject: str, count: int, window: int, payload_bytes: int) -> float:
    """Acknowledged publishes with the relay's headers, ``window`` in flight; returns messages per second."""
    client = await connect_nats(nats_url, name="bench-raw-publisher")
    try:
        js = client.jetstream()
        payload = random.randbytes(payload_bytes)
        occurred = datetime.now(UTC).isoformat()
        started = time.perf_counter()
        for first in range(0, count, window):
            await asyncio.gather(
                *(
                    js.publish(
                        f"{subject}.{store_id(n % STORES + 1)}",
                        payload,
                        timeout=10,
                        headers={
                            MSG_ID_HEADER: str(uuid.uuid4()),
                            EVENT_TYPE_HEADER: "retail.pricing.v1.PriceChanged",
                            OCCURRED_AT_HEADER: occurred,
                            AGGREGATE_HEADER: price_aggregate(store_id(n % STORES + 1), sku_of(n // STORES % SKUS + 1)),
                        },
                    )
                    for n in range(first, min(first + window, count))
                )
            )
        return count / (time.perf_counter() - started)
    finally:
        await client.close()


def raw_publish_process(nats_url: str, count: int, payload_bytes: int) -> float:
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.pricing",
            "raw-publish",
            nats_url,
            "bench.raw.price_changed",
            str(count),
            str(RAW_PUBLISH_WINDOW),
            str(payload_bytes),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


# ---- load generators -------------------------------------------------------------------------------------


def wrk(base_url: str, seconds: int, token: str) -> WrkRun:
    return run_wrk(
        base_url, LUA, seconds, token, connections=CONNECTIONS, script_args=[str(SKUS), str(STORES), str(BASKET_LINES)]
    )


def check_basket(base_url: str, token: str) -> None:
    """A basket of every store's first 20 SKUs at the storm's new prices: each line and the total right."""
    numbers = list(range(1, BASKET_LINES + 1))
    body = {"store_id": store_id(STORES), "lines": [{"sku": sku_of(n), "quantity": "2"} for n in numbers]}
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{base_url}/v1/prices/effective/basket",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"the basket answered {exc.code}: {exc.read()[:300]!r}") from None
    expected = [Decimal(base_price_fen(n) + PRICE_STEP_FEN).scaleb(-2) for n in numbers]
    prices = [Decimal(line["unit_price"]) for line in answer["lines"]]
    if prices != expected or Decimal(answer["total"]) != 2 * sum(expected):
        raise SystemExit(f"the basket's prices differ from the new ones: {answer}")


# ---- the benchmark ---------------------------------------------------------------------------------------


def bench_pricing(work: Path, seconds: int) -> dict[str, float]:
    work.mkdir(parents=True, exist_ok=True)
    postgres = PostgresServer(work / "postgres")
    nats = NatsServer(work / "nats")
    postgres.start()
    nats.start()
    try:
        for name in ("gateway", "pricing"):
            postgres.create_database(name)
        gateway_url, pricing_url = postgres.url_for("gateway"), postgres.url_for("pricing")
        migrations.upgrade(gateway_url, GATEWAY_VERSIONS)
        migrations.upgrade(pricing_url, PRICING_VERSIONS)
        asyncio.run(provision_streams(nats.url))
        env = {
            **os.environ,
            "APP_ENV": "local",
            "LOG_LEVEL": "WARNING",
            "NATS_URL": nats.url,
            "PYTHONUNBUFFERED": "1",
            "OTEL_TRACES_SAMPLER_ARG": "0.0",
        }
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        stack = Stack(postgres, nats, pricing_url, gateway_url, env)
        client_secret = secrets.token_hex(16)
        # An app back end with an app's default scopes (``prices:read`` among them).
        asyncio.run(register_app_client(gateway_url, CLIENT_ID, client_secret, "bench app (basket prices)"))
        with simulators(stack, work) as stations:
            load_seconds = asyncio.run(load_chain(stack, stations))
            print(
                f"  (loaded {STORES} stores, {SKUS:,} SKUs and {STORES * LABELS_PER_STORE:,} labels in "
                f"{load_seconds:.1f}s)",
                flush=True,
            )
            with (
                pricing_service(stack, work) as (pricing, grpc_port),
                gateway_in_front_of(stack.env, stack.gateway_url, "pricing", grpc_port, pricing, work) as (base, gw),
            ):
                started = time.time()
                watched = {"pricing": pricing} | {f"ESL simulator {s.store_id}": s.process for s in stations}
                synced = asyncio.run(
                    wait_for(
                        pricing_url, "the first label sync", "acknowledged", watched, target=STORES * LABELS_PER_STORE
                    )
                )
                print(
                    f"  (books materialised and every label's first content confirmed {synced - started:.1f}s "
                    "after the service started)",
                    flush=True,
                )
                storm = label_storm(stack, pricing, stations, watched)
                token = token_for(base, CLIENT_ID, client_secret)
                baskets = basket_lookups(stack, base, token, {"pricing": pricing.pid, "gateway": gw.pid}, seconds)
    finally:
        nats.stop()
        postgres.stop()
    return {
        "stores": float(STORES),
        "skus": float(SKUS),
        "labels": float(STORES * LABELS_PER_STORE),
        **storm,
        **baskets,
    }


def label_storm(
    stack: Stack,
    pricing: subprocess.Popen[bytes],
    stations: list[Simulator],
    watched: dict[str, subprocess.Popen[bytes]],
) -> dict[str, float]:
    """Part 1: a change of every SKU's price, from its effective moment until every label confirmed it."""
    labels = STORES * LABELS_PER_STORE
    servers = {"pricing": pricing.pid, **{station.store_id: station.process.pid for station in stations}}
    if stack.nats.process is not None:
        servers["nats"] = stack.nats.process.pid
    effective_at = datetime.now(UTC) + timedelta(seconds=CHANGE_LEAD_SECONDS)
    scheduled = asyncio.run(schedule_storm(stack.pricing_url, effective_at))
    if scheduled != SKUS:
        raise SystemExit(f"{scheduled} price changes scheduled, not {SKUS}")
    if datetime.now(UTC) >= effective_at:
        raise SystemExit(f"inserting the changes took longer than the {CHANGE_LEAD_SECONDS:.0f}s lead")
    with profiled("pricing-storm", {"pricing": pricing.pid}), CpuAccount(servers, stack.postgres) as storm_cpu:
        finished = asyncio.run(
            wait_for(stack.pricing_url, "the label storm", "storm_acknowledged", watched, target=labels)
        )
    used = storm_cpu.used
    simulators = sum(used[station.store_id] for station in stations)
    elapsed = finished - effective_at.timestamp()
    record = asyncio.run(storm_record(stack.pricing_url, effective_at))
    if record.events != labels:
        raise SystemExit(f"{record.events} PriceChanged events written, not one per store and SKU ({labels})")
    print(
        f"  (storm: {labels:,} labels confirmed the new prices {elapsed:.1f}s after the effective moment)", flush=True
    )
    raw = raw_publish_process(stack.nats.url, record.events, round(record.payload_bytes))
    rate = labels / elapsed
    return {
        "price_changes": float(SKUS),
        "storm_all_labels_acknowledged_seconds": elapsed,
        "storm_labels_per_s": rate,
        "storm_books_advanced_seconds": record.books_advanced_seconds,
        "storm_price_changed_events": float(record.events),
        "storm_events_written_seconds": record.events_created_seconds,
        "storm_relay_drained_seconds": record.relay_drained_seconds,
        "storm_relay_publish_per_s": record.relay_publish_per_s,
        "storm_labels_pushed_more_than_once": float(record.labels_pushed_again),
        "raw_jetstream_publish_per_s": raw,
        "storm_label_events_vs_raw_jetstream": rate / raw,
        "storm_relay_vs_raw_jetstream": record.relay_publish_per_s / raw,
        # Where the machine's time went from just before the effective moment to the last
        # confirmation: each process's CPU, the cores' share busy, and their wait for the disk.
        "storm_pricing_cpu_seconds": used["pricing"],
        "storm_esl_simulators_cpu_seconds": simulators,
        "storm_postgres_cpu_seconds": used.get("postgres", 0.0),
        "storm_nats_cpu_seconds": used.get("nats", 0.0),
        "storm_rest_cpu_seconds": used["rest"],
        "storm_machine_busy_vs_all_cores": storm_cpu.busy_vs_all_cores(),
        "storm_machine_iowait_seconds": storm_cpu.iowait,
        "pricing_rss_mb_after_storm": rss_mb(pricing.pid),
    }


def basket_lookups(stack: Stack, base_url: str, token: str, pids: dict[str, int], seconds: int) -> dict[str, float]:
    """Part 2: baskets priced through the gateway beside pgbench's reads of the same rows."""
    check_basket(base_url, token)
    script = Path(stack.postgres.state_dir) / "basket.sql"
    script.write_text(basket_script())
    wrk(base_url, max(2, seconds // 2), token)  # warm-up: connection pools, prepared statements
    pgbench_tps = pgbench(stack.postgres, "pricing", script, seconds, CONNECTIONS, prepared=True).tps
    with profiled("pricing-baskets", pids), CpuAccount(pids, stack.postgres) as basket_cpu:
        run = wrk(base_url, seconds, token)
    if run.non_2xx or run.socket_errors or not run.requests:
        raise SystemExit(f"basket lookups failed under load: {run}")
    return {
        "pgbench_basket_reads_tps": pgbench_tps,
        "gateway_baskets_per_s": run.rps,
        "gateway_basket_lines_per_s": run.rps * BASKET_LINES,
        "baskets_vs_pgbench_basket_reads": run.rps / pgbench_tps,
        "basket_p50_ms": run.p50_ms,
        "basket_p99_ms": run.p99_ms,
        # Where the machine's CPU went per basket (bench/cpu.py).
        **basket_cpu.per_operation_ms(run.requests, "basket"),
    }


if __name__ == "__main__":
    if len(sys.argv) != 7 or sys.argv[1] != "raw-publish":
        sys.exit("usage: python -m bench.pricing raw-publish NATS_URL SUBJECT COUNT WINDOW PAYLOAD_BYTES")
    _, _, nats_url, subject, count, window, size = sys.argv
    print(f"{asyncio.run(raw_publish(nats_url, subject, int(count), int(window), int(size))):.1f}")
