"""Members: identity resolution with a million members loaded, and points earning from the sales journal.

1. Identity resolution through the gateway. One million members, each with a phone
   identity, are bulk-loaded straight into the member database (``COPY``), in the
   service's own schema and format: lookup hashes and sealed values come from the
   service's own code (``parse_identity``, ``identity_hash``, ``PersonalDataCodec``) under
   the keys the service processes are given, so the rows are the ones registration would
   write (the member and identity rows; not the ``MemberRegistered`` outbox rows, which
   the relay would publish long before anyone benchmarks). Then ``wrk`` (its own
   process, 64 connections) asks ``GET /v1/members/resolve?type=phone&value=...`` for
   random members of the real gateway in front of the real member service (``python -m
   services.member``), with an app client holding only ``members:read``. Beside it, in the
   same run on the same PostgreSQL, ``pgbench`` (64 clients, prepared statements) runs
   the service's own statement: the primary-key lookup of ``member_identity`` by lookup
   hash, the HMAC computed in SQL from ``sha256`` (no pgcrypto needed) and checked to be
   the service's. Printed: requests/s, p50/p99, the ratio to pgbench, the member process's
   RSS, and the machine's CPU milliseconds per request by owner (bench/cpu.py). And the
   floor of any Python HTTP path on this machine: wrk with the same 64 connections
   against a bare ASGI app on uvicorn answering a constant JSON (``bench/raw_asgi.py``),
   as a ratio to pgbench's lookups and to the resolutions. Then the same load split over two
   gateway processes (replicas, as a deployment runs them), each with its own wrk.

2. Points earning from the sales journal. With the member service stopped, a raw
   publisher (nats-py, acknowledged publishes, the gateway's headers and subjects) puts
   20,000 ``SaleRecorded`` entries in the ``SALES`` stream, each naming a random member
   of the million by the keyed hash of their phone (``member_identity_hash``, as the
   gateway computes it). Then the member service starts, declares its consumer and
   earns: timed from the moment its durable consumer exists until every sale is kept
   (the bench polls ``sale_fact`` under a deadline that only progress extends). Every
   sale is then checked to have earned once and every touched balance to equal its
   ledger. Beside it, pgbench runs the naive per-sale write transaction (find the member
   by lookup hash, lock the member row, keep the sale fact, book an earn entry and its
   lot, raise the balance) with 8 clients (the database's ceiling) and with 1 (a
   consumer applying one sale per commit). Each timed write phase starts from a fresh
   checkpoint, so each pays the same full-page writes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.errors import NotFoundError
from retail.common.v1 import money_pb2
from retail.sales.v1 import events_pb2 as sales_pb2

from bench.baseline import grpc_service, pgbench, profiled
from bench.cpu import CpuAccount, cpu_seconds
from bench.http import raw_asgi_rps
from bench.pos_ingest import wait_ready
from bench.reservations import register_app_client, rss_mb, token_for
from devstack.servers import NatsServer, PostgresServer, free_port
from gateway.adapters.sales_journal import SALE_RECORDED_TYPE, SALES_STREAM, sale_subject
from gateway.domain.sales import member_identity_hash
from gateway.domain.scopes import MEMBERS_READ
from gateway.migrate import GATEWAY_VERSIONS
from servicekit import migrations
from servicekit.messaging import connect_nats, ensure_stream
from servicekit.outbox import AGGREGATE_HEADER, EVENT_TYPE_HEADER, MSG_ID_HEADER, OCCURRED_AT_HEADER
from servicekit.settings import load_settings
from services.member.adapters.personal_data import DataKeyring, PersonalDataCodec
from services.member.bootstrap import policies
from services.member.domain.identities import identity_hash, parse_identity
from services.member.domain.model import Profile, format_member_id
from services.member.entrypoints.sales_consumer import sales_consumer
from services.member.migrate import VERSIONS as MEMBER_VERSIONS
from services.member.settings import MemberSettings

MEMBERS = 1_000_000
PHONE_PREFIX = "139"  # member n (1 … MEMBERS) has the phone 139 followed by n in eight digits
CONNECTIONS = 64
LOAD_CHUNK = 50_000
REGISTERED_OVER = timedelta(days=20)  # registration times spread over the last 20 days (all still "new")
STORES = 20
SALES = 20_000
SALE_PUBLISH_WINDOW = 500  # acknowledged publishes in flight
SALE_SKUS = (("SKU-1", "C0101", "C01"), ("SKU-2", "C0202", "C02"), ("SKU-3", "C0303", "C03"))
PGBENCH_SALE_CLIENTS = 8
POLL_SECONDS = 0.05
STALL_SECONDS = 60.0  # the drain fails when the member service applies nothing for this long
CLIENT_ID = "BENCH-MEMBER-APP"
HMAC_BLOCK = 64  # SHA-256's block size

WRK_SCRIPT = f"""
local members
function setup(thread)
  thread:set("seed", math.random(1, 1000000000))
end
function init(args)
  members = tonumber(args[1])
  math.randomseed(seed)
  token = os.getenv("BENCH_TOKEN")
end
request = function()
  local phone = string.format("{PHONE_PREFIX}%08d", math.random(1, members))
  return wrk.format("GET", "/v1/members/resolve?type=phone&value=" .. phone,
                    {{["Authorization"] = "Bearer " .. token}})
end
"""


def phone_of(number: int) -> str:
    return f"{PHONE_PREFIX}{number:08d}"


def hmac_sha256_sql(key: bytes, message_sql: str) -> str:
    """SQL computing HMAC-SHA256(key, message) with the built-in ``sha256`` (RFC 2104)."""
    if len(key) > HMAC_BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(HMAC_BLOCK, b"\0")
    inner = bytes(byte ^ 0x36 for byte in padded).hex()
    outer = bytes(byte ^ 0x5C for byte in padded).hex()
    inner_hash = f"sha256(decode('{inner}', 'hex') || convert_to({message_sql}, 'UTF8'))"
    return f"sha256(decode('{outer}', 'hex') || {inner_hash})"


def phone_hash_sql(key: bytes, number_sql: str) -> str:
    """SQL of member ``number_sql``'s phone lookup hash: HMAC of ``phone:139nnnnnnnn``."""
    return hmac_sha256_sql(key, f"'phone:{PHONE_PREFIX}' || lpad(CAST({number_sql} AS text), 8, '0')")


def lookup_script(key: bytes) -> str:
    """The service's resolve statement (member_store.find_identity) for a random member."""
    return (
        f"\\set n random(1, {MEMBERS})\n"
        "SELECT identity_hash, member_id, identity_type, value_sealed, linked_at FROM member_identity "
        f"WHERE identity_hash = {phone_hash_sql(key, ':n')};\n"
    )


def sale_apply_script(key: bytes) -> str:
    """The naive per-sale write: find the member, lock it, keep the sale, book the earn and its lot, raise the
    balance."""
    return (
        f"\\set n random(1, {MEMBERS})\n"
        "\\set amount random(1000, 50000)\n"
        "\\set points :amount / 100\n"
        "BEGIN;\n"
        f"SELECT member_id AS member FROM member_identity WHERE identity_hash = {phone_hash_sql(key, ':n')} \\gset\n"
        "SELECT points_balance, points_debt, tier FROM member WHERE member_id = :member FOR UPDATE;\n"
        "WITH sale AS (INSERT INTO sale_fact (sale_id, kind, member_id, store_id, occurred_at, amount_minor, "
        "categories, points) VALUES ('pgbench-' || gen_random_uuid(), 'sale', :member, 'S001', now(), "
        "CAST(:amount AS bigint), '{C01,C02}', CAST(:points AS bigint)) RETURNING sale_id), "
        "entry AS (INSERT INTO points_entry (member_id, kind, points, sale_id, store_id, recorded_at) "
        "SELECT :member, 'earn', CAST(:points AS bigint), sale_id, 'S001', now() FROM sale "
        "RETURNING entry_id, sale_id) "
        "INSERT INTO points_lot (member_id, entry_id, points, remaining, earned_at, expires_at, sale_id) "
        "SELECT :member, entry_id, CAST(:points AS bigint), CAST(:points AS bigint), now(), "
        "now() + interval '365 days', sale_id FROM entry;\n"
        "UPDATE member SET points_balance = points_balance + CAST(:points AS bigint), updated_at = now() "
        "WHERE member_id = :member;\n"
        "COMMIT;\n"
    )


def member_settings(database_url: str, nats_url: str, lookup_secret: str, data_keys: str) -> MemberSettings:
    """The member service's settings as its processes get them here (the keys of this run)."""
    return load_settings(
        MemberSettings,
        app_env="local",
        database_url=database_url,
        nats_url=nats_url,
        member_lookup_key=lookup_secret,
        member_data_keys=data_keys,
    )


@dataclass(frozen=True)
class Stack:
    postgres: PostgresServer
    nats: NatsServer
    gateway_url: str
    member_url: str
    settings: MemberSettings
    env: dict[str, str]  # what every service process gets (keys, NATS, tracing off)


# ---- loading a million members ------------------------------------------------------------------


async def load_members(stack: Stack) -> float:
    """COPY ``MEMBERS`` members with a phone identity each, as registration writes them; returns seconds."""
    settings = stack.settings
    codec = PersonalDataCodec(DataKeyring(settings.data_keys))
    key = settings.lookup_key
    lowest_tier = policies(settings).tiers.lowest.code
    channels = ("app", "mini_program", "store")
    now = datetime.now(UTC)
    step = REGISTERED_OVER / MEMBERS
    started = time.perf_counter()
    connection = await asyncpg.connect(stack.member_url)
    try:
        for first in range(1, MEMBERS + 1, LOAD_CHUNK):
            members: list[tuple[object, ...]] = []
            identities: list[tuple[object, ...]] = []
            for number in range(first, min(first + LOAD_CHUNK, MEMBERS + 1)):
                member_id = format_member_id(number)
                registered_at = now - step * (MEMBERS - number)
                channel = channels[number % 3]
                store = f"S{number % STORES + 1:03d}" if channel == "store" else None
                sealed = codec.seal_profile(member_id, Profile())
                members.append(
                    (
                        member_id,
                        registered_at,
                        channel,
                        store,
                        sealed["name"],
                        sealed["birthday"],
                        sealed["address"],
                        None,
                        "{}",
                        lowest_tier,
                        registered_at,
                    )
                )
                identity = parse_identity("phone", phone_of(number))
                lookup = identity_hash(key, identity)
                identities.append(
                    (
                        lookup,
                        member_id,
                        identity.type.value,
                        codec.seal_identity(lookup, identity),
                        registered_at,
                        f"{store}-POS01" if store else CLIENT_ID,
                    )
                )
            await connection.copy_records_to_table(
                "member",
                records=members,
                columns=[
                    "member_id",
                    "registered_at",
                    "registration_channel",
                    "home_store_id",
                    "name_sealed",
                    "birthday_sealed",
                    "address_sealed",
                    "gender",
                    "preferences",
                    "tier",
                    "tier_since",
                ],
            )
            await connection.copy_records_to_table(
                "member_identity",
                records=identities,
                columns=["identity_hash", "member_id", "identity_type", "value_sealed", "linked_at", "linked_by"],
            )
        await connection.execute("SELECT setval('member_number', $1)", MEMBERS)
        await connection.execute(
            "INSERT INTO item_category (sku, category_id, department_id) SELECT * FROM unnest($1::text[], $2::text[], "
            "$3::text[])",
            *(list(column) for column in zip(*SALE_SKUS, strict=True)),
        )
        await connection.execute("VACUUM (ANALYZE) member")
        await connection.execute("VACUUM (ANALYZE) member_identity")
        await connection.execute("CHECKPOINT")
        # pgbench computes the lookup hash in SQL: it must be the service's.
        in_sql = await connection.fetchval(f"SELECT {phone_hash_sql(key, '$1::int')}", MEMBERS)
        loaded = await connection.fetchval("SELECT count(*) FROM member_identity WHERE identity_hash = $1", in_sql)
    finally:
        await connection.close()
    if bytes(in_sql) != identity_hash(key, parse_identity("phone", phone_of(MEMBERS))) or loaded != 1:
        raise SystemExit("the SQL lookup hash differs from the member service's")
    return time.perf_counter() - started


async def checkpoint(url: str) -> None:
    """Start a timed write phase from a fresh checkpoint, so the service and pgbench each pay the full-page
    images of the first write to every page they touch (with a million members, that is most writes)."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


# ---- processes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    process: subprocess.Popen[bytes]
    grpc_port: int


@contextlib.contextmanager
def member_service(stack: Stack, work: Path, name: str) -> Iterator[Member]:
    with grpc_service("services.member", stack.env, stack.member_url, work / f"{name}.log") as (process, grpc_port):
        yield Member(process, grpc_port)


@contextlib.contextmanager
def gateway(stack: Stack, member: Member, work: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ready gateway in front of the member service; yields its base URL and process."""
    with gateway_in_front_of(stack.env, stack.gateway_url, "member", member.grpc_port, member.process, work) as gw:
        yield gw


@contextlib.contextmanager
def gateway_in_front_of(
    env: dict[str, str],
    database_url: str,
    backend: str,
    grpc_port: int,
    backend_process: subprocess.Popen[bytes],
    work: Path,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A gateway process routing to one service (its rate limit out of the way), ready when the
    service answers its health check too; yields its base URL and process; log in ``work``."""
    port = free_port()
    with (work / "gateway.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env={
                **env,
                "DATABASE_URL": database_url,
                "HTTP_PORT": str(port),
                "DB_POOL_SIZE": "20",
                "GATEWAY_BACKENDS": f"{backend}=127.0.0.1:{grpc_port}",
                "RATE_LIMIT_PER_SECOND": "1000000",
                "RATE_LIMIT_BURST": "1000000",
            },
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(f"{base_url}/readyz", {"gateway": process, backend: backend_process})
            yield base_url, process
        finally:
            process.terminate()
            process.wait(20)


# ---- load generators ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkRun:
    rps: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: bool


def wrk(base_url: str, script: Path, seconds: int, token: str) -> WrkRun:
    return run_wrk(base_url, script, seconds, token, connections=CONNECTIONS, script_args=[str(MEMBERS)])


def run_wrk(
    base_url: str,
    script: Path,
    seconds: int,
    token: str,
    *,
    connections: int,
    script_args: list[str],
    threads: int = 2,
) -> WrkRun:
    """wrk (``threads``, ``connections``) running a Lua script with a bearer token in ``BENCH_TOKEN``."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (make bench installs it from Debian's packages when run as root)")
    output = subprocess.run(
        [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            base_url,
            "--",
            *script_args,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_TOKEN": token},
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkRun(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        requests=int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        p50_ms=_latency_ms(output, "50%"),
        p99_ms=_latency_ms(output, "99%"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors="Socket errors" in output,
    )


def _latency_ms(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def check_resolves(base_url: str, token: str) -> None:
    """A sample of members resolves to the right member id, and an unknown phone to 404."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    for number in (1, MEMBERS // 2, MEMBERS):
        answer = httpx.get(
            f"{base_url}/v1/members/resolve",
            params={"type": "phone", "value": phone_of(number)},
            headers=headers,
            timeout=10,
        )
        if answer.status_code != 200 or answer.json().get("member_id") != format_member_id(number):
            raise SystemExit(f"resolving member {number} answered {answer.status_code}: {answer.text[:200]}")
    unknown = httpx.get(
        f"{base_url}/v1/members/resolve",
        params={"type": "phone", "value": phone_of(MEMBERS + 1)},
        headers=headers,
        timeout=10,
    )
    if unknown.status_code != 404:
        raise SystemExit(f"an unknown phone answered {unknown.status_code}, not 404")


# ---- sales journal ------------------------------------------------------------------------------


def sale_recorded(rng: random.Random, number: int, lookup_key: bytes, at: datetime) -> tuple[str, str, bytes]:
    """(sale id, store, payload) of one store sale of three lines by a random member, named by phone hash."""
    sale_id = f"BENCH-{number:07d}"
    store = f"S{number % STORES + 1:03d}"
    occurred = Timestamp()
    occurred.FromDatetime(at - timedelta(seconds=rng.randint(60, 3600)))
    recorded = Timestamp()
    recorded.FromDatetime(at)
    lines = []
    total = 0
    for line_number, (sku, _, _) in enumerate(SALE_SKUS, start=1):
        quantity = rng.randint(1, 3)
        unit_price = rng.randint(100, 10_000)
        total += quantity * unit_price
        lines.append(
            sales_pb2.SaleLine(
                line_number=line_number,
                sku=sku,
                quantity=money_pb2.Decimal(value=str(quantity)),
                unit_price=money_pb2.Money(currency_code="CNY", minor_units=unit_price),
                discount=money_pb2.Money(currency_code="CNY", minor_units=0),
                line_total=money_pb2.Money(currency_code="CNY", minor_units=quantity * unit_price),
            )
        )
    member = rng.randint(1, MEMBERS)
    sale = sales_pb2.SaleRecorded(
        sale_id=sale_id,
        kind=sales_pb2.SALE_KIND_SALE,
        location_id=store,
        terminal_id=f"{store}-POS01",
        channel=sales_pb2.SALES_CHANNEL_STORE,
        occurred_at=occurred,
        recorded_at=recorded,
        lines=lines,
        member=sales_pb2.MemberReference(
            type=sales_pb2.MEMBER_IDENTIFIER_TYPE_PHONE,
            identity_hash=member_identity_hash(lookup_key, "phone", phone_of(member)),
        ),
        payments=[
            sales_pb2.Payment(
                method=sales_pb2.PAYMENT_METHOD_WECHAT_PAY,
                amount=money_pb2.Money(currency_code="CNY", minor_units=total),
            )
        ],
        total=money_pb2.Money(currency_code="CNY", minor_units=total),
        submitted_by=f"{store}-POS01",
    )
    return sale_id, store, sale.SerializeToString()


async def publish_sales(nats_url: str, lookup_key: bytes, count: int) -> float:
    """Journal ``count`` member sales as the gateway does (raw acknowledged publishes); returns sales/s."""
    client = await connect_nats(nats_url, name="bench-sales-publisher")
    try:
        js = client.jetstream()
        await ensure_stream(js, SALES_STREAM)
        rng = random.Random(20261124)  # reproducible: the same sales every run
        now = datetime.now(UTC)
        entries = [sale_recorded(rng, number, lookup_key, now) for number in range(1, count + 1)]
        started = time.perf_counter()
        for first in range(0, count, SALE_PUBLISH_WINDOW):
            acks = await asyncio.gather(
                *(
                    js.publish(
                        sale_subject(store),
                        payload,
                        timeout=10,
                        headers={
                            MSG_ID_HEADER: sale_id,
                            EVENT_TYPE_HEADER: SALE_RECORDED_TYPE,
                            OCCURRED_AT_HEADER: now.isoformat(),
                            AGGREGATE_HEADER: sale_id,
                        },
                    )
                    for sale_id, store, payload in entries[first : first + SALE_PUBLISH_WINDOW]
                )
            )
            if any(ack.duplicate for ack in acks):
                raise SystemExit("the SALES stream already held some of the benchmark's sales")
        elapsed = time.perf_counter() - started
        journaled = (await js.stream_info(SALES_STREAM.name)).state.messages
    finally:
        await client.close()
    if journaled != count:
        raise SystemExit(f"the SALES stream holds {journaled} sales, not {count}")
    return count / elapsed


async def wait_for_consumer(nats_url: str, member: subprocess.Popen[bytes]) -> float:
    """Until the member service's durable SALES consumer exists; returns that moment (``time.time()``)."""
    spec = sales_consumer()
    timeout = 60.0
    client = await connect_nats(nats_url, name="bench-consumer-check")
    try:
        deadline = time.monotonic() + timeout
        while True:
            if member.poll() is not None:
                raise SystemExit(f"the member service exited with code {member.returncode}")
            try:
                await client.jetstream().consumer_info(spec.stream, spec.durable)
                return time.time()
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the member service declared no SALES consumer within {timeout:.0f}s") from None
                await asyncio.sleep(0.01)
    finally:
        await client.close()


async def wait_until_applied(url: str, target: int, member: subprocess.Popen[bytes]) -> float:
    """Poll until the member service kept ``target`` sales; returns when it was seen (``time.time()``).

    The deadline moves on with progress: only a consumer that applies nothing for
    :data:`STALL_SECONDS` (or exits) fails the benchmark.
    """
    connection = await asyncpg.connect(url)
    try:
        last, deadline = -1, time.monotonic() + STALL_SECONDS
        while (applied := int(await connection.fetchval("SELECT count(*) FROM sale_fact"))) < target:
            now = time.monotonic()
            if applied != last:
                last, deadline = applied, now + STALL_SECONDS
            elif now > deadline:
                raise SystemExit(f"the member service stalled at {applied} of {target} sales for {STALL_SECONDS:.0f}s")
            if member.poll() is not None:
                raise SystemExit(f"the member service exited with code {member.returncode}")
            await asyncio.sleep(POLL_SECONDS)
        return time.time()
    finally:
        await connection.close()


async def check_points(url: str, sales: int) -> dict[str, float]:
    """Every sale kept once and earning once for its member; every touched balance equals its ledger."""
    connection = await asyncpg.connect(url)
    try:
        facts = await connection.fetchval("SELECT count(*) FROM sale_fact WHERE member_id IS NOT NULL")
        earns = await connection.fetchval("SELECT count(*) FROM points_entry WHERE kind = 'earn'")
        inbox = await connection.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", sales_consumer().durable)
        members = await connection.fetchval("SELECT count(DISTINCT member_id) FROM sale_fact")
        drift = await connection.fetchval(
            "SELECT count(*) FROM member m WHERE m.member_id IN (SELECT member_id FROM sale_fact) AND m.points_balance "
            "<> (SELECT coalesce(sum(points), 0) FROM points_entry e WHERE e.member_id = m.member_id)"
        )
        points = await connection.fetchval("SELECT coalesce(sum(points), 0) FROM points_entry")
    finally:
        await connection.close()
    if facts != sales or earns != sales or inbox != sales or drift:
        raise SystemExit(
            f"of {sales} journaled member sales: {facts} kept with a member, {earns} earned, {inbox} in the inbox; "
            f"{drift} balances differ from their ledger"
        )
    return {"members_earning": float(members), "points_earned": float(points)}


# ---- the benchmark ------------------------------------------------------------------------------


def bench_members(work: Path, seconds: int, *, resolution: bool = True) -> dict[str, float]:
    """Both parts (``resolution=False``: the points earning part alone, on the same million members)."""
    postgres = PostgresServer(work / "postgres")
    nats = NatsServer(work / "nats")
    postgres.start()
    nats.start()
    try:
        for name in ("gateway", "member"):
            postgres.create_database(name)
        gateway_url, member_url = postgres.url_for("gateway"), postgres.url_for("member")
        migrations.upgrade(gateway_url, GATEWAY_VERSIONS)
        migrations.upgrade(member_url, MEMBER_VERSIONS)
        lookup_secret = secrets.token_hex(24)
        data_keys = f"bench-{secrets.token_hex(4)}:{base64.b64encode(secrets.token_bytes(32)).decode()}"
        env = {
            **os.environ,
            "APP_ENV": "local",
            "LOG_LEVEL": "WARNING",
            "NATS_URL": nats.url,
            "PYTHONUNBUFFERED": "1",
            "OTEL_TRACES_SAMPLER_ARG": "0.0",
            "MEMBER_LOOKUP_KEY": lookup_secret,
            "MEMBER_DATA_KEYS": data_keys,
        }
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        stack = Stack(
            postgres,
            nats,
            gateway_url,
            member_url,
            member_settings(member_url, nats.url, lookup_secret, data_keys),
            env,
        )
        load_seconds = asyncio.run(load_members(stack))
        print(f"  (loaded {MEMBERS:,} members with a phone identity each in {load_seconds:.1f}s)", flush=True)
        resolved = resolve(stack, work, seconds) if resolution else {}
        earning = earn(stack, work, seconds)
    finally:
        nats.stop()
        postgres.stop()
    return {"members_loaded": float(MEMBERS), "member_load_seconds": load_seconds, **resolved, **earning}


def resolve(stack: Stack, work: Path, seconds: int) -> dict[str, float]:
    """Part 1: identity resolution through the gateway beside pgbench's lookup of the same row."""
    lookup = work / "identity_lookup.sql"
    lookup.write_text(lookup_script(stack.settings.lookup_key))
    script = work / "resolve.lua"
    script.write_text(WRK_SCRIPT)
    client_secret = secrets.token_hex(16)
    # An app back end allowed to resolve members and nothing else (the route needs ``members:read``).
    asyncio.run(
        register_app_client(
            stack.gateway_url, CLIENT_ID, client_secret, "bench app (member resolution)", frozenset({MEMBERS_READ})
        )
    )
    with member_service(stack, work, "member-resolve") as member, gateway(stack, member, work) as (base_url, gw):
        token = token_for(base_url, CLIENT_ID, client_secret)
        check_resolves(base_url, token)
        wrk(base_url, script, max(2, seconds // 2), token)  # warm-up: connection pools, caches
        with CpuAccount({}, stack.postgres) as pgbench_cpu:
            lookups = pgbench(stack.postgres, "member", lookup, seconds, CONNECTIONS, prepared=True)
        pgbench_tps = lookups.tps
        pids = {"member": member.process.pid, "gateway": gw.pid}
        with profiled("members-resolve", pids), CpuAccount(pids, stack.postgres) as resolve_cpu:
            run = wrk(base_url, script, seconds, token)
        memory = {f"{name}_rss_mb": rss_mb(pid) for name, pid in pids.items()}
        # One gateway process uses one core while pgbench's clients and backends use both; a
        # deployment runs gateway replicas side by side (pods behind the ingress). The same load
        # split over two gateway processes, each with its own wrk and half the connections:
        second_work = work / "second-gateway"
        second_work.mkdir(exist_ok=True)
        with gateway(stack, member, second_work) as (second_url, second_gw):
            wrk(second_url, script, max(2, seconds // 2), token)  # warm-up
            both = {**pids, "gateway_2": second_gw.pid}
            with CpuAccount(both, stack.postgres) as replicas_cpu:
                runs = side_by_side([base_url, second_url], script, seconds, token)
    floor = raw_asgi_rps(seconds, CONNECTIONS)  # the floor of any Python HTTP path here
    for each in (run, *runs):
        if each.non_2xx or each.socket_errors or not each.requests:
            raise SystemExit(f"identity resolution failed under load: {each}")
    replicas_rps = sum(each.rps for each in runs)
    return {
        "pgbench_identity_lookup_tps": pgbench_tps,
        "gateway_resolve_per_s": run.rps,
        "resolve_vs_pgbench_lookup": run.rps / pgbench_tps,
        "resolve_p50_ms": run.p50_ms,
        "resolve_p99_ms": run.p99_ms,
        # Where the machine's CPU went per resolution, and per pgbench lookup (bench/cpu.py).
        **resolve_cpu.per_operation_ms(run.requests, "resolve"),
        **pgbench_cpu.per_operation_ms(lookups.transactions, "transaction", prefix="pgbench_lookup"),
        "bare_uvicorn_constant_json_per_s": floor,
        "bare_uvicorn_vs_pgbench_lookup": floor / pgbench_tps,
        "resolve_vs_bare_uvicorn": run.rps / floor,
        "two_gateways_resolve_per_s": replicas_rps,
        "two_gateways_resolve_vs_pgbench_lookup": replicas_rps / pgbench_tps,
        "two_gateways_resolve_p99_ms": max(each.p99_ms for each in runs),
        **replicas_cpu.per_operation_ms(sum(each.requests for each in runs), "resolve", prefix="two_gateways"),
        **memory,
    }


def side_by_side(base_urls: list[str], script: Path, seconds: int, token: str) -> list[WrkRun]:
    """One wrk per gateway (one thread, an equal share of the connections), all at once."""
    share = CONNECTIONS // len(base_urls)

    def one(base_url: str) -> WrkRun:
        return run_wrk(base_url, script, seconds, token, connections=share, script_args=[str(MEMBERS)], threads=1)

    with ThreadPoolExecutor(len(base_urls)) as pool:
        return list(pool.map(one, base_urls))


def earn(stack: Stack, work: Path, seconds: int) -> dict[str, float]:
    """Part 2: the member service earning points for a journal backlog, beside pgbench's per-sale write."""
    publish_rate = asyncio.run(publish_sales(stack.nats.url, stack.settings.lookup_key, SALES))
    asyncio.run(checkpoint(stack.member_url))
    with member_service(stack, work, "member-earn") as member:
        started = asyncio.run(wait_for_consumer(stack.nats.url, member.process))
        cpu = cpu_seconds(member.process.pid)
        with profiled("members-earn", {"member": member.process.pid}):
            finished = asyncio.run(wait_until_applied(stack.member_url, SALES, member.process))
        used = cpu_seconds(member.process.pid) - cpu
        rss = rss_mb(member.process.pid)
    checked = asyncio.run(check_points(stack.member_url, SALES))
    elapsed = finished - started
    print(f"  (earning: {SALES:,} journaled sales applied {elapsed:.1f}s after the consumer appeared)", flush=True)
    apply = work / "sale_apply.sql"
    apply.write_text(sale_apply_script(stack.settings.lookup_key))
    asyncio.run(checkpoint(stack.member_url))
    many = pgbench(stack.postgres, "member", apply, seconds, PGBENCH_SALE_CLIENTS, prepared=True).tps
    asyncio.run(checkpoint(stack.member_url))
    one = pgbench(stack.postgres, "member", apply, seconds, 1, prepared=True).tps
    rate = SALES / elapsed
    return {
        "sales_journaled": float(SALES),
        "raw_jetstream_publish_sales_per_s": publish_rate,
        "member_earn_sales_per_s": rate,
        "member_earn_seconds": elapsed,
        **checked,
        f"pgbench_sale_earn_{PGBENCH_SALE_CLIENTS}_clients_per_s": many,
        "pgbench_sale_earn_1_client_per_s": one,
        "earn_vs_pgbench_sale_earn": rate / many,
        "earn_vs_pgbench_sale_earn_1_client": rate / one,
        "member_cpu_ms_per_sale": 1000 * used / SALES,
        "member_rss_mb_after_earning": rss,
    }
