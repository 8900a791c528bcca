"""A retried mutating call (the same request_id) is answered with the very bytes of the first
answer and changes nothing more: the answer kept under the request id reads back exactly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc

from tests.integration.member.conftest import HQ, fetch, identity, random_phone, register, request_id

if TYPE_CHECKING:
    Stub = pb_grpc.MemberServiceAsyncStub


async def sent_twice(call: Callable[..., Awaitable[Any]], request: Message) -> tuple[Any, Any]:
    """The first answer and the answer to the same request sent again."""
    return await call(request, timeout=10), await call(request, timeout=10)


def same_bytes(first: Message, again: Message) -> bool:
    return first.SerializeToString(deterministic=True) == again.SerializeToString(deterministic=True)


async def test_every_member_command_sent_again_answers_its_first_answer_byte_for_byte(
    stub: Stub, member_url: str
) -> None:
    older = (await register(stub, "phone", random_phone())).member_id
    newer_phone = random_phone()
    newer = (await register(stub, "phone", newer_phone)).member_id

    adjusted, adjusted_again = await sent_twice(
        stub.AdjustPoints,
        pb.AdjustPointsRequest(request_id=request_id(), member_id=older, points=100, reason="goodwill", actor=HQ),
    )
    assert same_bytes(adjusted, adjusted_again)
    assert adjusted.entry.HasField("expires_at")
    assert adjusted.balance == 100

    redeemed, redeemed_again = await sent_twice(
        stub.RedeemPoints,
        pb.RedeemPointsRequest(request_id=request_id(), member_id=older, points=30, reference="order-7", actor=HQ),
    )
    assert same_bytes(redeemed, redeemed_again)
    assert (redeemed.balance, redeemed.entry.points, redeemed.entry.reference) == (70, -30, "order-7")

    updated, updated_again = await sent_twice(
        stub.UpdateMember,
        pb.UpdateMemberRequest(request_id=request_id(), member_id=older, tags=pb.TagsUpdate(add=["vip"]), actor=HQ),
    )
    assert same_bytes(updated, updated_again)
    assert list(updated.changed) == ["tags"]

    linked, linked_again = await sent_twice(
        stub.LinkIdentity,
        pb.LinkIdentityRequest(
            request_id=request_id(), member_id=older, identity=identity("phone", newer_phone), actor=HQ
        ),
    )
    assert same_bytes(linked, linked_again)
    assert linked.merged
    assert linked.merge.HasField("merged_at")

    undone, undone_again = await sent_twice(
        stub.UndoMerge, pb.UndoMergeRequest(request_id=request_id(), merge_id=linked.merge.merge_id, actor=HQ)
    )
    assert same_bytes(undone, undone_again)
    assert undone.restored_member_id in (older, newer)
    assert undone.HasField("undone_at")

    erased, erased_again = await sent_twice(
        stub.EraseMember, pb.EraseMemberRequest(request_id=request_id(), member_id=newer, reason="ticket", actor=HQ)
    )
    assert same_bytes(erased, erased_again)
    assert erased.member_id == newer
    assert erased.HasField("erased_at")

    balance = await fetch(member_url, "SELECT points_balance FROM member WHERE member_id = $1", older)
    assert [row["points_balance"] for row in balance] == [70]  # each change booked once, the merge undone
