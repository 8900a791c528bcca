"""The demo retailer's members load once, resolvable by their phone and card, with consistent points."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING

from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc

from demodata import CHINA_STANDARD_TIME, DemoRetailer, DemoScale, IdentityKind
from services.member.demo import load_demo
from tests.integration.member.conftest import clear_view, fetch, identity, random_phone, register
from tests.support.clock import HandClock

if TYPE_CHECKING:
    Stub = pb_grpc.MemberServiceAsyncStub


def small_retailer() -> DemoRetailer:
    """200 members and a month of history ending yesterday: the default, as `make run` loads it."""
    scale = dataclasses.replace(
        DemoScale.demo(),
        store_count=2,
        sku_count=40,
        supplier_count=2,
        member_count=200,
        history_days=30,
        promotion_count=2,
        online_orders_per_day=5,
    )
    return DemoRetailer(scale=scale)


async def test_demo_members_load_once_and_resolve_by_every_identity(stub: Stub, member_url: str) -> None:
    retailer = small_retailer()

    loaded = await load_demo(member_url, retailer)
    again = await load_demo(member_url, retailer)

    assert (loaded["members"], again["members"]) == (200, 0)
    member = retailer.member(7)
    for linked in member.identities:
        app_id = retailer.wechat_app_id if linked.kind is IdentityKind.WECHAT_OPENID else ""
        answer = await stub.ResolveMember(
            pb.ResolveMemberRequest(identity=identity(linked.kind.value, linked.value, app_id))
        )
        assert answer.member_id == member.member_id
    view = await clear_view(stub, member.member_id)
    assert (view.contact.name, view.contact.phone, view.contact.birthday) == (
        member.name,
        member.phone,
        member.birthday.isoformat(),
    )
    buyers = await fetch(member_url, "SELECT DISTINCT member_id FROM sale_fact WHERE member_id IS NOT NULL LIMIT 20")
    assert buyers
    for row in buyers:
        check = await stub.CheckPointsLedger(pb.CheckPointsLedgerRequest(member_id=row["member_id"]))
        assert check.consistent, check.problems
        assert check.balance > 0
    assert (await register(stub, "phone", random_phone())).member_id == "M0000201"


async def test_after_loading_the_demo_the_default_kpi_period_has_active_members(
    stub: Stub, member_url: str, clock: HandClock
) -> None:
    retailer = small_retailer()
    await load_demo(member_url, retailer)

    kpis = await stub.GetMemberKpis(pb.GetMemberKpisRequest())

    today = clock.now.astimezone(CHINA_STANDARD_TIME).date()
    assert kpis.active_members > 0
    assert (kpis.from_date, kpis.to_date) == ((today - timedelta(days=27)).isoformat(), today.isoformat())
    assert kpis.member_sales_count > 0
    assert kpis.sales_count > kpis.member_sales_count
