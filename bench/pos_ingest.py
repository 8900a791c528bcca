"""POS sales ingestion, upload → journal → inventory applied, and the gateway's added latency.

``wrk`` (its own process) uploads batches of fresh sales to ``POST /v1/pos/sales/batch``
of a real ``python -m gateway``; every answer comes after JetStream acknowledged each sale.

1. End to end (tracing off): the real inventory service (``python -m services.inventory``)
   consumes the ``SALES`` stream while the tills upload, as in production, and applies
   every sale to stock. Timed: sale lines per second from the first upload until
   inventory has applied every journaled sale (the bench polls the sold levels' on-hand,
   under a deadline that only progress extends, and takes the moment from the consumer's
   inbox), the consumer lag when the upload ended
   and how long it took to drain, and inventory's own apply rate while draining. Then
   inventory's inbox, ledger and levels are checked to hold every journaled sale once.
2. Upload → journal alone (inventory stopped), with tracing off (sampling 0) and on
   (every request sampled, spans exported over OTLP to a sink that drops them), to show
   what tracing costs. The journal is checked to hold every sale answered.
3. With tracing off, bench/gateway_latency.py compares p50/p99 of a stock read and of a
   reservation through the gateway against the same gRPC calls made straight to inventory
   (one call in flight, and eight).

Baselines of the same run, on the same PostgreSQL and NATS:

* ``pgbench`` inserting as many ``journaled_sale`` rows per transaction as the gateway
  records per batch: the database write ceiling of the upload leg;
* a raw JetStream publisher (acknowledged publishes, no gateway, no database): the
  journal's own ceiling (JetStream syncs every write to disk, and that bounds everything);
* ``pgbench`` applying one sale line the naive way, one transaction of an on-hand
  decrement and a movement row on the same stock levels, with as many clients as wrk has
  connections (the database's ceiling) and with one (a consumer applying one at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg
from nats.js.errors import NotFoundError

from bench import gateway_latency
from bench.baseline import grpc_service, pgbench, profiled, python_module
from bench.grpc_latency import LOCATION as ONLINE
from bench.http import serve
from devstack.servers import NatsServer, PostgresServer, free_port
from gateway.adapters.client_registry import ClientRegistry
from gateway.domain.clients import ClientKind, ClientRegistration, hash_client_secret
from gateway.domain.scopes import default_scopes
from gateway.migrate import GATEWAY_VERSIONS
from servicekit import migrations
from servicekit.db import create_engine
from servicekit.messaging import connect_nats
from services.inventory.entrypoints.sales_consumer import SALES_CONSUMER
from services.inventory.migrate import VERSIONS as INVENTORY_VERSIONS

LUA = Path(__file__).resolve().parent / "pos_batch.lua"
STORE = "S001"
TERMINAL = "S001-POS01"
APP_CLIENT = "BENCH-LATENCY-APP"
SALES_PER_BATCH = 100
LINES_PER_SALE = 3  # pos_batch.lua sells SKU-1 … SKU-{LINES_PER_SALE}
UNITS_PER_LINE = 2  # … two of each
OPENING_ON_HAND = 100_000_000  # never runs short: no discrepancies, every sale is a plain one
CONNECTIONS = 8
POLL_SECONDS = 0.1
STALL_SECONDS = 60.0  # the drain fails when inventory applies nothing for this long

JOURNAL_WRITE = f"""\\set batch random(1, 1000000000)
BEGIN;
INSERT INTO journaled_sale (sale_id, kind, location_id, submitted_by, occurred_at, stream_sequence)
  SELECT gen_random_uuid()::text, 'sale', '{STORE}', '{TERMINAL}', now(), :batch
  FROM generate_series(1, {SALES_PER_BATCH}) ON CONFLICT (sale_id) DO NOTHING;
COMMIT;
"""
SALE_LINE_APPLY = f"""\\set n random(1, {LINES_PER_SALE})
BEGIN;
UPDATE stock_level SET on_hand = on_hand - {UNITS_PER_LINE}, updated_at = now()
  WHERE sku = 'SKU-' || :n AND location_id = '{STORE}';
INSERT INTO stock_movement (sku, location_id, kind, on_hand_delta, reference)
  VALUES ('SKU-' || :n, '{STORE}', 'sale', -{UNITS_PER_LINE}, 'pgbench-' || :client_id);
COMMIT;
"""
INVENTORY_SEED = f"""
INSERT INTO location (location_id, name, kind, channels)
  VALUES ('{STORE}', 'bench store', 'store', '{{store}}'), ('{ONLINE}', 'online', 'online', '{{online}}');
INSERT INTO item (sku, name) SELECT 'SKU-' || n, 'sold at the till' FROM generate_series(1, {LINES_PER_SALE}) n;
INSERT INTO item (sku, name)
  SELECT 'LAT' || lpad(n::text, 5, '0'), 'read and reserved' FROM generate_series(1, {gateway_latency.LATENCY_SKUS}) n;
INSERT INTO stock_level (sku, location_id, on_hand)
  SELECT sku, CASE WHEN sku LIKE 'SKU-%' THEN '{STORE}' ELSE '{ONLINE}' END, {OPENING_ON_HAND}
  FROM item;
INSERT INTO stock_movement (sku, location_id, kind, on_hand_delta)
  SELECT sku, location_id, 'opening_balance', on_hand FROM stock_level;
"""


@dataclass(frozen=True)
class Stack:
    """The servers and databases every run of this benchmark shares."""

    postgres: PostgresServer
    nats: NatsServer
    gateway_url: str
    inventory_url: str
    terminal_secret: str
    app_secret: str


@dataclass(frozen=True)
class Run:
    """One upload under load, and inventory catching up with it."""

    upload_batches_per_s: float
    answered_sales: int  # sales in the batches wrk saw answered 200
    applied_sales: int  # sales inventory applied during this run
    lag_at_upload_end: int  # sales journaled but not yet applied when the upload stopped
    drained_sales: int  # sales inventory applied after the upload stopped, with the tills quiet
    seconds_to_applied: float  # from the first upload until inventory applied the last sale
    drain_seconds: float  # from the end of the upload until inventory applied the last sale


async def register_clients(database_url: str, terminal_secret: str, app_secret: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, application_name="bench")
    try:
        registry = ClientRegistry(engine)
        await registry.register(
            ClientRegistration(
                client_id=TERMINAL,
                kind=ClientKind.POS_TERMINAL,
                display_name="bench till",
                secret_hash=hash_client_secret(terminal_secret),
                scopes=default_scopes(ClientKind.POS_TERMINAL),
                store_id=STORE,
                terminal_id=TERMINAL,
            )
        )
        await registry.register(
            ClientRegistration(
                client_id=APP_CLIENT,
                kind=ClientKind.APP,
                display_name="bench app (latency)",
                secret_hash=hash_client_secret(app_secret),
                scopes=default_scopes(ClientKind.APP),
            )
        )
    finally:
        await engine.dispose()


async def seed_inventory(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(INVENTORY_SEED)
    finally:
        await connection.close()


def token(base_url: str, client_id: str, secret: str) -> str:
    import httpx

    response = httpx.post(
        f"{base_url}/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def wrk_batches(base_url: str, access_token: str, seconds: int, connections: int = CONNECTIONS) -> tuple[float, int]:
    """(batches per second, batches answered 200) from wrk running the batch script."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (make bench installs it from Debian's packages when run as root)")
    output = subprocess.run(
        [
            binary,
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(LUA),
            base_url,
            "--",
            access_token,
            STORE,
            str(SALES_PER_BATCH),
            str(LINES_PER_SALE),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk saw errors:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    answered = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return rate, answered


async def journal_size(nats_url: str) -> int:
    client = await connect_nats(nats_url, name="bench-count")
    try:
        info = await client.jetstream().stream_info("SALES")
        return int(info.state.messages)
    finally:
        await client.close()


async def wait_for_sales_consumer(nats_url: str, inventory: subprocess.Popen[bytes]) -> None:
    """Until inventory's durable consumer of SALES exists (it declares it once the gateway made the stream)."""
    client = await connect_nats(nats_url, name="bench-consumer-check")
    timeout = 30.0
    try:
        deadline = time.monotonic() + timeout
        while True:
            if inventory.poll() is not None:
                raise SystemExit(f"the inventory service exited with code {inventory.returncode}")
            try:
                await client.jetstream().consumer_info(SALES_CONSUMER.stream, SALES_CONSUMER.durable)
                return
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"inventory did not declare its SALES consumer within {timeout}s") from None
                await asyncio.sleep(0.1)
    finally:
        await client.close()


async def _applied(connection: asyncpg.Connection) -> int:
    """Sales inventory has applied, read from the sold levels' on-hand (every sale sells the same)."""
    on_hand = await connection.fetchval(
        "SELECT sum(on_hand) FROM stock_level WHERE location_id = $1 AND sku LIKE 'SKU-%'", STORE
    )
    return int((Decimal(OPENING_ON_HAND * LINES_PER_SALE) - on_hand) / (UNITS_PER_LINE * LINES_PER_SALE))


async def applied_sales(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return await _applied(connection)
    finally:
        await connection.close()


async def wait_until_applied(url: str, target: int, inventory: subprocess.Popen[bytes]) -> float:
    """Poll until inventory applied ``target`` sales; returns when it handled the last one (``time.time()``).

    That moment is the consumer's own record, the newest ``inbox.handled_at``, so neither
    the polling interval nor stopping the gateway meanwhile blurs it. The deadline moves on
    with progress: only a consumer that applies nothing for :data:`STALL_SECONDS` (or
    exits) fails the benchmark.
    """
    connection = await asyncpg.connect(url)
    try:
        last, deadline = -1, time.monotonic() + STALL_SECONDS
        while (applied := await _applied(connection)) < target:
            now = time.monotonic()
            if applied != last:
                last, deadline = applied, now + STALL_SECONDS
            elif now > deadline:
                raise SystemExit(f"inventory stalled at {applied} of {target} sales for {STALL_SECONDS:.0f}s")
            if inventory.poll() is not None:
                raise SystemExit(f"the inventory service exited with code {inventory.returncode}")
            await asyncio.sleep(POLL_SECONDS)
        if applied > target:
            raise SystemExit(f"inventory applied {applied} sales but only {target} were journaled")
        return float(
            await connection.fetchval(
                "SELECT extract(epoch FROM max(handled_at)) FROM inbox WHERE consumer = $1", SALES_CONSUMER.durable
            )
        )
    finally:
        await connection.close()


async def check_inventory(url: str, journaled: int) -> dict[str, float]:
    """Every journaled sale applied once: inbox rows, sale movements and levels agree with the journal."""
    connection = await asyncpg.connect(url)
    try:
        inbox = await connection.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = $1 AND subject LIKE 'retail.sales.v1.sale_recorded.%'",
            SALES_CONSUMER.durable,
        )
        movements = await connection.fetchval(
            "SELECT count(*) FROM stock_movement WHERE kind = 'sale' AND location_id = $1", STORE
        )
        drift = await connection.fetchval(
            "SELECT count(*) FROM stock_level s WHERE s.on_hand <> (SELECT coalesce(sum(on_hand_delta), 0) "
            "FROM stock_movement m WHERE m.sku = s.sku AND m.location_id = s.location_id)"
        )
        discrepancies = await connection.fetchval("SELECT count(*) FROM stock_discrepancy")
    finally:
        await connection.close()
    if inbox != journaled or movements != journaled * LINES_PER_SALE or drift or discrepancies:
        raise SystemExit(
            f"inventory does not match the journal ({journaled} sales): inbox {inbox}, sale movements "
            f"{movements} (want {journaled * LINES_PER_SALE}), levels differing from the ledger {drift}, "
            f"discrepancies {discrepancies}"
        )
    return {"sales_applied_by_inventory": float(inbox)}


def bench_pos(work: Path, seconds: int) -> dict[str, float]:
    postgres = PostgresServer(work / "postgres")
    nats = NatsServer(work / "nats")
    postgres.start()
    nats.start()
    figures: dict[str, float] = {}
    try:
        for name in ("gateway", "inventory"):
            postgres.create_database(name)
        stack = Stack(
            postgres,
            nats,
            postgres.url_for("gateway"),
            postgres.url_for("inventory"),
            uuid.uuid4().hex,
            uuid.uuid4().hex,
        )
        migrations.upgrade(stack.gateway_url, GATEWAY_VERSIONS)
        migrations.upgrade(stack.inventory_url, INVENTORY_VERSIONS)
        asyncio.run(seed_inventory(stack.inventory_url))
        asyncio.run(register_clients(stack.gateway_url, stack.terminal_secret, stack.app_secret))

        # End to end, tracing off: inventory consumes while the tills upload, as in production.
        with inventory_service(stack, work) as behind:
            run = upload_and_apply(stack, behind, seconds)
            print(
                f"  (end to end: {run.applied_sales:,} sales journaled, {run.lag_at_upload_end:,} of them not yet "
                f"applied when the upload ended, all applied {run.drain_seconds:.1f}s later)",
                flush=True,
            )
            latencies = latency(stack, behind, work, seconds)
        pipeline_journaled = asyncio.run(journal_size(nats.url))
        if pipeline_journaled < run.answered_sales or run.applied_sales != pipeline_journaled:
            raise SystemExit(
                f"the journal holds {pipeline_journaled} sales; {run.answered_sales} were answered as journaled; "
                f"inventory applied {run.applied_sales}"
            )
        applied = asyncio.run(check_inventory(stack.inventory_url, pipeline_journaled))

        # Upload → journal alone (inventory stopped), tracing off and on.
        answered = run.answered_sales
        for label, tracing in (("tracing_off", False), ("tracing_on", True)):
            rate, answered_now = upload_only(stack, seconds, tracing=tracing)
            answered += answered_now * SALES_PER_BATCH
            figures[f"gateway_{label}_sale_lines_per_s"] = rate * SALES_PER_BATCH * LINES_PER_SALE
        journaled = asyncio.run(journal_size(nats.url))
        if journaled < answered:
            raise SystemExit(f"the journal holds {journaled} sales but {answered} were answered as journaled")

        # The journal's own ceiling: acknowledged publishes alone, as many in flight as wrk keeps.
        raw = python_module(
            "bench.js_publish",
            nats.url,
            "retail.sales.v1.sale_recorded.RAW",
            str(max(1000, journaled // 2)),
            str(CONNECTIONS * SALES_PER_BATCH),
        )
        figures["raw_jetstream_publish_sale_lines_per_s"] = raw * LINES_PER_SALE
        journal_write, sale_line = work / "journal_write.sql", work / "sale_line_apply.sql"
        journal_write.write_text(JOURNAL_WRITE)
        sale_line.write_text(SALE_LINE_APPLY)
        batch_tps = pgbench(postgres, "gateway", journal_write, seconds, CONNECTIONS).tps
        figures["pgbench_journal_write_sale_lines_per_s"] = batch_tps * SALES_PER_BATCH * LINES_PER_SALE
        apply_tps = pgbench(postgres, "inventory", sale_line, seconds, CONNECTIONS).tps
        apply_one_tps = pgbench(postgres, "inventory", sale_line, seconds, 1).tps
    finally:
        nats.stop()
        postgres.stop()
    off, on = figures["gateway_tracing_off_sale_lines_per_s"], figures["gateway_tracing_on_sale_lines_per_s"]
    end_to_end = run.applied_sales * LINES_PER_SALE / run.seconds_to_applied
    return figures | {
        "sales_journaled": float(journaled),
        "gateway_vs_pgbench_journal_write": off / figures["pgbench_journal_write_sale_lines_per_s"],
        "gateway_vs_raw_jetstream_publish": off / figures["raw_jetstream_publish_sale_lines_per_s"],
        "tracing_on_vs_off": on / off,
        "end_to_end_sale_lines_per_s": end_to_end,
        "end_to_end_upload_sale_lines_per_s": run.upload_batches_per_s * SALES_PER_BATCH * LINES_PER_SALE,
        # Meaningful when a lag was left to drain; 0 when inventory kept up with the tills.
        "inventory_apply_alone_sale_lines_per_s": (
            run.drained_sales * LINES_PER_SALE / run.drain_seconds if run.drain_seconds > 0.5 else 0.0
        ),
        "consumer_lag_at_upload_end_sales": float(run.lag_at_upload_end),
        "consumer_lag_drain_seconds": run.drain_seconds,
        **applied,
        f"pgbench_sale_line_apply_{CONNECTIONS}_clients_per_s": apply_tps,
        "pgbench_sale_line_apply_1_client_per_s": apply_one_tps,
        "end_to_end_vs_pgbench_sale_line_apply": end_to_end / apply_tps,
        "end_to_end_vs_pgbench_sale_line_apply_1_client": end_to_end / apply_one_tps,
        "end_to_end_vs_upload_alone": end_to_end / off,
        **latencies,
    }


@dataclass(frozen=True)
class Services:
    """What runs behind the gateway: the inventory service and where it answers gRPC."""

    inventory: subprocess.Popen[bytes]
    grpc_port: int


@contextlib.contextmanager
def inventory_service(stack: Stack, work: Path) -> Iterator[Services]:
    """The real inventory service (gRPC API, SALES consumer), untraced, for the context's duration."""
    env = base_env(stack, tracing_endpoint=None)
    with grpc_service("services.inventory", env, stack.inventory_url, work / "inventory.log") as (inventory, grpc_port):
        yield Services(inventory, grpc_port)


def base_env(stack: Stack, *, tracing_endpoint: str | None) -> dict[str, str]:
    """Environment of a service process: tracing off, or every request sampled and sent to the sink."""
    sampled = "0.0" if tracing_endpoint is None else "1.0"
    env = {
        **os.environ,
        "APP_ENV": "local",
        "LOG_LEVEL": "WARNING",
        "NATS_URL": stack.nats.url,
        "PYTHONUNBUFFERED": "1",
        "OTEL_TRACES_SAMPLER_ARG": sampled,
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    if tracing_endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = tracing_endpoint
    return env


@contextlib.contextmanager
def gateway(stack: Stack, behind: Services | None, *, tracing_endpoint: str | None = None) -> Iterator[str]:
    """A gateway (in front of the inventory service when given), ready; yields its base URL.

    Stopping it is graceful: requests wrk left in flight finish (and are journaled) before
    the context exits.
    """
    port = free_port()
    env = {
        **base_env(stack, tracing_endpoint=tracing_endpoint),
        "HTTP_PORT": str(port),
        "DATABASE_URL": stack.gateway_url,
        "DB_POOL_SIZE": "20",
        "RATE_LIMIT_PER_SECOND": "1000000",
        "RATE_LIMIT_BURST": "1000000",
    }
    if behind is not None:
        env["GATEWAY_BACKENDS"] = f"inventory=127.0.0.1:{behind.grpc_port}"
    base_url = f"http://127.0.0.1:{port}"
    process = serve([sys.executable, "-m", "gateway"], env, f"{base_url}/healthz")
    try:
        watched = {"gateway": process} | ({} if behind is None else {"inventory": behind.inventory})
        wait_ready(f"{base_url}/readyz", watched)
        yield base_url
    finally:
        process.terminate()
        process.wait(20)


def wait_ready(url: str, processes: dict[str, subprocess.Popen[bytes]], timeout: float = 60.0) -> None:
    """Wait until ``url`` answers 200 and, for the gateway's ``/readyz``, every backend it reports
    is ``ok`` too (a backend's state does not decide the gateway's readiness; a bench needs both)."""
    deadline = time.monotonic() + timeout
    while True:
        for name, process in processes.items():
            if process.poll() is not None:
                raise SystemExit(f"the {name} process exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                if backends_serve(answer.read()):
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not report ready within {timeout:.0f}s") from None
        time.sleep(0.1)


def backends_serve(readiness: bytes) -> bool:
    """Whether every backend a ``/readyz`` answer lists is ``ok`` (true for any other answer)."""
    try:
        backends = json.loads(readiness).get("backends", {})
    except (ValueError, AttributeError):
        return True
    return all(state == "ok" for state in backends.values())


def upload_and_apply(stack: Stack, behind: Services, seconds: int) -> Run:
    """Upload for ``seconds`` while inventory consumes; then wait until it applied every journaled sale."""
    applied_before = asyncio.run(applied_sales(stack.inventory_url))
    with gateway(stack, behind) as base_url:
        asyncio.run(wait_for_sales_consumer(stack.nats.url, behind.inventory))
        access_token = token(base_url, TERMINAL, stack.terminal_secret)
        started = time.time()  # wall clock: compared with PostgreSQL's on this machine
        with profiled("pos-upload", {"inventory": behind.inventory.pid}):
            rate, answered = wrk_batches(base_url, access_token, seconds)
        upload_ended = time.time()
        applied_at_upload_end = asyncio.run(applied_sales(stack.inventory_url))
        lag = asyncio.run(journal_size(stack.nats.url)) - applied_at_upload_end
    journaled = asyncio.run(journal_size(stack.nats.url))  # final: the gateway finished what was in flight
    with profiled("pos-drain", {"inventory": behind.inventory.pid}):
        applied_at = asyncio.run(wait_until_applied(stack.inventory_url, journaled, behind.inventory))
    return Run(
        upload_batches_per_s=rate,
        answered_sales=answered * SALES_PER_BATCH,
        applied_sales=journaled - applied_before,
        lag_at_upload_end=lag,
        drained_sales=journaled - applied_at_upload_end,
        seconds_to_applied=applied_at - started,
        drain_seconds=applied_at - upload_ended,
    )


def upload_only(stack: Stack, seconds: int, *, tracing: bool) -> tuple[float, int]:
    """(batches per second, batches answered) of an upload to a gateway alone, tracing off or on."""
    sink = None
    endpoint = None
    if tracing:
        sink_port = free_port()
        sink = subprocess.Popen([sys.executable, "-m", "bench.otlp_sink", str(sink_port)], stdout=subprocess.PIPE)
        endpoint = f"http://127.0.0.1:{sink_port}"
    try:
        with gateway(stack, None, tracing_endpoint=endpoint) as base_url:
            return wrk_batches(base_url, token(base_url, TERMINAL, stack.terminal_secret), seconds)
    finally:
        if sink is not None:
            sink.terminate()
            spans = sink.communicate(timeout=20)[0].decode().strip()
            print(f"  (tracing on: the sink received {spans} spans)", flush=True)


def latency(stack: Stack, behind: Services, work: Path, seconds: int) -> dict[str, float]:
    with gateway(stack, behind) as base_url:
        access_token = token(base_url, APP_CLIENT, stack.app_secret)
        return gateway_latency.measure(
            base_url, access_token, f"127.0.0.1:{behind.grpc_port}", APP_CLIENT, work, max(3, seconds // 2)
        )
