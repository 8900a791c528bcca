"""Marketing reaches members only through channels they consented to: every change of a decision is an event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retail.member.v1 import events_pb2
from retail.member.v1 import member_service_pb2 as pb

from tests.integration.member.conftest import HQ, link, outbox_messages, random_phone, register, request_id

if TYPE_CHECKING:
    from retail.member.v1.member_service_pb2_grpc import MemberServiceAsyncStub as Stub


def decisions(messages: list[events_pb2.ConsentChanged]) -> list[tuple[str, str, bool]]:
    return [(m.member_id, pb.ConsentChannel.Name(m.channel), m.granted) for m in messages]


async def test_registration_and_updates_publish_each_changed_decision_once(stub: Stub, member_url: str) -> None:
    member_id = (
        await register(
            stub,
            "phone",
            random_phone(),
            consents=[
                pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_SMS, granted=True),
                pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_EMAIL, granted=False),
            ],
        )
    ).member_id
    assert decisions(await outbox_messages(member_url, events_pb2.ConsentChanged)) == [
        (member_id, "CONSENT_CHANNEL_SMS", True)
    ]
    update = pb.UpdateMemberRequest(
        request_id=request_id(),
        member_id=member_id,
        consents=[
            pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_SMS, granted=True),  # confirmed: no change
            pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_APP_PUSH, granted=True),
        ],
        actor=HQ,
    )
    await stub.UpdateMember(update, timeout=10)
    await stub.UpdateMember(update, timeout=10)  # a retry publishes nothing again
    await stub.UpdateMember(
        pb.UpdateMemberRequest(
            request_id=request_id(),
            member_id=member_id,
            consents=[pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_SMS, granted=False)],
            actor=HQ,
        ),
        timeout=10,
    )
    assert decisions(await outbox_messages(member_url, events_pb2.ConsentChanged)) == [
        (member_id, "CONSENT_CHANNEL_SMS", True),
        (member_id, "CONSENT_CHANNEL_APP_PUSH", True),
        (member_id, "CONSENT_CHANNEL_SMS", False),
    ]


async def test_a_merge_publishes_what_the_survivor_now_consents_to_and_its_undo_gives_each_member_its_own(
    stub: Stub, member_url: str
) -> None:
    phone = random_phone()
    older = (await register(stub, "phone", random_phone())).member_id
    newer = (
        await register(
            stub, "phone", phone, consents=[pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_WECHAT, granted=True)]
        )
    ).member_id
    before = len(await outbox_messages(member_url, events_pb2.ConsentChanged))
    merged = await link(stub, older, "phone", phone, survivor=older)
    assert merged.member_id == older
    after_merge = decisions((await outbox_messages(member_url, events_pb2.ConsentChanged))[before:])
    assert after_merge == [(older, "CONSENT_CHANNEL_WECHAT", True)]
    await stub.UndoMerge(
        pb.UndoMergeRequest(request_id=request_id(), merge_id=merged.merge.merge_id, actor=HQ), timeout=10
    )
    after_undo = decisions((await outbox_messages(member_url, events_pb2.ConsentChanged))[before + len(after_merge) :])
    assert set(after_undo) == {(newer, "CONSENT_CHANNEL_WECHAT", True), (older, "CONSENT_CHANNEL_WECHAT", False)}
