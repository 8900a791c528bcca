"""POS sales ingestion: sale lines per second journaled (JetStream-acked) through the gateway.

``wrk`` (its own process) uploads batches of fresh sales to ``POST /v1/pos/sales/batch``
of a real ``python -m gateway``; every answer comes after JetStream acknowledged each
sale. Beside it, in the same run and on the same PostgreSQL, ``pgbench`` inserts the
same number of rows per transaction into ``journaled_sale`` as the gateway records per
batch: the database write ceiling of the path. The gateway runs twice, with tracing off
(sampling 0) and on (every request sampled, spans exported over OTLP to a sink that
drops them), to show what tracing costs.

The journal count is checked afterwards: messages in SALES equal the sales answered.
A raw JetStream publisher (acknowledged publishes, no gateway, no database) gives the
journal's own ceiling: JetStream syncs every write to disk, and that bounds everything.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from bench.http import serve
from devstack.servers import NatsServer, PostgresServer, free_port
from gateway.adapters.client_registry import ClientRegistry
from gateway.domain.clients import ClientKind, ClientRegistration, hash_client_secret
from gateway.domain.scopes import default_scopes
from servicekit import migrations
from servicekit.db import create_engine
from servicekit.messaging import connect_nats

GATEWAY_VERSIONS = Path(__file__).resolve().parent.parent / "gateway" / "migrations" / "versions"
LUA = Path(__file__).resolve().parent / "pos_batch.lua"
STORE = "S001"
TERMINAL = "S001-POS01"
SALES_PER_BATCH = 100
LINES_PER_SALE = 3
CONNECTIONS = 8

JOURNAL_WRITE = f"""\\set batch random(1, 1000000000)
BEGIN;
INSERT INTO journaled_sale (sale_id, kind, location_id, submitted_by, occurred_at, stream_sequence)
  SELECT gen_random_uuid()::text, 'sale', '{STORE}', '{TERMINAL}', now(), :batch
  FROM generate_series(1, {SALES_PER_BATCH}) ON CONFLICT (sale_id) DO NOTHING;
COMMIT;
"""


async def register_terminal(database_url: str, secret: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, application_name="bench")
    try:
        await ClientRegistry(engine).register(
            ClientRegistration(
                client_id=TERMINAL,
                kind=ClientKind.POS_TERMINAL,
                display_name="bench till",
                secret_hash=hash_client_secret(secret),
                scopes=default_scopes(ClientKind.POS_TERMINAL),
                store_id=STORE,
                terminal_id=TERMINAL,
            )
        )
    finally:
        await engine.dispose()


def token(base_url: str, secret: str) -> str:
    import httpx

    response = httpx.post(
        f"{base_url}/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": TERMINAL, "client_secret": secret},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def wrk_batches(base_url: str, access_token: str, seconds: int, connections: int = CONNECTIONS) -> tuple[float, int]:
    """(batches per second, batches answered 200) from wrk running the batch script."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (make bench installs it from Debian's packages when run as root)")
    output = subprocess.run(
        [binary, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA), base_url, "--",
         access_token, STORE, str(SALES_PER_BATCH), str(LINES_PER_SALE)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
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


def python_module(*args: str) -> float:
    from bench.__main__ import python_module as run

    return run(*args)


def pgbench_batches(postgres: PostgresServer, database: str, work: Path, seconds: int) -> float:
    from bench.__main__ import pgbench  # the shared runner; imported late, __main__ imports this module

    script = work / "journal_write.sql"
    script.write_text(JOURNAL_WRITE)
    tps, _ = pgbench(postgres, database, script, seconds, clients=8)
    return tps


def bench_pos(work: Path, seconds: int) -> dict[str, float]:
    postgres = PostgresServer(work / "postgres")
    nats = NatsServer(work / "nats")
    postgres.start()
    nats.start()
    secret = uuid.uuid4().hex
    figures: dict[str, float] = {}
    try:
        postgres.create_database("gateway")
        url = postgres.url_for("gateway")
        asyncio.run(asyncio.to_thread(migrations.upgrade, url, GATEWAY_VERSIONS))
        asyncio.run(register_terminal(url, secret))
        journaled = 0
        for label, tracing in (("tracing_off", False), ("tracing_on", True)):
            rate, answered = run_gateway(url, nats.url, secret, seconds, tracing=tracing)
            journaled += answered * SALES_PER_BATCH
            figures[f"gateway_{label}_sale_lines_per_s"] = rate * SALES_PER_BATCH * LINES_PER_SALE
        in_stream = asyncio.run(journal_size(nats.url))
        if in_stream < journaled:
            raise SystemExit(f"the journal holds {in_stream} sales but {journaled} were answered as journaled")
        # The journal's own ceiling: acknowledged publishes alone, as many in flight as wrk keeps.
        raw = python_module(
            "bench.js_publish", nats.url, "retail.sales.v1.sale_recorded.RAW", str(max(1000, journaled // 2)),
            str(CONNECTIONS * SALES_PER_BATCH),
        )  # fmt: skip
        figures["raw_jetstream_publish_sale_lines_per_s"] = raw * LINES_PER_SALE
        batch_tps = pgbench_batches(postgres, "gateway", work, seconds)
        figures["pgbench_journal_write_sale_lines_per_s"] = batch_tps * SALES_PER_BATCH * LINES_PER_SALE
    finally:
        nats.stop()
        postgres.stop()
    off, on = figures["gateway_tracing_off_sale_lines_per_s"], figures["gateway_tracing_on_sale_lines_per_s"]
    return figures | {
        "sales_journaled": float(in_stream),
        "gateway_vs_pgbench_journal_write": off / figures["pgbench_journal_write_sale_lines_per_s"],
        "gateway_vs_raw_jetstream_publish": off / figures["raw_jetstream_publish_sale_lines_per_s"],
        "tracing_on_vs_off": on / off,
    }


def run_gateway(database_url: str, nats_url: str, secret: str, seconds: int, *, tracing: bool) -> tuple[float, int]:
    port = free_port()
    env = {
        **os.environ, "APP_ENV": "local", "HTTP_PORT": str(port), "LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url, "NATS_URL": nats_url,
        "RATE_LIMIT_PER_SECOND": "1000000", "RATE_LIMIT_BURST": "1000000",
        "OTEL_TRACES_SAMPLER_ARG": "1.0" if tracing else "0.0",
    }  # fmt: skip
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    sink = None
    if tracing:
        sink_port = free_port()
        sink = subprocess.Popen([sys.executable, "-m", "bench.otlp_sink", str(sink_port)], stdout=subprocess.PIPE)
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
    base_url = f"http://127.0.0.1:{port}"
    gateway = serve([sys.executable, "-m", "gateway"], env, f"{base_url}/healthz")
    try:
        return wrk_batches(base_url, token(base_url, secret), seconds)
    finally:
        gateway.terminate()
        gateway.wait(20)
        if sink is not None:
            sink.terminate()
            spans = sink.communicate(timeout=20)[0].decode().strip()
            print(f"  (tracing on: the sink received {spans} spans)", flush=True)
