"""Merges: linking another member's identity merges the two, everything follows the survivor,
and an undo restores both members exactly, or says precisely why it cannot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest
from retail.common.v1 import paging_pb2
from retail.member.v1 import events_pb2
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc

from tests.integration.member.conftest import (
    HQ,
    by_member_id,
    clear_view,
    fetch,
    journal_sale,
    link,
    outbox_messages,
    publish_sales,
    random_phone,
    register,
    request_id,
    settled,
)
from tests.support.clock import HandClock
from tests.support.grpc_status import refused

if TYPE_CHECKING:
    Stub = pb_grpc.MemberServiceAsyncStub


@pytest.fixture
def durable(unique: str) -> str:
    return f"member-sales-{unique}"


async def adjust(stub: Stub, member_id: str, points: int) -> None:
    await stub.AdjustPoints(
        pb.AdjustPointsRequest(
            request_id=request_id(), member_id=member_id, points=points, reason="goodwill", actor=HQ
        ),
        timeout=5,
    )


async def undo(stub: Stub, merge_id: str) -> pb.UndoMergeResponse:
    return await stub.UndoMerge(pb.UndoMergeRequest(request_id=request_id(), merge_id=merge_id, actor=HQ), timeout=10)


async def snapshot(stub: Stub, member_url: str, member_id: str) -> dict[str, Any]:
    """Everything a member is, as the API and the database show it."""
    points = await stub.GetPoints(pb.GetPointsRequest(member_id=member_id, page=paging_pb2.PageRequest(page_size=500)))
    check = await stub.CheckPointsLedger(pb.CheckPointsLedgerRequest(member_id=member_id))
    tiers = await stub.ListTierChanges(pb.ListTierChangesRequest(member_id=member_id))
    rows = {
        table: [dict(row) for row in await fetch(member_url, query, member_id)]
        for table, query in {
            "member": "SELECT * FROM member WHERE member_id = $1",
            "identities": "SELECT * FROM member_identity WHERE member_id = $1 ORDER BY identity_hash",
            "consent_history": "SELECT * FROM consent_event WHERE member_id = $1 ORDER BY id",
            "lots": "SELECT * FROM points_lot WHERE member_id = $1 ORDER BY lot_id",
            "sales": "SELECT sale_id, member_id, points FROM sale_fact WHERE member_id = $1 ORDER BY sale_id",
        }.items()
    }
    for row in rows["member"]:
        row.pop("updated_at")
    return {"view": await clear_view(stub, member_id), "points": points, "check": check, "tiers": tiers} | rows


async def two_members_with_history(stub: Stub, clock: HandClock, nats_url: str, durable: str) -> tuple[str, str, str]:
    """An app member (older) and a store member with a phone, points, sales, tags, consent and a better tier."""
    push = pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_APP_PUSH, granted=True)
    older = (
        await register(
            stub,
            "app_user_id",
            "app-" + request_id()[:8],
            channel=pb.CHANNEL_APP,
            profile=pb.Profile(name="陈思"),
            consents=[push],
        )
    ).member_id
    clock.advance(days=3)
    phone = random_phone()
    newer = (
        await register(
            stub,
            "phone",
            phone,
            profile=pb.Profile(
                birthday="1991-03-04",
                address=pb.Address(province="浙江省", city="杭州市", street="文三路 1 号"),
                preferences={"diet": "清真"},
            ),
            consents=[pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_SMS, granted=True)],
        )
    ).member_id
    await stub.UpdateMember(
        pb.UpdateMemberRequest(request_id=request_id(), member_id=older, tags=pb.TagsUpdate(add=["vip"]), actor=HQ)
    )
    await stub.UpdateMember(
        pb.UpdateMemberRequest(
            request_id=request_id(), member_id=newer, tags=pb.TagsUpdate(add=["vip", "wine"]), actor=HQ
        )
    )
    await publish_sales(
        nats_url,
        [
            journal_sale(store_id="M-MERGE", lines=[("SKU1", 12_345)], member=by_member_id(older)),
            journal_sale(store_id="M-MERGE", lines=[("SKU2", 850_000)], member=by_member_id(newer)),  # gold
            journal_sale(store_id="M-MERGE", lines=[("SKU3", 2_000)], member=by_member_id(newer)),
        ],
    )
    await settled(nats_url, durable)
    await adjust(stub, older, 40)
    return older, newer, phone


async def test_merge_then_undo_restores_both_members_exactly(
    stub: Stub, clock: HandClock, member_url: str, nats_url: str, durable: str
) -> None:
    older, newer, phone = await two_members_with_history(stub, clock, nats_url, durable)
    before = {member: await snapshot(stub, member_url, member) for member in (older, newer)}
    assert before[newer]["view"].tier.tier == pb.MEMBER_TIER_GOLD

    linked = await link(stub, older, "phone", phone)

    assert (linked.merged, linked.member_id, linked.merge.absorbed_member_id) == (True, older, newer)
    assert linked.merge.rule == pb.SURVIVOR_RULE_OLDER
    assert linked.merge.points_moved == before[newer]["points"].balance
    merged = await snapshot(stub, member_url, older)
    assert merged["points"].balance == before[older]["points"].balance + before[newer]["points"].balance
    assert merged["check"].consistent, merged["check"].problems
    view = merged["view"]
    assert (view.contact.name, view.contact.phone, view.contact.birthday) == ("陈思", phone, "1991-03-04")
    assert (list(view.tags), view.tier.tier, dict(view.preferences)) == (
        ["vip", "wine"],
        pb.MEMBER_TIER_GOLD,
        {"diet": "清真"},
    )
    assert {c.channel for c in view.consents} == {pb.CONSENT_CHANNEL_APP_PUSH, pb.CONSENT_CHANNEL_SMS}
    assert len(merged["sales"]) == 3
    assert (await clear_view(stub, newer)).member_id == older  # the absorbed id answers with the survivor
    resolved = await stub.ResolveMember(
        pb.ResolveMemberRequest(identity=pb.Identity(type=pb.IDENTITY_TYPE_PHONE, value=phone))
    )
    assert resolved.member_id == older
    (event,) = await outbox_messages(member_url, events_pb2.MemberMerged)
    assert (event.survivor_member_id, event.absorbed_member_id) == (older, newer)

    undone = await undo(stub, linked.merge.merge_id)

    assert (undone.survivor_member_id, undone.restored_member_id) == (older, newer)
    for member in (older, newer):
        after = await snapshot(stub, member_url, member)
        for aspect, was in before[member].items():
            assert str(after[aspect]).splitlines() == str(was).splitlines(), (member, aspect)
    (undo_event,) = await outbox_messages(member_url, events_pb2.MergeUndone)
    assert (undo_event.merge_id, undo_event.restored_member_id) == (linked.merge.merge_id, newer)
    await refused(undo(stub, linked.merge.merge_id), grpc.StatusCode.FAILED_PRECONDITION, "merge-already-undone")


async def test_an_explicitly_chosen_survivor_wins_and_commands_on_the_absorbed_id_say_where_it_went(
    stub: Stub, clock: HandClock
) -> None:
    older = (await register(stub, "phone", random_phone())).member_id
    clock.advance(days=1)
    card = "8860" + request_id().replace("-", "")[:12].upper()
    newer = (await register(stub, "pos_card", card)).member_id
    await adjust(stub, older, 25)

    linked = await link(stub, older, "pos_card", card, survivor=newer)

    assert (linked.member_id, linked.merge.rule, linked.merge.points_moved) == (newer, pb.SURVIVOR_RULE_CHOSEN, 25)
    message = await refused(
        stub.RedeemPoints(pb.RedeemPointsRequest(request_id=request_id(), member_id=older, points=5, actor=HQ)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "member-merged",
    )
    assert newer in message
    redeemed = await stub.RedeemPoints(
        pb.RedeemPointsRequest(request_id=request_id(), member_id=newer, points=5, actor=HQ)
    )
    assert redeemed.balance == 20
    await refused(link(stub, older, "email", "x@example.com"), grpc.StatusCode.FAILED_PRECONDITION, "member-merged")
    await refused(
        link(stub, newer, "phone", random_phone(), survivor="M0000001"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid-survivor",
    )


async def test_an_undo_after_the_survivor_was_merged_again_is_refused_and_changes_nothing(
    stub: Stub, clock: HandClock, member_url: str
) -> None:
    first = (await register(stub, "phone", random_phone())).member_id
    clock.advance(days=1)
    second_phone = random_phone()
    second = (await register(stub, "phone", second_phone)).member_id
    clock.advance(days=1)
    third_card = "88612345" + request_id()[:4].replace("-", "0")
    third = (await register(stub, "pos_card", third_card)).member_id
    merge_one = (await link(stub, second, "pos_card", third_card)).merge.merge_id  # second absorbs third
    merge_two = (await link(stub, first, "phone", second_phone)).merge.merge_id  # first absorbs second

    await refused(undo(stub, merge_one), grpc.StatusCode.FAILED_PRECONDITION, "survivor-merged-again")
    statuses = await fetch(member_url, "SELECT member_id, status FROM member ORDER BY member_id")
    assert [(row["member_id"], row["status"]) for row in statuses] == [
        (first, "active"),
        (second, "merged"),
        (third, "merged"),
    ]
    await undo(stub, merge_two)
    await undo(stub, merge_one)  # now possible, in reverse order
    statuses = await fetch(member_url, "SELECT status FROM member ORDER BY member_id")
    assert [row["status"] for row in statuses] == ["active"] * 3
    await refused(undo(stub, "not-a-merge"), grpc.StatusCode.NOT_FOUND, "merge-not-found")


async def test_an_undo_after_moved_points_were_spent_is_refused_precisely(stub: Stub, clock: HandClock) -> None:
    survivor = (await register(stub, "phone", random_phone())).member_id
    clock.advance(days=1)
    phone = random_phone()
    absorbed = (await register(stub, "phone", phone)).member_id
    await adjust(stub, absorbed, 30)  # this lot expires first: a redemption spends it first
    clock.advance(days=1)
    await adjust(stub, survivor, 10)
    merge_id = (await link(stub, survivor, "phone", phone)).merge.merge_id
    await stub.RedeemPoints(pb.RedeemPointsRequest(request_id=request_id(), member_id=survivor, points=20, actor=HQ))

    await refused(undo(stub, merge_id), grpc.StatusCode.FAILED_PRECONDITION, "merge-diverged")
    check = await stub.CheckPointsLedger(pb.CheckPointsLedgerRequest(member_id=survivor))
    assert (check.balance, check.consistent) == (20, True)
