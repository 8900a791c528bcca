"""A legacy CRM's members and purchases, imported once per external id, never as points."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import money_pb2
from retail.member.v1 import events_pb2
from retail.member.v1 import member_service_pb2 as pb

from tests.integration.member.conftest import (
    HQ,
    fetch,
    identity,
    outbox_messages,
    random_phone,
    register,
    request_id,
    seed_categories,
)

if TYPE_CHECKING:
    from retail.member.v1.member_service_pb2_grpc import MemberServiceAsyncStub as Stub


def stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


def cny(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="CNY", minor_units=fen)


def purchase(days_ago: int, fen: int, *, store_id: str = "S001", sku: str = "") -> pb.ImportedPurchase:
    lines = [pb.ImportedPurchaseLine(sku=sku, quantity=money_pb2.Decimal(value="2"), amount=cny(fen))] if sku else []
    return pb.ImportedPurchase(
        occurred_at=stamp(datetime.now(UTC) - timedelta(days=days_ago)), amount=cny(fen), store_id=store_id, lines=lines
    )


def legacy(
    external_id: str,
    phone: str,
    *purchases: pb.ImportedPurchase,
    profile: pb.Profile | None = None,
    consents: tuple[pb.ConsentChoice, ...] = (),
    store_id: str = "",
) -> pb.ImportedMember:
    return pb.ImportedMember(
        external_id=external_id,
        identities=[identity("phone", phone)],
        purchases=list(purchases),
        profile=profile,
        consents=consents,
        store_id=store_id,
    )


def outcome(answer: pb.ImportMembersResponse) -> dict[str, tuple[str, str]]:
    """external_id → (status, member_id or reason), of each external id's first result."""
    statuses: dict[str, tuple[str, str]] = {}
    for result in answer.results:
        statuses.setdefault(
            result.external_id, (pb.ImportStatus.Name(result.status), result.reason or result.member_id)
        )
    return statuses


async def test_an_import_creates_links_rejects_and_answers_each_member(stub: Stub, member_url: str) -> None:
    await seed_categories(member_url, {"SKU-TEA": "tea"})
    source = uuid.uuid4().hex[:8]
    known_phone, phones = random_phone(), [random_phone() for _ in range(3)]
    known = (await register(stub, "phone", known_phone)).member_id
    request = pb.ImportMembersRequest(
        request_id=request_id(),
        actor=HQ,
        members=[
            legacy(
                f"{source}-1",
                phones[0],
                purchase(400, 12_000, sku="SKU-TEA"),
                purchase(30, 5_000),
                consents=(pb.ConsentChoice(channel=pb.CONSENT_CHANNEL_SMS, granted=True),),
                profile=pb.Profile(name="王小明", gender=pb.GENDER_MALE),
                store_id="S001",
            ),
            legacy(f"{source}-2", phones[1]),
            legacy(f"{source}-3", known_phone, purchase(90, 3_000, store_id="")),
            pb.ImportedMember(external_id=f"{source}-4", identities=[identity("phone", "12345")]),
            legacy(f"{source}-5", phones[2], purchase(-3, 100)),  # in the future
            legacy(f"{source}-2", random_phone()),  # the same external id twice
            legacy("", random_phone()),
        ],
    )
    answer = await stub.ImportMembers(request, timeout=30)
    statuses = outcome(answer)
    assert [result.external_id for result in answer.results] == [member.external_id for member in request.members]
    created = {external: member_id for external, (status, member_id) in statuses.items() if status.endswith("CREATED")}
    assert set(created) == {f"{source}-1", f"{source}-2"}
    assert statuses[f"{source}-3"] == ("IMPORT_STATUS_EXISTING", known)
    assert statuses[f"{source}-4"] == ("IMPORT_STATUS_REJECTED", "invalid-phone")
    assert statuses[f"{source}-5"] == ("IMPORT_STATUS_REJECTED", "purchase-in-future")
    assert answer.results[5].reason == "duplicate-external-id"
    assert answer.results[5].member_id == ""
    assert answer.results[6].reason == "invalid-external-id"
    assert [result.purchases_imported for result in answer.results[:3]] == [2, 0, 1]

    # The same request again answers the same and changes nothing.
    assert await stub.ImportMembers(request, timeout=30) == answer
    # A later import of the same external ids answers their members: nothing is created or kept again.
    again = await stub.ImportMembers(
        pb.ImportMembersRequest(
            request_id=request_id(),
            actor=HQ,
            members=[
                legacy(f"{source}-1", random_phone(), purchase(10, 999)),
                legacy(f"{source}-3", known_phone, purchase(90, 3_000)),
            ],
        ),
        timeout=30,
    )
    assert outcome(again) == {
        f"{source}-1": ("IMPORT_STATUS_EXISTING", created[f"{source}-1"]),
        f"{source}-3": ("IMPORT_STATUS_EXISTING", known),
    }
    assert [result.purchases_imported for result in again.results] == [0, 0]

    member_ids = [created[f"{source}-1"], created[f"{source}-2"], known]
    assert len(await fetch(member_url, "SELECT 1 FROM member")) == 3
    facts = await fetch(
        member_url,
        "SELECT sale_id, member_id, amount_minor, categories, imported, points FROM sale_fact "
        "WHERE member_id IS NOT NULL ORDER BY sale_id",  # the shared journal's other sales name nobody here
    )
    assert [(f["sale_id"], f["member_id"], f["amount_minor"], f["imported"], f["points"]) for f in facts] == [
        (f"import:{source}-1:1", member_ids[0], 12_000, True, 0),
        (f"import:{source}-1:2", member_ids[0], 5_000, True, 0),
        (f"import:{source}-3:1", known, 3_000, True, 0),
    ]
    assert facts[0]["categories"] == ["tea"]
    # Never points: no ledger entry, no balance.
    assert await fetch(member_url, "SELECT 1 FROM points_entry") == []
    assert {row["points_balance"] for row in await fetch(member_url, "SELECT points_balance FROM member")} == {0}
    # The purchases count for the member's lifecycle and profile, and the legacy member is one since its first.
    view = (await stub.GetMember(pb.GetMemberRequest(member_id=member_ids[0], actor=HQ), timeout=10)).member
    assert view.lifecycle_stage == pb.LIFECYCLE_STAGE_ACTIVE
    assert (view.purchases.lifetime_purchases, view.purchases.lifetime_spend.minor_units) == (2, 17_000)
    assert (view.tier.tier, view.tier.qualifying_spend.minor_units) == (pb.MEMBER_TIER_BASIC, 0)  # never tier spend
    assert view.registered_at.ToDatetime(tzinfo=UTC) < datetime.now(UTC) - timedelta(days=399)
    assert [c.channel for c in view.consents if c.granted] == [pb.CONSENT_CHANNEL_SMS]

    # Other contexts learn them: a registration per created member, its consent, and the purchases.
    registered = await outbox_messages(member_url, events_pb2.MemberRegistered)
    assert sorted(m.member_id for m in registered) == sorted([known, *created.values()])
    consents = await outbox_messages(member_url, events_pb2.ConsentChanged)
    assert [(m.member_id, m.channel, m.granted) for m in consents] == [(member_ids[0], pb.CONSENT_CHANNEL_SMS, True)]
    imported = await outbox_messages(member_url, events_pb2.PurchasesImported)
    assert [(m.member_id, [p.purchase_id for p in m.purchases]) for m in imported] == [
        (member_ids[0], [f"import:{source}-1:1", f"import:{source}-1:2"]),
        (known, [f"import:{source}-3:1"]),
    ]
    first = imported[0].purchases[0]
    assert (first.amount.minor_units, first.store_id) == (12_000, "S001")
    assert [(line.sku, line.quantity.value, line.amount.minor_units) for line in first.lines] == [
        ("SKU-TEA", "2", 12_000)
    ]
    assert await outbox_messages(member_url, events_pb2.PointsEarned) == []


async def test_identities_of_two_members_are_rejected_and_create_nobody(stub: Stub, member_url: str) -> None:
    first, second = random_phone(), random_phone()
    a = (await register(stub, "phone", first)).member_id
    b = (await register(stub, "phone", second)).member_id
    assert a != b
    answer = await stub.ImportMembers(
        pb.ImportMembersRequest(
            request_id=request_id(),
            actor=HQ,
            members=[
                pb.ImportedMember(external_id="X-1", identities=[identity("phone", first), identity("phone", second)]),
                pb.ImportedMember(external_id="X-2", identities=[]),
                pb.ImportedMember(
                    external_id="X-3",
                    identities=[identity("phone", first), identity("email", "legacy@example.com")],
                ),
            ],
        ),
        timeout=30,
    )
    assert outcome(answer) == {
        "X-1": ("IMPORT_STATUS_REJECTED", "identities-of-different-members"),
        "X-2": ("IMPORT_STATUS_REJECTED", "identity-missing"),
        "X-3": ("IMPORT_STATUS_EXISTING", a),
    }
    # The new identity of a linked member is theirs from now on: registering with it finds them.
    found = await stub.ResolveMember(
        pb.ResolveMemberRequest(identity=identity("email", "legacy@example.com")), timeout=10
    )
    assert found.member_id == a
    assert len(await fetch(member_url, "SELECT 1 FROM member")) == 2
    assert [row["external_id"] for row in await fetch(member_url, "SELECT external_id FROM member_import")] == ["X-3"]


async def test_an_empty_or_oversized_import_is_refused_whole(stub: Stub) -> None:
    for members in ([], [legacy(f"E-{n}", random_phone()) for n in range(1001)]):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ImportMembers(
                pb.ImportMembersRequest(request_id=request_id(), actor=HQ, members=members), timeout=30
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
