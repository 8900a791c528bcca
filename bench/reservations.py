"""Reservations through the gateway against pgbench's naive one-UPDATE-per-request rate.

Side by side on one PostgreSQL (durable settings, as in production):

* pgbench, 64 clients: the equivalent single conditional UPDATE (reserve one unit if
  available-to-promise allows) on one hot row, and on rows spread over 10,000 SKUs;
* wrk, 64 connections, against ``POST /v1/reservations`` on the real gateway and inventory
  processes: authentication, scope check, Idempotency-Key record, gRPC, the coalesced
  reservation transaction (reservation rows, ledger movements, request-id store);
* an oversell check: a burst against a SKU with 100 units must hold exactly 100.

Printed: reservations/s ÷ pgbench TPS for the hot SKU and for spread SKUs, p50/p99
latency, how many reservations each coalesced batch carried, and the processes' memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg

from bench.baseline import pgbench, profiled
from bench.cpu import CpuAccount
from bench.http import wait_for
from devstack.servers import NatsServer, PostgresServer, free_port
from gateway.adapters.client_registry import ClientRegistry
from gateway.domain.clients import ClientKind, ClientRegistration, hash_client_secret
from gateway.domain.scopes import default_scopes
from gateway.migrate import GATEWAY_VERSIONS
from servicekit import migrations
from servicekit.db import create_engine
from services.inventory.migrate import VERSIONS as INVENTORY_VERSIONS

CONNECTIONS = 64
SPREAD_SKUS = 10_000
LIMITED_STOCK = 100

HOT_UPDATE = """UPDATE stock_level SET reserved = reserved + 1
  WHERE sku = 'HOT' AND location_id = 'ONLINE01' AND on_hand - reserved - safety_stock >= 1;
"""
SPREAD_UPDATE = """\\set n random(1, 10000)
UPDATE stock_level SET reserved = reserved + 1
  WHERE sku = 'SPR' || lpad(:n::text, 5, '0') AND location_id = 'ONLINE01' AND on_hand - reserved - safety_stock >= 1;
"""
WRK_SCRIPT = """
local counter = 0
local prefix
function setup(thread)
  thread:set("tid", tostring(math.random(1, 1000000000)))
end
function init(args)
  prefix = args[1] .. "-" .. tid
  mode = args[2]
  token = os.getenv("BENCH_TOKEN")
end
request = function()
  counter = counter + 1
  local sku = mode
  if mode == "spread" then sku = string.format("SPR%05d", math.random(1, 10000)) end
  local body = '{"sku":"' .. sku .. '","quantity":"1","location_id":"ONLINE01","ttl_seconds":172800}'
  return wrk.format("POST", "/v1/reservations", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }, body)
end
"""


async def seed(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            """
            INSERT INTO location (location_id, name, kind, channels)
              VALUES ('ONLINE01', 'online', 'online', '{online}');
            INSERT INTO item (sku, name)
              SELECT 'SPR' || lpad(n::text, 5, '0'), 'spread' FROM generate_series(1, 10000) n;
            INSERT INTO item (sku, name) VALUES ('HOT', 'hot'), ('LIMITED', 'limited');
            INSERT INTO stock_level (sku, location_id, on_hand) SELECT sku, 'ONLINE01', 100000000 FROM item;
            UPDATE stock_level SET on_hand = 100 WHERE sku = 'LIMITED';
            INSERT INTO stock_movement (sku, location_id, kind, on_hand_delta)
              SELECT sku, location_id, 'opening_balance', on_hand FROM stock_level;
            """
        )
    finally:
        await connection.close()


async def reset_reserved(url: str) -> None:
    """pgbench's UPDATEs bypass the ledger; put the rows back before the real runs."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("UPDATE stock_level SET reserved = 0")
    finally:
        await connection.close()


def wrk(url: str, script: Path, mode: str, seconds: int, token: str) -> dict[str, float]:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url, "--", mode, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_TOKEN": token},
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _latency_ms(output, "50%"),
        "p99_ms": _latency_ms(output, "99%"),
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
    }


def _latency_ms(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def register_app_client(
    gateway_url: str, client_id: str, secret: str, display_name: str, scopes: frozenset[str] | None = None
) -> None:
    """Register a benchmark's app back end straight in the gateway's client registry (an app's
    default scopes unless ``scopes`` narrows them)."""
    engine = create_engine(gateway_url, pool_size=1, max_overflow=0, application_name="bench")
    try:
        await ClientRegistry(engine).register(
            ClientRegistration(
                client_id=client_id,
                kind=ClientKind.APP,
                display_name=display_name,
                secret_hash=hash_client_secret(secret),
                scopes=scopes if scopes is not None else default_scopes(ClientKind.APP),
            )
        )
    finally:
        await engine.dispose()


def token_for(base: str, client_id: str, secret: str) -> str:
    body = f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}".encode()
    request = urllib.request.Request(f"{base}/v1/auth/token", data=body, method="POST")  # noqa: S310 - loopback
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return str(json.loads(response.read())["access_token"])


async def check_no_oversell(url: str) -> dict[str, float]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            "SELECT on_hand, reserved, (SELECT coalesce(sum(quantity), 0) FROM reservation_allocation a "
            "JOIN reservation r USING (reservation_id) WHERE r.sku = 'LIMITED') AS held FROM stock_level "
            "WHERE sku = 'LIMITED'"
        )
        drift = await connection.fetchval(
            "SELECT count(*) FROM stock_level s WHERE s.reserved <> (SELECT coalesce(sum(reserved_delta), 0) "
            "FROM stock_movement m WHERE m.sku = s.sku AND m.location_id = s.location_id)"
        )
    finally:
        await connection.close()
    assert row is not None
    return {
        "limited_on_hand": float(row["on_hand"]),
        "limited_reserved": float(row["reserved"]),
        "limited_held_by_reservations": float(row["held"]),
        "levels_where_ledger_differs": float(drift),
    }


def bench_reservations(work: Path, seconds: int) -> dict[str, float]:
    postgres = PostgresServer(work / "postgres")
    nats = NatsServer(work / "nats")
    postgres.start()
    nats.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("inventory", "gateway"):
            postgres.create_database(name)
        inventory_url, gateway_url = postgres.url_for("inventory"), postgres.url_for("gateway")
        migrations.upgrade(inventory_url, INVENTORY_VERSIONS)
        migrations.upgrade(gateway_url, GATEWAY_VERSIONS)
        asyncio.run(seed(inventory_url))
        hot, spread = work / "hot.sql", work / "spread.sql"
        hot.write_text(HOT_UPDATE)
        spread.write_text(SPREAD_UPDATE)
        with CpuAccount({}, postgres) as pgbench_hot_cpu:
            pgbench_hot_run = pgbench(postgres, "inventory", hot, seconds, CONNECTIONS)
        pgbench_hot = pgbench_hot_run.tps
        pgbench_spread = pgbench(postgres, "inventory", spread, seconds, CONNECTIONS).tps
        asyncio.run(reset_reserved(inventory_url))

        grpc_port, http_port = free_port(), free_port()
        base_env = {
            **os.environ,
            "APP_ENV": "local",
            "NATS_URL": nats.url,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        inventory = subprocess.Popen(
            [sys.executable, "-m", "services.inventory"],
            env={
                **base_env,
                "DATABASE_URL": inventory_url,
                "GRPC_PORT": str(grpc_port),
                "GRPC_HOST": "127.0.0.1",
                "DB_POOL_SIZE": "20",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(inventory)
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env={
                **base_env,
                "DATABASE_URL": gateway_url,
                "HTTP_PORT": str(http_port),
                "DB_POOL_SIZE": "20",
                "GATEWAY_BACKENDS": f"inventory=127.0.0.1:{grpc_port}",
                "RATE_LIMIT_PER_SECOND": "1000000",
                "RATE_LIMIT_BURST": "1000000",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(gateway)
        base = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 60
        wait_for(f"{base}/healthz", gateway)
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as answer:  # noqa: S310 - loopback
                    # The gateway is ready without its backends; the bench needs inventory serving too.
                    if json.loads(answer.read())["backends"].get("inventory") == "ok":
                        break
            except OSError:
                pass
            time.sleep(0.2)
        client_id, secret = "BENCH-APP", "bench-secret-not-for-production"
        asyncio.run(register_app_client(gateway_url, client_id, secret, "benchmark"))
        token = token_for(base, client_id, secret)
        script = work / "reserve.lua"
        script.write_text(WRK_SCRIPT)
        # CPU milliseconds per reservation, per process: steadier than rates on a shared machine.
        servers = {"gateway": gateway.pid, "inventory": inventory.pid}
        with profiled("reservations-hot", servers), CpuAccount(servers, postgres) as hot_cpu:
            hot_run = wrk(base, script, "HOT", seconds, token)
        with profiled("reservations-spread", servers), CpuAccount(servers, postgres) as spread_cpu:
            spread_run = wrk(base, script, "spread", seconds, token)
        limited_run = wrk(base, script, "LIMITED", max(3, seconds // 2), token)
        memory = {"inventory_rss_mb": rss_mb(inventory.pid), "gateway_rss_mb": rss_mb(gateway.pid)}
        oversell = asyncio.run(check_no_oversell(inventory_url))
        if oversell["limited_reserved"] > LIMITED_STOCK or oversell["levels_where_ledger_differs"]:
            raise SystemExit(f"OVERSOLD or ledger drift: {oversell}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(15)
        nats.stop()
        postgres.stop()
    if hot_run["non_2xx"] or spread_run["non_2xx"]:
        raise SystemExit(f"reservations failed during the timed runs: {hot_run} {spread_run}")
    return {
        "pgbench_hot_row_tps": pgbench_hot,
        "pgbench_spread_rows_tps": pgbench_spread,
        "gateway_hot_sku_reservations_per_s": hot_run["rps"],
        "gateway_spread_reservations_per_s": spread_run["rps"],
        "hot_vs_pgbench_hot_row": hot_run["rps"] / pgbench_hot,
        "spread_vs_pgbench_spread_rows": spread_run["rps"] / pgbench_spread,
        "hot_p50_ms": hot_run["p50_ms"],
        "hot_p99_ms": hot_run["p99_ms"],
        "spread_p50_ms": spread_run["p50_ms"],
        "spread_p99_ms": spread_run["p99_ms"],
        # Where the machine's CPU went per reservation, and per pgbench transaction on the hot row.
        **hot_cpu.per_operation_ms(hot_run["rps"] * seconds, "reservation", prefix="hot"),
        **spread_cpu.per_operation_ms(spread_run["rps"] * seconds, "reservation", prefix="spread"),
        **pgbench_hot_cpu.per_operation_ms(pgbench_hot_run.transactions, "transaction", prefix="pgbench_hot"),
        "limited_requests_refused_409": limited_run["non_2xx"],
        **oversell,
        **memory,
    }
