"""Marketing: a coupon hold storm, a segment over many members, a campaign launch, a model training.

Each figure beside the raw baseline measured in the same run, on the same PostgreSQL and NATS:

* **hold storm** — wrk, 64 connections, ``POST /v1/coupons/{code}/hold`` on one campaign's generic
  code through the real gateway and marketing processes (authentication, scope, Idempotency-Key
  record, gRPC, the coupon's, member's and campaign's rows locked in one transaction) ÷ pgbench,
  64 clients, one conditional UPDATE per request on one hot row. Then a burst against a campaign
  whose discount budget allows exactly 1,000 holds: the budget is never exceeded, no code held twice;
* **segment** — ``PreviewSegment`` (gRPC) of a purchase-window rule over ``members`` members ÷ the
  very SQL count it runs, by psql;
* **launch** — a campaign over every member: coupons issued per second, from launch to running,
  every ``CouponIssued`` written to the outbox ÷ a raw JetStream publisher's messages per second;
* **training** — the repurchase model trained on every member's purchases: seconds and the
  training process's peak memory.

``members`` defaults to 1,000,000 (``--marketing-members`` to run smaller on a laptop).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import identifiers_pb2, money_pb2
from retail.marketing.v1 import marketing_service_pb2 as pb
from retail.marketing.v1 import marketing_service_pb2_grpc as pb_grpc

from bench.baseline import gateway_process, grpc_service, pgbench, python_module
from bench.reservations import register_app_client, token_for
from devstack.servers import NatsServer, PostgresServer, postgres_bin_dir
from gateway.domain.clients import ClientKind
from gateway.domain.scopes import default_scopes
from gateway.migrate import GATEWAY_VERSIONS
from servicekit import migrations
from servicekit.protowire import timestamp
from services.marketing.adapters.segment_sql import AUDIENCE, FROM, compile_rule
from services.marketing.domain.segments import parse_rule
from services.marketing.migrate import VERSIONS as MARKETING_VERSIONS

CONNECTIONS = 64
BUDGET_HOLDS = 1_000
DISCOUNT_FEN = 500
HQ = identifiers_pb2.Actor(
    client_id="bench-hq",
    client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
    staff_role=identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
)
APPROVER = identifiers_pb2.Actor(
    client_id="bench-hq-2",
    client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
    staff_role=identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
)
RULE = {
    "all": [
        {"attribute": "purchases", "window_days": 90, "op": ">=", "value": 1},
        {"attribute": "tier", "op": "in", "value": ["gold", "silver"]},
    ]
}

HOT_UPDATE = "UPDATE campaign SET held_fen = held_fen + 1 WHERE campaign_id = 'HOT';\n"
WRK_HOLD = """
local counter = 0
local prefix
function setup(thread)
  thread:set("tid", tostring(math.random(1, 1000000000)))
end
function init(args)
  prefix = args[1] .. "-" .. tid
  code = args[2]
  token = os.getenv("BENCH_TOKEN")
end
request = function()
  counter = counter + 1
  local member = string.format("M%09d", (tonumber(tid) % 1000) * 1000000 + counter)
  local body = '{"member_id":"' .. member .. '","channel":"app","lines":[{"sku":"RICE","amount":"120.00"}]}'
  return wrk.format("POST", "/v1/coupons/" .. code .. "/hold", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = prefix .. "-" .. counter,
  }, body)
end
"""


def cny(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="CNY", minor_units=fen)


async def seed_population(url: str, members: int) -> None:
    """``members`` members (a tenth gold, a quarter silver) with one to three purchases each in the last half year."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            """
            INSERT INTO member (member_id, tier, lifecycle_stage, home_store_id, consent, registered_at, updated_at)
            SELECT 'M' || lpad(n::text, 9, '0'),
                   CASE WHEN n % 10 = 0 THEN 'gold' WHEN n % 4 = 0 THEN 'silver' ELSE 'basic' END,
                   (ARRAY['new', 'active', 'repeat', 'dormant', 'churned'])[1 + n % 5],
                   'S' || lpad((n % 200)::text, 3, '0'), '{app_push}', now() - interval '2 years', now()
              FROM generate_series(1, $1) n;
            """,
            members,
        )
        await connection.execute(
            """
            INSERT INTO purchase (sale_id, member_id, made_by, store_id, occurred_at, gross_fen, net_fen, cost_fen)
            SELECT 'S' || n || '-' || k, 'M' || lpad(n::text, 9, '0'), 'M' || lpad(n::text, 9, '0'),
                   'S' || lpad((n % 200)::text, 3, '0'), now() - make_interval(days => (n * 7 + k * 31) % 180),
                   5000 + n % 9000, 5000 + n % 9000, 3000
              FROM generate_series(1, $1) n, generate_series(1, 1 + n % 3) k;
            """,
            members,
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def seed_storm(url: str, now: datetime) -> None:
    """The storm's campaign (generic code STORM, no budget), the budget burst's (LIMIT, 1,000 holds),
    and pgbench's hot row."""
    connection = await asyncpg.connect(url)
    try:
        offer = json.dumps(
            {
                "kind": "amount_off",
                "value": DISCOUNT_FEN,
                "skus": [],
                "categories": [],
                "min_spend_fen": 0,
                "max_discount_fen": None,
                "stacking_group": "default",
                "exclusive": False,
                "stacks_with": [],
            }
        )
        terms = json.dumps(
            {
                "valid_from": (now - timedelta(days=1)).isoformat(),
                "valid_until": (now + timedelta(days=30)).isoformat(),
                "stores": [],
                "channels": ["app", "mini_program", "store"],
                "per_member_limit": 1,
                "total_issue_limit": None,
            }
        )
        for campaign_id, budget in (("STORM", None), ("LIMIT", BUDGET_HOLDS * DISCOUNT_FEN), ("HOT", None)):
            await connection.execute(
                "INSERT INTO campaign (campaign_id, name, status, offer, terms, valid_from, valid_until, "
                "per_member_limit, control_fraction_bp, max_discount_fen, created_by, created_at) "
                "VALUES ($1, $1, 'running', $2, $3, $4, $5, 1, 1000, $6, 'bench', $4)",
                campaign_id,
                offer,
                terms,
                now - timedelta(days=1),
                now + timedelta(days=30),
                budget,
            )
            await connection.execute(
                "INSERT INTO coupon (code, campaign_id, use_limit, issued_at) VALUES ($1, $1, 1000000000, $2)",
                campaign_id,
                now,
            )
    finally:
        await connection.close()


def wrk_holds(base: str, script: Path, code: str, seconds: int, token: str) -> tuple[float, float]:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), base, "--", uuid.uuid4().hex[:8], code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_TOKEN": token},
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rps, float(non_2xx.group(1)) if non_2xx else 0.0


async def budget_check(url: str) -> dict[str, float]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            "SELECT held_fen, spent_fen, max_discount_fen, "
            "(SELECT count(*) FROM coupon_hold WHERE campaign_id = 'LIMIT' AND status = 'held') AS holds, "
            "(SELECT count(*) - count(DISTINCT member_id) FROM coupon_hold WHERE campaign_id = 'LIMIT') "
            "AS members_twice "
            "FROM campaign WHERE campaign_id = 'LIMIT'"
        )
    finally:
        await connection.close()
    assert row is not None
    return {
        "budget_holds_granted": float(row["holds"]),
        "budget_fen_held": float(row["held_fen"]),
        "budget_fen_allowed": float(row["max_discount_fen"]),
        "budget_members_held_twice": float(row["members_twice"]),
    }


def psql_seconds(postgres: PostgresServer, database: str, sql: str) -> float:
    """Wall-clock seconds psql takes to run ``sql`` (best of three)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(
            [
                str(postgres_bin_dir() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(postgres.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-q",
                "-c",
                sql,
            ],
            capture_output=True,
            check=True,
        )
        best = min(best, time.perf_counter() - started)
    return best


def literal_sql(rule: Mapping[str, object], as_of: datetime) -> str:
    """The count PreviewSegment runs, with its parameters written in (for psql)."""
    compiled = compile_rule(parse_rule(dict(rule)))
    sql = f"SELECT m.lifecycle_stage, count(*) FROM {FROM} WHERE {AUDIENCE} AND {compiled.sql} GROUP BY 1"
    params = {**compiled.params, "as_of": as_of.isoformat()}
    for name in sorted(params, key=len, reverse=True):
        value = params[name]
        if isinstance(value, list):
            text = "ARRAY[" + ",".join(f"'{item}'" for item in value) + "]::text[]"
        elif isinstance(value, str):
            text = f"'{value}'"
        else:
            text = str(value)
        sql = sql.replace(f":{name}", text)
    return sql


async def segment_and_launch(port: int, members: int, js_rate: float) -> dict[str, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MarketingServiceStub(channel)  # type: ignore[no-untyped-call]
        rule_json = json.dumps(RULE)
        best = float("inf")
        counted = 0
        for _ in range(3):
            started = time.perf_counter()
            preview = await stub.PreviewSegment(pb.PreviewSegmentRequest(actor=HQ, rule_json=rule_json), timeout=600)
            best = min(best, time.perf_counter() - started)
            counted = preview.members
        everyone = json.dumps({"attribute": "tier", "op": "in", "value": ["gold", "silver", "basic"]})
        segment = (
            await stub.CreateSegment(
                pb.CreateSegmentRequest(request_id=str(uuid.uuid4()), actor=HQ, name="all", rule_json=everyone),
                timeout=60,
            )
        ).segment
        snapshot = (
            await stub.SnapshotSegment(
                pb.SnapshotSegmentRequest(request_id=str(uuid.uuid4()), actor=HQ, segment_id=segment.segment_id),
                timeout=1200,
            )
        ).snapshot
        now = datetime.now(UTC)
        campaign = (
            await stub.CreateCampaign(
                pb.CreateCampaignRequest(
                    request_id=str(uuid.uuid4()),
                    actor=HQ,
                    name="launch",
                    snapshot_id=snapshot.snapshot_id,
                    offer=pb.Offer(kind=pb.DISCOUNT_KIND_AMOUNT_OFF, amount_off=cny(1_000)),
                    terms=pb.CouponTerms(
                        valid_from=_stamp(now - timedelta(minutes=1)), valid_until=_stamp(now + timedelta(days=7))
                    ),
                    control_fraction_bp=1_000,
                    contact_channels=["app_push"],
                ),
                timeout=60,
            )
        ).campaign
        await stub.ApproveCampaign(
            pb.ApproveCampaignRequest(request_id=str(uuid.uuid4()), actor=APPROVER, campaign_id=campaign.campaign_id),
            timeout=60,
        )
        started = time.perf_counter()
        await stub.LaunchCampaign(
            pb.LaunchCampaignRequest(request_id=str(uuid.uuid4()), actor=HQ, campaign_id=campaign.campaign_id),
            timeout=60,
        )
        while True:
            current = (
                await stub.GetCampaign(pb.GetCampaignRequest(actor=HQ, campaign_id=campaign.campaign_id), timeout=600)
            ).campaign
            if current.status == pb.CAMPAIGN_STATUS_RUNNING:
                break
            await asyncio.sleep(0.5)
        launch_seconds = time.perf_counter() - started
        issued = current.progress.issued
    return {
        "segment_members_selected": float(counted),
        "segment_preview_seconds": best,
        "launch_audience": float(current.progress.audience),
        "launch_coupons_issued": float(issued),
        "launch_seconds": launch_seconds,
        "launch_coupons_per_s": issued / launch_seconds,
        "raw_jetstream_publish_per_s": js_rate,
        "launch_vs_raw_jetstream": issued / launch_seconds / js_rate,
    }


def _stamp(moment: datetime) -> Timestamp:
    return timestamp(moment)


def bench_marketing(work: Path, seconds: int, members: int = 1_000_000) -> dict[str, float]:
    postgres = PostgresServer(work / "postgres")
    nats = NatsServer(work / "nats")
    postgres.start()
    nats.start()
    try:
        for name in ("marketing", "gateway"):
            postgres.create_database(name)
        marketing_url, gateway_url = postgres.url_for("marketing"), postgres.url_for("gateway")
        migrations.upgrade(marketing_url, MARKETING_VERSIONS)
        migrations.upgrade(gateway_url, GATEWAY_VERSIONS)
        asyncio.run(seed_storm(marketing_url, datetime.now(UTC)))
        hot = work / "hot.sql"
        hot.write_text(HOT_UPDATE)
        results = {"pgbench_hot_row_tps": pgbench(postgres, "marketing", hot, seconds, CONNECTIONS, prepared=True).tps}
        env = {**os.environ, "APP_ENV": "local", "NATS_URL": nats.url, "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
        marketing_env = {
            **env,
            "MEMBER_SERVICE_TARGET": "127.0.0.1:9",
            "TAG_REFRESH_SECONDS": "0",
            "COUPON_ISSUE_BATCH": "5000",
        }
        with (
            grpc_service("services.marketing", marketing_env, marketing_url, work / "marketing.log") as (_, port),
            gateway_process(env, gateway_url, {"marketing": port}, work / "gateway.log") as base,
        ):
            results |= hold_storm(base, work, seconds, gateway_url, marketing_url, results["pgbench_hot_row_tps"])
            asyncio.run(seed_population(marketing_url, members))
            psql_best = psql_seconds(postgres, "marketing", literal_sql(RULE, datetime.now(UTC)))
            # Into the marketing stream (the service declared it), as its relay publishes.
            js_rate = python_module("bench.js_publish", nats.url, "retail.marketing.v1.bench_raw", "50000", "256")
            results |= asyncio.run(segment_and_launch(port, members, js_rate))
            results["psql_count_seconds"] = psql_best
            results["segment_vs_psql"] = psql_best / results["segment_preview_seconds"]
        training = python_training(marketing_url)
        results |= training
        results["members"] = float(members)
    finally:
        nats.stop()
        postgres.stop()
    return results


def hold_storm(
    base: str, work: Path, seconds: int, gateway_url: str, marketing_url: str, pgbench_hot: float
) -> dict[str, float]:
    secret = "bench-secret-not-for-production"  # noqa: S105 - a throwaway client of a throwaway gateway
    asyncio.run(register_app_client(gateway_url, "BENCH-APP", secret, "bench app", default_scopes(ClientKind.APP)))
    token = token_for(base, "BENCH-APP", secret)
    script = work / "hold.lua"
    script.write_text(WRK_HOLD)
    storm_rps, storm_refused = wrk_holds(base, script, "STORM", seconds, token)
    # The same storm on a campaign whose budget allows 1,000 holds: once spent, holds are refused.
    _, budget_refused = wrk_holds(base, script, "LIMIT", seconds, token)
    return {
        "holds_per_s": storm_rps,
        "holds_refused": storm_refused,
        "holds_vs_pgbench_hot_row": storm_rps / pgbench_hot,
        "budget_holds_refused": budget_refused,
    } | asyncio.run(budget_check(marketing_url))


def python_training(marketing_url: str) -> dict[str, float]:
    """Train once in a process of its own, so its peak memory is the training's."""
    output = subprocess.run(
        [sys.executable, "-m", "bench.marketing", "train", marketing_url], capture_output=True, text=True, check=True
    ).stdout
    seconds_taken, peak_mb, scored = output.strip().splitlines()[-1].split()
    return {
        "training_seconds": float(seconds_taken),
        "training_peak_rss_mb": float(peak_mb),
        "training_members": float(scored),
    }


async def _train(url: str) -> tuple[float, int]:
    from concurrent.futures import ThreadPoolExecutor

    from servicekit.db import create_engine, units_of_work
    from servicekit.idempotency import RequestFingerprint
    from services.marketing.service_layer.models import RepurchaseModels, TrainModel

    engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://"), pool_size=2, max_overflow=0)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            models = RepurchaseModels(units_of_work(engine), pool)
            await models.request_training(
                TrainModel(RequestFingerprint(str(uuid.uuid4()), "bench", b"x" * 32), "bench")
            )
            started = time.perf_counter()
            await models.train_next()
            elapsed = time.perf_counter() - started
            status = await models.status()
    finally:
        await engine.dispose()
    return elapsed, (status.serving.training_members or 0) if status.serving else 0


if __name__ == "__main__":
    # `python -m bench.marketing train <url>`: train once and print seconds, peak RSS in MB and members scored.
    if len(sys.argv) == 3 and sys.argv[1] == "train":
        seconds_taken, scored = asyncio.run(_train(sys.argv[2]))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{seconds_taken:.2f} {peak_mb:.0f} {scored}")
    else:
        raise SystemExit("usage: python -m bench.marketing train <database url>")
