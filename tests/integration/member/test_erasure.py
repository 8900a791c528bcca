"""Erasure (PIPL): after it, the member database holds no clear or sealed personal datum and no
identity hash of the member, in any table; only anonymous aggregates remain."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
from retail.member.v1 import events_pb2
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc

from servicekit.settings import to_plain_url
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
from tests.support.clock import HandClock
from tests.support.grpc_status import refused

if TYPE_CHECKING:
    Stub = pb_grpc.MemberServiceAsyncStub


async def database_text(url: str) -> str:
    """Every value of every column of every table, as text (bytea as hex), in one string."""
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        columns = await connection.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        )
        assert {row["table_name"] for row in columns} >= {
            "member",
            "member_identity",
            "member_merge",
            "outbox",
            "request_log",
            "consent_event",
            "personal_data_access",
        }
        parts: list[str] = []
        for column in columns:
            name = f'"{column["table_name"]}"."{column["column_name"]}"'
            expression = f"encode({name}, 'hex')" if column["data_type"] == "bytea" else f"{name}::text"
            values = await connection.fetch(f'SELECT {expression} AS v FROM "{column["table_name"]}"')
            parts.extend(str(row["v"]) for row in values if row["v"] is not None)
        return "\n".join(parts)
    finally:
        await connection.close()


def needles_of(values: list[str], blobs: list[bytes]) -> list[str]:
    """What must not be found: each clear value as text and as UTF-8 hex, each blob as hex."""
    return [*values, *(value.encode().hex() for value in values), *(bytes(blob).hex() for blob in blobs)]


async def test_after_erasure_no_personal_datum_of_the_member_remains_anywhere(
    stub: Stub, member_url: str, clock: HandClock
) -> None:
    phone, card, email = random_phone(), "886" + str(uuid.uuid4().int)[:13], f"z{uuid.uuid4().hex[:8]}@example.com"
    unionid, openid = "oUnion" + uuid.uuid4().hex[:20], "oOpen" + uuid.uuid4().hex[:20]
    name, street = "欧阳娜娜", f"南京西路 {uuid.uuid4().int % 1000} 号"
    member_id = (
        await register(
            stub,
            "phone",
            phone,
            channel=pb.CHANNEL_APP,
            profile=pb.Profile(
                name=name,
                birthday="1988-12-24",
                address=pb.Address(province="上海市", city="上海市", street=street),
                gender=pb.GENDER_FEMALE,
                preferences={"diet": "低糖"},
            ),
            consents=[pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_SMS, granted=True)],
        )
    ).member_id
    clock.advance(days=1)
    # A second record of the same person, merged into the first: its data must go too.
    duplicate = (await register(stub, "pos_card", card, profile=pb.Profile(name=name + "2"))).member_id
    merge = await link(stub, member_id, "pos_card", card)
    assert merge.merged
    for kind, value, app_id in [
        ("email", email, ""),
        ("wechat_unionid", unionid, ""),
        ("wechat_openid", openid, "wx0123456789abcdef"),
    ]:
        await link(stub, member_id, kind, value, app_id=app_id)
    await stub.UpdateMember(
        pb.UpdateMemberRequest(
            request_id=request_id(), member_id=member_id, tags=pb.TagsUpdate(add=["expecting-baby"]), actor=HQ
        )
    )
    await stub.AdjustPoints(
        pb.AdjustPointsRequest(
            request_id=request_id(), member_id=member_id, points=50, reason=f"complaint about {street}", actor=HQ
        )
    )
    assert (await clear_view(stub, member_id)).contact.phone == phone  # an audited clear view
    await register(stub, "phone", random_phone(), profile=pb.Profile(name="路人甲"))
    sealed = await fetch(
        member_url,
        "SELECT name_sealed, birthday_sealed, address_sealed FROM member WHERE member_id = ANY($1)",
        [member_id, duplicate],
    )
    identities = await fetch(
        member_url, "SELECT identity_hash, value_sealed FROM member_identity WHERE member_id = $1", member_id
    )
    assert len(identities) == 5
    blobs = [value for row in sealed for value in row.values() if value is not None]
    blobs += [row[column] for row in identities for column in ("identity_hash", "value_sealed")]
    needles = needles_of(
        [phone, card, email, unionid, openid, name, street, "1988-12-24", "低糖", "expecting-baby"], blobs
    )
    before = await database_text(member_url)
    assert all(bytes(blob).hex() in before for blob in blobs)  # the scan sees what is there
    assert phone not in before  # sealed, never clear
    assert phone.encode().hex() not in before

    erased = await stub.EraseMember(
        pb.EraseMemberRequest(request_id=request_id(), member_id=member_id, reason="ticket PIPL-2026-0042", actor=HQ)
    )

    assert list(erased.also_erased_member_ids) == [duplicate]
    after = await database_text(member_url)
    found = [needle for needle in needles if needle in after]
    assert found == [], f"personal data left after erasure: {found}"
    bystander = (await fetch(member_url, "SELECT identity_hash FROM member_identity"))[0]["identity_hash"]
    assert bystander.hex() in after  # other members are untouched
    # Only anonymous aggregates remain: the member id with its tier, points ledger amounts and facts.
    (row,) = await fetch(member_url, "SELECT status, points_balance, tier FROM member WHERE member_id = $1", member_id)
    assert (row["status"], row["points_balance"], row["tier"]) == ("erased", 50, "basic")
    await refused(stub.GetMember(pb.GetMemberRequest(member_id=member_id)), grpc.StatusCode.NOT_FOUND, "member-erased")
    await refused(
        stub.ResolveMember(pb.ResolveMemberRequest(identity=identity("phone", phone))),
        grpc.StatusCode.NOT_FOUND,
        "identity-not-found",
    )
    again = await stub.EraseMember(pb.EraseMemberRequest(request_id=request_id(), member_id=member_id, actor=HQ))
    assert again.erased_at == erased.erased_at
    assert {event.member_id for event in await outbox_messages(member_url, events_pb2.MemberErased)} == {
        member_id,
        duplicate,
    }
    fresh = await register(stub, "phone", phone)  # the phone may join again, as a new member
    assert fresh.created
    assert fresh.member_id != member_id
    await refused(undo_of(stub, merge.merge.merge_id), grpc.StatusCode.FAILED_PRECONDITION, "merged-member-erased")


def undo_of(stub: Stub, merge_id: str) -> Any:
    return stub.UndoMerge(pb.UndoMergeRequest(request_id=request_id(), merge_id=merge_id, actor=HQ))
