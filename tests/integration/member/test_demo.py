"""The demo retailer's members load once, resolvable by their phone and card, with consistent points."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING

from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc

from demodata import DemoRetailer, DemoScale, IdentityKind
from services.member.demo import load_demo
from tests.integration.member.conftest import Clock, clear_view, fetch, identity, random_phone, register

if TYPE_CHECKING:
    Stub = pb_grpc.MemberServiceAsyncStub


async def test_demo_members_load_once_and_resolve_by_every_identity(stub: Stub, member_url: str, clock: Clock) -> None:
    scale = dataclasses.replace(
        DemoScale.demo(), store_count=2, sku_count=40, supplier_count=2, member_count=200, history_days=30,
        end_date=clock.now.date() - timedelta(days=1), promotion_count=2, online_orders_per_day=5,
    )  # fmt: skip
    retailer = DemoRetailer(scale=scale)

    loaded = await load_demo(member_url, retailer)
    again = await load_demo(member_url, retailer)

    assert (loaded["members"], again["members"]) == (200, 0)
    member = retailer.member(7)
    for linked in member.identities:
        app_id = retailer.wechat_app_id if linked.kind is IdentityKind.WECHAT_OPENID else ""
        answer = await stub.ResolveMember(pb.ResolveMemberRequest(identity=identity(linked.kind.value, linked.value,
                                                                                    app_id)))  # fmt: skip
        assert answer.member_id == member.member_id
    view = await clear_view(stub, member.member_id)
    assert (view.contact.name, view.contact.phone, view.contact.birthday) == (
        member.name, member.phone, member.birthday.isoformat()
    )  # fmt: skip
    buyers = await fetch(member_url, "SELECT DISTINCT member_id FROM sale_fact WHERE member_id IS NOT NULL LIMIT 20")
    assert buyers
    for row in buyers:
        check = await stub.CheckPointsLedger(pb.CheckPointsLedgerRequest(member_id=row["member_id"]))
        assert check.consistent, check.problems
        assert check.balance > 0
    assert (await register(stub, "phone", random_phone())).member_id == "M0000201"
