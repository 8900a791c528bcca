"""The marketing service as a process sees it: gRPC in, member events and the SALES journal in over
JetStream, coupons issued to treatment members only and redeemed once by the sale that used them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from retail.common.v1 import identifiers_pb2, money_pb2
from retail.marketing.v1 import marketing_service_pb2 as pb
from retail.marketing.v1 import marketing_service_pb2_grpc as pb_grpc
from retail.member.v1 import events_pb2 as member_events
from retail.member.v1 import member_service_pb2 as member_pb2
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.protowire import timestamp
from services.marketing.bootstrap import MarketingApp
from tests.support.messaging import jetstream

HQ = identifiers_pb2.Actor(
    client_id="hq-anna",
    client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
    staff_role=identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
)
HQ_APPROVER = identifiers_pb2.Actor(
    client_id="hq-bo", client_kind=identifiers_pb2.CLIENT_KIND_STAFF, staff_role=identifiers_pb2.STAFF_ROLE_HEADQUARTERS
)
APP = identifiers_pb2.Actor(client_id="app-backend", client_kind=identifiers_pb2.CLIENT_KIND_APP)


def manager(store_id: str) -> identifiers_pb2.Actor:
    return identifiers_pb2.Actor(
        client_id=f"manager-{store_id}",
        client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
        staff_role=identifiers_pb2.STAFF_ROLE_STORE_MANAGER,
        store_id=store_id,
    )


def cny(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="CNY", minor_units=fen)


@pytest.fixture
async def stub(app: MarketingApp) -> AsyncIterator[pb_grpc.MarketingServiceAsyncStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        yield pb_grpc.MarketingServiceStub(channel)  # type: ignore[no-untyped-call]


async def publish(nats_url: str, subject: str, message: Message, message_id: str) -> None:
    async with jetstream(nats_url) as (_, js):
        await js.publish(
            subject,
            message.SerializeToString(),
            headers={"Nats-Msg-Id": message_id, "Retail-Event-Type": message.DESCRIPTOR.full_name},
        )


async def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:  # noqa: ASYNC109
    """Poll ``check`` (an async callable) until it returns something truthy, within a bound."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


async def test_a_campaign_from_segment_to_report_through_the_service(
    stub: pb_grpc.MarketingServiceAsyncStub, nats_url: str, unique: str
) -> None:
    store = f"S{unique}"
    members = [f"M{unique}{index:03d}" for index in range(60)]
    now = datetime.now(UTC)
    for member_id in members:
        registered = member_events.MemberRegistered(
            member_id=member_id, channel=member_pb2.CHANNEL_STORE, store_id=store, occurred_at=timestamp(now)
        )
        await publish(nats_url, "retail.member.v1.member_registered", registered, f"reg-{member_id}")
        tier = member_events.TierChanged(
            member_id=member_id,
            from_tier=member_pb2.MEMBER_TIER_BASIC,
            to_tier=member_pb2.MEMBER_TIER_GOLD,
            occurred_at=timestamp(now),
        )
        await publish(nats_url, "retail.member.v1.tier_changed", tier, f"tier-{member_id}")
        consent = member_events.ConsentChanged(
            member_id=member_id, channel=member_pb2.CONSENT_CHANNEL_APP_PUSH, granted=True, occurred_at=timestamp(now)
        )
        await publish(nats_url, "retail.member.v1.consent_changed", consent, f"consent-{member_id}")
    rule = json.dumps({"attribute": "home_store", "op": "in", "value": [store]})

    async def everyone_arrived() -> bool:
        preview = await stub.PreviewSegment(pb.PreviewSegmentRequest(actor=HQ, rule_json=rule), timeout=5)
        return preview.members == len(members)

    await eventually(everyone_arrived)
    with pytest.raises(grpc.aio.AioRpcError) as bad_rule:
        await stub.PreviewSegment(pb.PreviewSegmentRequest(actor=HQ, rule_json='{"attribute": "shoe_size"}'), timeout=5)
    assert bad_rule.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    segment = (
        await stub.CreateSegment(
            pb.CreateSegmentRequest(request_id=str(uuid.uuid4()), actor=HQ, name="Home store", rule_json=rule),
            timeout=5,
        )
    ).segment
    snapshot = (
        await stub.SnapshotSegment(
            pb.SnapshotSegmentRequest(request_id=str(uuid.uuid4()), actor=HQ, segment_id=segment.segment_id), timeout=5
        )
    ).snapshot
    assert snapshot.members == len(members)
    create = pb.CreateCampaignRequest(
        request_id=str(uuid.uuid4()),
        actor=HQ,
        name="Twenty off",
        snapshot_id=snapshot.snapshot_id,
        offer=pb.Offer(kind=pb.DISCOUNT_KIND_AMOUNT_OFF, amount_off=cny(2_000), min_spend=cny(10_000)),
        terms=pb.CouponTerms(
            valid_from=timestamp(now - timedelta(minutes=1)), valid_until=timestamp(now + timedelta(days=7))
        ),
        control_fraction_bp=2_000,
        contact_channels=["app_push"],
    )
    campaign = (await stub.CreateCampaign(create, timeout=5)).campaign
    assert campaign.status == pb.CAMPAIGN_STATUS_DRAFT
    # Another store's manager does not see it.
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stub.GetCampaign(
            pb.GetCampaignRequest(actor=manager("OTHER"), campaign_id=campaign.campaign_id), timeout=5
        )
    assert hidden.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as own:
        await stub.ApproveCampaign(
            pb.ApproveCampaignRequest(request_id=str(uuid.uuid4()), actor=HQ, campaign_id=campaign.campaign_id),
            timeout=5,
        )
    assert own.value.code() is grpc.StatusCode.PERMISSION_DENIED
    await stub.ApproveCampaign(
        pb.ApproveCampaignRequest(request_id=str(uuid.uuid4()), actor=HQ_APPROVER, campaign_id=campaign.campaign_id),
        timeout=5,
    )
    await stub.LaunchCampaign(
        pb.LaunchCampaignRequest(request_id=str(uuid.uuid4()), actor=HQ, campaign_id=campaign.campaign_id), timeout=5
    )

    async def running() -> pb.Campaign | None:
        found = (
            await stub.GetCampaign(pb.GetCampaignRequest(actor=HQ, campaign_id=campaign.campaign_id), timeout=5)
        ).campaign
        return found if found.status == pb.CAMPAIGN_STATUS_RUNNING else None

    launched = await eventually(running)
    progress = launched.progress
    assert (progress.audience, progress.treatment + progress.control) == (len(members), len(members))
    assert progress.control == 12  # 20% of 60, one stratum
    assert progress.issued == progress.treatment == 48

    coupons: dict[str, str] = {}
    for member_id in members:
        listed = await stub.ListMemberCoupons(pb.ListMemberCouponsRequest(actor=APP, member_id=member_id), timeout=5)
        for coupon in listed.coupons:
            coupons[member_id] = coupon.code
    assert len(coupons) == 48
    holder = next(iter(coupons))
    hold = await stub.HoldCoupon(
        pb.HoldCouponRequest(
            request_id=str(uuid.uuid4()),
            actor=APP,
            code=coupons[holder],
            member_id=holder,
            channel=pb.SALES_CHANNEL_APP,
            lines=[pb.BasketLine(sku="RICE", amount=cny(12_000))],
        ),
        timeout=5,
    )
    assert hold.discount.minor_units == 2_000
    someone_else = next(member_id for member_id in members if member_id != holder)
    with pytest.raises(grpc.aio.AioRpcError) as not_yours:
        await stub.HoldCoupon(
            pb.HoldCouponRequest(
                request_id=str(uuid.uuid4()),
                actor=APP,
                code=coupons[holder],
                member_id=someone_else,
                channel=pb.SALES_CHANNEL_APP,
                lines=[pb.BasketLine(sku="RICE", amount=cny(12_000))],
            ),
            timeout=5,
        )
    assert not_yours.value.code() is grpc.StatusCode.PERMISSION_DENIED

    sale = sales_pb2.SaleRecorded(
        sale_id=f"SALE-{unique}",
        kind=sales_pb2.SALE_KIND_SALE,
        location_id="ONLINE",
        channel=sales_pb2.SALES_CHANNEL_APP,
        occurred_at=timestamp(datetime.now(UTC)),
        lines=[
            sales_pb2.SaleLine(
                line_number=1, sku="RICE", unit_price=cny(12_000), discount=cny(2_000), line_total=cny(10_000)
            )
        ],
        member=sales_pb2.MemberReference(type=sales_pb2.MEMBER_IDENTIFIER_TYPE_MEMBER_ID, member_id=holder),
        coupon_codes=[coupons[holder]],
        total=cny(10_000),
    )
    await publish(nats_url, f"retail.sales.v1.sale_recorded.{sale.location_id}", sale, sale.sale_id)

    async def redeemed() -> pb.GetCampaignReportResponse | None:
        report = await stub.GetCampaignReport(
            pb.GetCampaignReportRequest(actor=HQ, campaign_id=campaign.campaign_id), timeout=5
        )
        return report if report.redemptions == 1 else None

    report = await eventually(redeemed)
    assert report.coupon_cost.minor_units == 2_000
    assert (report.treatment.members, report.control.members) == (48, 12)
    assert report.treatment.revenue_per_member_fen == pytest.approx(12_000 / 48)
    assert report.HasField("roi")
