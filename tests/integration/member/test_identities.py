"""One member per identity: registration, resolution, linking, views by role, and what is stored."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import grpc
from retail.common.v1 import identifiers_pb2
from retail.member.v1 import events_pb2
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc

from services.member.bootstrap import MemberApp
from tests.integration.member.conftest import (
    HQ,
    clear_view,
    fetch,
    identity,
    link,
    outbox_messages,
    random_phone,
    register,
    request_id,
)
from tests.support.grpc_status import refused

if TYPE_CHECKING:
    Stub = pb_grpc.MemberServiceAsyncStub

APP_ID = "wx0123456789abcdef"


async def test_registering_again_with_a_known_identity_returns_the_same_member_unchanged(stub: Stub) -> None:
    phone = random_phone()
    first = await register(stub, "phone", phone, profile=pb.Profile(name="王小明"))
    again = await register(stub, "phone", f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}", profile=pb.Profile(name="X"))
    assert first.created
    assert not again.created
    assert again.member_id == first.member_id
    assert (await clear_view(stub, first.member_id)).contact.name == "王小明"


async def test_a_retried_registration_answers_what_the_first_one_did(stub: Stub, member_url: str) -> None:
    request = pb.RegisterMemberRequest(
        request_id=request_id(),
        identity=identity("pos_card", "8860000000001234"),
        channel=pb.CHANNEL_STORE,
        store_id="S001",
        actor=HQ,
    )
    answers = await asyncio.gather(*(stub.RegisterMember(request, timeout=10) for _ in range(3)))
    assert {(a.member_id, a.created) for a in answers} == {(answers[0].member_id, True)}
    assert len(await fetch(member_url, "SELECT 1 FROM member")) == 1


async def test_concurrent_registrations_with_one_identity_make_one_member(stub: Stub, member_url: str) -> None:
    phone = random_phone()
    answers = await asyncio.gather(*(register(stub, "phone", phone) for _ in range(8)))
    assert len({answer.member_id for answer in answers}) == 1
    assert sum(answer.created for answer in answers) == 1
    assert len(await fetch(member_url, "SELECT 1 FROM member_identity")) == 1


async def test_every_identity_type_resolves_to_its_one_member(stub: Stub) -> None:
    phone = random_phone()
    member_id = (await register(stub, "phone", phone)).member_id
    others = [
        ("wechat_unionid", "oUnion" + uuid.uuid4().hex[:20], ""),
        ("wechat_openid", "oOpen" + uuid.uuid4().hex[:20], APP_ID),
        ("app_user_id", "10" + uuid.uuid4().hex[:10], ""),
        ("pos_card", "886" + str(uuid.uuid4().int)[:13], ""),
        ("email", f"Shopper.{uuid.uuid4().hex[:6]}@Example.COM", ""),
    ]
    for kind, value, app_id in others:
        assert not (await link(stub, member_id, kind, value, app_id=app_id)).merged
    for kind, value, app_id in [("phone", f"0086{phone}", ""), *others]:
        if kind == "email":
            value = value.lower()
        answer = await stub.ResolveMember(pb.ResolveMemberRequest(identity=identity(kind, value, app_id)), timeout=5)
        assert answer.member_id == member_id, kind
    # An openid belongs to one WeChat app: the same openid in another app is someone else.
    openid = others[1][1]
    await refused(
        stub.ResolveMember(pb.ResolveMemberRequest(identity=identity("wechat_openid", openid, "wx" + "f" * 16))),
        grpc.StatusCode.NOT_FOUND,
        "identity-not-found",
    )


async def test_bad_identities_are_refused_precisely_and_change_nothing(stub: Stub, member_url: str) -> None:
    cases = [
        (identity("phone", "1380013800"), "invalid-phone"),  # ten digits
        (identity("phone", "23800138000"), "invalid-phone"),  # not a mobile prefix
        (identity("phone", "138-0013-800O"), "invalid-phone"),  # a letter O
        (pb.Identity(type=99, value="x"), "unknown-identity-type"),  # type: ignore[arg-type]
        (pb.Identity(value="13800138000"), "unknown-identity-type"),
        (identity("wechat_openid", "oOpen" + "a" * 20), "app-id-missing"),
        (identity("wechat_openid", "oOpen" + "a" * 20, "wxNOTHEX"), "invalid-app-id"),
        (identity("email", "not-an-address"), "invalid-email"),
        (identity("pos_card", "12"), "invalid-pos-card"),
    ]
    for bad, reason in cases:
        request = pb.RegisterMemberRequest(request_id=request_id(), identity=bad, channel=pb.CHANNEL_APP, actor=HQ)
        message = await refused(stub.RegisterMember(request, timeout=5), grpc.StatusCode.INVALID_ARGUMENT, reason)
        assert bad.value[3:] not in message or len(bad.value) < 4  # the value is not echoed back
    assert await fetch(member_url, "SELECT 1 FROM member") == []


async def test_linking_an_identity_the_member_already_owns_is_refused(stub: Stub) -> None:
    phone = random_phone()
    member_id = (await register(stub, "phone", phone)).member_id
    await refused(link(stub, member_id, "phone", phone), grpc.StatusCode.ALREADY_EXISTS, "identity-already-linked")
    await refused(link(stub, "M12", "phone", random_phone()), grpc.StatusCode.INVALID_ARGUMENT, "invalid-member-id")
    await refused(link(stub, "M9999999", "phone", random_phone()), grpc.StatusCode.NOT_FOUND, "member-not-found")


async def test_views_mask_by_role_and_every_clear_view_is_audited(stub: Stub, member_url: str) -> None:
    phone = random_phone()
    profile = pb.Profile(
        name="李静怡",
        birthday="1990-06-15",
        gender=pb.GENDER_FEMALE,
        preferences={"diet": "素食"},
        address=pb.Address(province="上海市", city="上海市", district="徐汇区", street="漕溪北路 88 号"),
    )
    member_id = (await register(stub, "phone", phone, profile=profile, channel=pb.CHANNEL_APP)).member_id

    async def view(kind: int, **extra: object) -> pb.Member:
        answer = await stub.GetMember(pb.GetMemberRequest(member_id=member_id, view=kind, **extra), timeout=5)  # type: ignore[arg-type]
        return answer.member

    masked = await view(pb.PERSONAL_DATA_VIEW_UNSPECIFIED)
    assert (masked.contact.name, masked.contact.phone, masked.contact.birthday) == (
        "李**",
        f"{phone[:3]}****{phone[-4:]}",
        "****-06-15",
    )
    assert (masked.contact.address.city, masked.contact.address.street) == ("上海市", "")
    guide = await view(pb.PERSONAL_DATA_VIEW_NONE)
    assert not guide.HasField("contact")
    assert [(i.type, i.value) for i in guide.identities] == [(pb.IDENTITY_TYPE_PHONE, "")]
    assert (guide.preferences["diet"], guide.tier.tier) == ("素食", pb.MEMBER_TIER_BASIC)
    assert phone[-4:] not in str(guide)
    await refused(view(pb.PERSONAL_DATA_VIEW_CLEAR, actor=HQ), grpc.StatusCode.INVALID_ARGUMENT, "purpose-missing")
    assert await fetch(member_url, "SELECT 1 FROM personal_data_access") == []
    clear = await view(pb.PERSONAL_DATA_VIEW_CLEAR, actor=HQ, purpose="customer complaint 4711")
    assert (clear.contact.name, clear.contact.phone, clear.contact.address.street) == (
        "李静怡",
        phone,
        "漕溪北路 88 号",
    )
    (audit,) = await fetch(member_url, "SELECT * FROM personal_data_access")
    assert (audit["member_id"], audit["client_id"], audit["staff_role"], audit["purpose"]) == (
        member_id,
        "HQ-OPS01",
        "headquarters",
        "customer complaint 4711",
    )
    assert {"name", "phone", "birthday", "address"} <= set(audit["fields"])


async def test_personal_data_is_stored_only_sealed_and_events_carry_none(stub: Stub, member_url: str) -> None:
    phone, name = random_phone(), "赵子轩"
    member_id = (await register(stub, "phone", phone, profile=pb.Profile(name=name))).member_id
    dump = await fetch(member_url, "SELECT row_to_json(m)::text AS row FROM member m")
    dump += await fetch(member_url, "SELECT row_to_json(i)::text AS row FROM member_identity i")
    dump += await fetch(member_url, "SELECT encode(payload, 'escape') AS row FROM outbox")
    assert all(phone not in row["row"] and name not in row["row"] for row in dump)
    (registered,) = await outbox_messages(member_url, events_pb2.MemberRegistered)
    assert (registered.member_id, registered.identity_type) == (member_id, pb.IDENTITY_TYPE_PHONE)


async def test_commands_on_an_unknown_or_malformed_member_id_are_precise(stub: Stub) -> None:
    await refused(
        stub.GetMember(pb.GetMemberRequest(member_id="12345")), grpc.StatusCode.INVALID_ARGUMENT, "invalid-member-id"
    )
    await refused(
        stub.GetMember(pb.GetMemberRequest(member_id="M0000042")), grpc.StatusCode.NOT_FOUND, "member-not-found"
    )
    await refused(
        stub.UpdateMember(
            pb.UpdateMemberRequest(
                request_id=request_id(), member_id="M0000042", tags=pb.TagsUpdate(add=["vip"]), actor=HQ
            )
        ),
        grpc.StatusCode.NOT_FOUND,
        "member-not-found",
    )


async def test_profile_consent_and_tags_change_with_history(stub: Stub, member_url: str) -> None:
    member_id = (
        await register(
            stub, "phone", random_phone(), consents=[pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_SMS, granted=True)]
        )
    ).member_id
    update = pb.UpdateMemberRequest(
        request_id=request_id(),
        member_id=member_id,
        profile=pb.ProfileUpdate(name="周杰", birthday="1985-02-03"),
        tags=pb.TagsUpdate(add=["wine-lover", "vip"]),
        preferences=pb.PreferencesUpdate(set={"brand": "光明"}),
        consents=[
            pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_SMS, granted=False),
            pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_WECHAT, granted=True),
        ],
        actor=identifiers_pb2.Actor(client_id="APP-BACKEND", client_kind=identifiers_pb2.CLIENT_KIND_APP),
    )
    changed = await stub.UpdateMember(update, timeout=5)
    assert sorted(changed.changed) == ["birthday", "consent.sms", "consent.wechat", "name", "preferences", "tags"]
    member = await clear_view(stub, member_id)
    assert (member.contact.name, member.contact.birthday, list(member.tags)) == (
        "周杰",
        "1985-02-03",
        ["vip", "wine-lover"],
    )
    assert [(c.channel, c.granted, c.source) for c in member.consents] == [
        (pb.CONSENT_CHANNEL_SMS, False, "APP-BACKEND"),
        (pb.CONSENT_CHANNEL_WECHAT, True, "APP-BACKEND"),
    ]
    history = await fetch(member_url, "SELECT channel, granted FROM consent_event ORDER BY id")
    assert [(row["channel"], row["granted"]) for row in history] == [("sms", True), ("sms", False), ("wechat", True)]
    cleared = await stub.UpdateMember(
        pb.UpdateMemberRequest(
            request_id=request_id(),
            member_id=member_id,
            profile=pb.ProfileUpdate(clear_fields=[pb.PROFILE_FIELD_NAME]),
            actor=HQ,
        ),
        timeout=5,
    )
    assert list(cleared.changed) == ["name"]
    assert (await clear_view(stub, member_id)).contact.name == ""
    await refused(
        stub.UpdateMember(pb.UpdateMemberRequest(request_id=request_id(), member_id=member_id, actor=HQ)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "nothing-to-change",
    )
    await refused(
        stub.UpdateMember(
            pb.UpdateMemberRequest(
                request_id=request_id(), member_id=member_id, profile=pb.ProfileUpdate(birthday="2999-01-01"), actor=HQ
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid-birthday",
    )


async def test_a_member_id_sequence_continues_after_loaded_members(app: MemberApp, stub: Stub) -> None:
    first = await register(stub, "phone", random_phone())
    second = await register(stub, "phone", random_phone())
    assert int(second.member_id[1:]) == int(first.member_id[1:]) + 1


async def test_resolving_many_answers_each_identity_as_resolving_it_alone_would(stub: Stub) -> None:
    phone, card = random_phone(), "886" + str(uuid.uuid4().int)[:13]
    member_id = (await register(stub, "phone", phone)).member_id
    other_id = (await register(stub, "pos_card", card)).member_id
    asked = [
        identity("phone", f"+86 {phone}"),
        identity("email", f"nobody.{uuid.uuid4().hex[:6]}@example.com"),
        identity("phone", "1380013800"),  # ten digits
        identity("pos_card", card),
        pb.Identity(value="13800138000"),  # no type
        identity("phone", phone),  # the same member asked twice
    ]

    answer = await stub.ResolveMembers(pb.ResolveMembersRequest(identities=asked), timeout=5)

    outcomes = [
        (r.refusal.code, r.refusal.reason) if r.HasField("refusal") else r.member_id for r in answer.resolutions
    ]
    assert outcomes == [
        member_id,
        (grpc.StatusCode.NOT_FOUND.value[0], "identity-not-found"),
        (grpc.StatusCode.INVALID_ARGUMENT.value[0], "invalid-phone"),
        other_id,
        (grpc.StatusCode.INVALID_ARGUMENT.value[0], "unknown-identity-type"),
        member_id,
    ]
    # Each refusal is the one the unary call answers.
    for asked_alone, resolution in zip(asked, answer.resolutions, strict=True):
        if resolution.HasField("refusal"):
            await refused(
                stub.ResolveMember(pb.ResolveMemberRequest(identity=asked_alone)),
                next(c for c in grpc.StatusCode if c.value[0] == resolution.refusal.code),
                resolution.refusal.reason,
            )
    too_many = pb.ResolveMembersRequest(identities=[identity("phone", phone)] * 501)
    await refused(stub.ResolveMembers(too_many), grpc.StatusCode.INVALID_ARGUMENT, "invalid-argument")
