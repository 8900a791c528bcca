"""`kill -9` of the marketing process mid-launch and mid-redemption-storm: after a restart every coupon is
issued once, none is redeemed twice, and the budget counters equal what the rows say."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest
from retail.marketing.v1 import marketing_service_pb2 as pb
from retail.marketing.v1 import marketing_service_pb2_grpc as pb_grpc
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.messaging import StreamSpec, ensure_stream
from servicekit.protowire import timestamp
from servicekit.settings import to_plain_url
from tests.integration.marketing.test_marketing_service import APP, HQ, HQ_APPROVER, cny, publish
from tests.support.messaging import jetstream
from tests.support.processes import ServiceProcess, serving

pytestmark = pytest.mark.slow


@pytest.fixture
def marketing_process(
    marketing_url: str, nats_url: str, unique: str, tmp_path: Path
) -> Iterator[tuple[ServiceProcess, int]]:
    process, port = ServiceProcess.grpc_service(
        "services.marketing",
        database_url=marketing_url,
        nats_url=nats_url,
        log=tmp_path / "marketing.log",
        MEMBER_SERVICE_TARGET="127.0.0.1:9",
        MARKETING_SALES_DURABLE=f"mkt-sales-{unique}",
        MARKETING_MEMBERS_DURABLE=f"mkt-members-{unique}",
        MARKETING_CATALOGUE_DURABLE=f"mkt-cat-{unique}",
        LAUNCH_POLL_SECONDS="0.05",
        COUPON_ISSUE_BATCH="200",
        TAG_REFRESH_SECONDS="0",
    )
    process.start()
    yield process, port
    process.stop()


async def population(url: str, members: int, store: str) -> None:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        await connection.execute(
            "INSERT INTO member (member_id, home_store_id, consent, registered_at, updated_at) "
            "SELECT 'M' || lpad(n::text, 9, '0'), $2, '{app_push}', now(), now() FROM generate_series(1, $1) n",
            members,
            store,
        )
    finally:
        await connection.close()


async def committed_uses(url: str) -> int:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        return int(
            await connection.fetchval("SELECT (SELECT count(*) FROM coupon_hold) + (SELECT count(*) FROM redemption)")
        )
    finally:
        await connection.close()


async def invariants(url: str) -> dict[str, int]:
    """What the counters say against what the rows say (all zero when they agree)."""
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        row = await connection.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM coupon c WHERE c.held <> (SELECT count(*) FROM coupon_hold h
                 WHERE h.code = c.code AND h.status = 'held')) AS coupons_held_drift,
              (SELECT count(*) FROM coupon c WHERE c.used <> (SELECT count(*) FROM redemption r
                 WHERE r.code = c.code AND r.given_back_at IS NULL)) AS coupons_used_drift,
              (SELECT count(*) FROM campaign k WHERE k.spent_fen <> (SELECT coalesce(sum(discount_fen), 0)
                 FROM redemption r WHERE r.campaign_id = k.campaign_id AND r.given_back_at IS NULL)) AS spent_drift,
              (SELECT count(*) FROM campaign k WHERE k.held_fen <> (SELECT coalesce(sum(discount_fen), 0)
                 FROM coupon_hold h WHERE h.campaign_id = k.campaign_id AND h.status = 'held')) AS held_drift,
              (SELECT count(*) FROM (SELECT code FROM redemption WHERE given_back_at IS NULL GROUP BY code
                 HAVING count(*) > 1) AS twice) AS codes_redeemed_twice,
              (SELECT count(*) - count(DISTINCT (campaign_id, issued_to)) FROM coupon WHERE issued_to IS NOT NULL)
                 AS members_issued_twice
            """
        )
    finally:
        await connection.close()
    assert row is not None
    return dict(row)


async def test_a_launch_killed_midway_and_a_redemption_storm_killed_midway_lose_and_double_nothing(
    marketing_process: tuple[ServiceProcess, int], marketing_url: str, nats_url: str, unique: str
) -> None:
    process, port = marketing_process
    store = f"S{unique}"
    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, StreamSpec("SALES", ["retail.sales.v1.>"]))
    await population(marketing_url, 6_000, store)
    await serving(port)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MarketingServiceStub(channel)  # type: ignore[no-untyped-call]
        rule = json.dumps({"attribute": "home_store", "op": "in", "value": [store]})
        segment = (
            await stub.CreateSegment(
                pb.CreateSegmentRequest(request_id=str(uuid.uuid4()), actor=HQ, name="all", rule_json=rule), timeout=30
            )
        ).segment
        snapshot = (
            await stub.SnapshotSegment(
                pb.SnapshotSegmentRequest(request_id=str(uuid.uuid4()), actor=HQ, segment_id=segment.segment_id),
                timeout=60,
            )
        ).snapshot
        now = datetime.now(UTC)
        campaign = (
            await stub.CreateCampaign(
                pb.CreateCampaignRequest(
                    request_id=str(uuid.uuid4()),
                    actor=HQ,
                    name="crash",
                    snapshot_id=snapshot.snapshot_id,
                    offer=pb.Offer(kind=pb.DISCOUNT_KIND_AMOUNT_OFF, amount_off=cny(1_000)),
                    terms=pb.CouponTerms(
                        valid_from=timestamp(now - timedelta(minutes=1)), valid_until=timestamp(now + timedelta(days=3))
                    ),
                    control_fraction_bp=1_000,
                    contact_channels=["app_push"],
                    budget=pb.Budget(max_discount=cny(1_000 * 2_000)),
                ),
                timeout=30,
            )
        ).campaign
        await stub.ApproveCampaign(
            pb.ApproveCampaignRequest(
                request_id=str(uuid.uuid4()), actor=HQ_APPROVER, campaign_id=campaign.campaign_id
            ),
            timeout=30,
        )
        await stub.LaunchCampaign(
            pb.LaunchCampaignRequest(request_id=str(uuid.uuid4()), actor=HQ, campaign_id=campaign.campaign_id),
            timeout=30,
        )
        async with asyncio.timeout(60):
            while (
                await stub.GetCampaign(pb.GetCampaignRequest(actor=HQ, campaign_id=campaign.campaign_id), timeout=10)
            ).campaign.progress.issued < 400:
                await asyncio.sleep(0.02)
    process.kill()  # mid-launch: some batches issued, most not
    process.start()
    await serving(port)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MarketingServiceStub(channel)  # type: ignore[no-untyped-call]
        async with asyncio.timeout(120):
            while (
                current := (
                    await stub.GetCampaign(
                        pb.GetCampaignRequest(actor=HQ, campaign_id=campaign.campaign_id), timeout=10
                    )
                ).campaign
            ).status != pb.CAMPAIGN_STATUS_RUNNING:
                await asyncio.sleep(0.1)
        assert current.progress.issued == current.progress.treatment == 5_400
        connection = await asyncpg.connect(to_plain_url(marketing_url))
        try:
            coupons = await connection.fetch(
                "SELECT code, member_id FROM coupon WHERE campaign_id = $1", campaign.campaign_id
            )
            issued_events = await connection.fetchval(
                "SELECT count(*) FROM outbox WHERE event_type = 'retail.marketing.v1.CouponIssued'"
            )
        finally:
            await connection.close()
        assert len(coupons) == len({row["member_id"] for row in coupons}) == issued_events == 5_400

        # A storm of holds and journaled sales on 300 codes, the process killed in the middle of it.
        targets = coupons[:300]

        async def hold_and_sell(index: int, code: str, member_id: str) -> None:
            with contextlib.suppress(grpc.aio.AioRpcError):  # refused, or cut off by the kill: the sale happened
                await stub.HoldCoupon(
                    pb.HoldCouponRequest(
                        request_id=f"storm-{index}",
                        actor=APP,
                        code=code,
                        member_id=member_id,
                        channel=pb.SALES_CHANNEL_APP,
                        lines=[pb.BasketLine(sku="RICE", amount=cny(5_000))],
                    ),
                    timeout=10,
                )
            sale = sales_pb2.SaleRecorded(
                sale_id=f"STORM-{unique}-{index}",
                kind=sales_pb2.SALE_KIND_SALE,
                location_id=store,
                channel=sales_pb2.SALES_CHANNEL_APP,
                occurred_at=timestamp(datetime.now(UTC)),
                lines=[
                    sales_pb2.SaleLine(
                        line_number=1, sku="RICE", unit_price=cny(5_000), line_total=cny(4_000), discount=cny(1_000)
                    )
                ],
                member=sales_pb2.MemberReference(type=sales_pb2.MEMBER_IDENTIFIER_TYPE_MEMBER_ID, member_id=member_id),
                coupon_codes=[code, code] if index % 7 == 0 else [code],
            )
            await publish(nats_url, f"retail.sales.v1.sale_recorded.{store}", sale, sale.sale_id)
            if index % 5 == 0:  # the same code again at another till
                again = sales_pb2.SaleRecorded()
                again.CopyFrom(sale)
                again.sale_id = f"STORM-{unique}-{index}-again"
                await publish(nats_url, f"retail.sales.v1.sale_recorded.{store}", again, again.sale_id)

        storm = [asyncio.create_task(hold_and_sell(i, row["code"], row["member_id"])) for i, row in enumerate(targets)]
        # Pull the plug in the middle of the storm: once some holds and redemptions are committed.
        async with asyncio.timeout(60):
            while await committed_uses(marketing_url) < 40:
                await asyncio.sleep(0.01)
        process.kill()
        await asyncio.gather(*storm)
    process.start()
    await serving(port)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.MarketingServiceStub(channel)  # type: ignore[no-untyped-call]
        async with asyncio.timeout(120):
            while True:
                report = await stub.GetCampaignReport(
                    pb.GetCampaignReportRequest(actor=HQ, campaign_id=campaign.campaign_id), timeout=10
                )
                if report.redemptions + report.redemption_conflicts >= 300 + 60:
                    break
                await asyncio.sleep(0.2)
    assert report.redemptions == 300  # every code used by its own sale once
    assert report.redemption_conflicts == 60  # every second till's use of a spent code
    assert await invariants(marketing_url) == {
        "coupons_held_drift": 0,
        "coupons_used_drift": 0,
        "spent_drift": 0,
        "held_drift": 0,
        "codes_redeemed_twice": 0,
        "members_issued_twice": 0,
    }
