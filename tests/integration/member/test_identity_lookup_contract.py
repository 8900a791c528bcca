"""Contract between the SALES journal and the member service: a sale the gateway journals with a
member reference finds that member, for every way a till may name one.

The gateway hashes a phone or member card into the journal and the member service stores the
same hash for each identity; both call :mod:`servicekit.identity_lookup`. This test runs the
gateway's own journal-entry building (with the gateway's lookup key setting) and the member
service's own SALES consumer, end to end over JetStream and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, get_args

import grpc
import pytest
from retail.member.v1 import member_service_pb2 as member_pb2
from retail.sales.v1 import events_pb2 as sales_pb2

from gateway.domain import sales as gateway_sales
from gateway.domain.clients import ClientKind
from gateway.pos.journal import journal_entry
from gateway.pos.schemas import MemberIn, SaleIn, SaleLineIn
from gateway.security.authentication import Principal
from gateway.settings import GatewaySettings
from servicekit import identity_lookup
from servicekit.settings import load_settings
from services.member.domain import identities
from tests.integration.member.conftest import fetch, publish_sales, random_phone, register, settled

if TYPE_CHECKING:
    from retail.member.v1.member_service_pb2_grpc import MemberServiceAsyncStub as Stub

GATEWAY = load_settings(GatewaySettings, app_env="test", database_url="postgresql://db/x", nats_url="nats://n:4222")

MemberKind = Literal["phone", "pos_card", "member_id"]  # what MemberIn.type accepts (asserted below)


@pytest.fixture
def durable(unique: str) -> str:
    return f"member-sales-{unique}"


@pytest.fixture
def store(unique: str) -> str:
    return f"T{unique}"


def spellings_of_a_phone(phone: str) -> list[str]:
    """What a till may send for one mainland mobile: +86 / 0086, spaces, dashes, brackets."""
    return [
        phone,
        f"+86{phone}",
        f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}",
        f"+86-{phone[:3]}-{phone[3:7]}-{phone[7:]}",
        f"0086 {phone}",
        f"86{phone}",
        f"{phone[:3]}-{phone[3:7]}-{phone[7:]}",
        f"({phone[:3]}) {phone[3:7]} {phone[7:]}",
    ]


def spellings_of_a_card(card: str) -> list[str]:
    """What a till may send for one member card: spaces, lower case, padding."""
    return [card, card.lower(), f"{card[:4]} {card[4:8]} {card[8:]}", f"  {card.lower()}  "]


def gateway_sale(sale_id: str, store: str, kind: MemberKind, value: str) -> sales_pb2.SaleRecorded:
    """The SaleRecorded exactly as the gateway journals it for a till's sale naming a member."""
    principal = Principal(store + "-POS01", ClientKind.POS_TERMINAL, frozenset(), store_id=store, terminal_id="POS01")
    sale = SaleIn(
        sale_id=sale_id,
        store_id=store,
        occurred_at=datetime.now(UTC),
        lines=[SaleLineIn(sku="RICE", quantity="1", unit_price="10.00")],
        member=MemberIn(type=kind, value=value),
    )
    entry = journal_entry(sale, principal, datetime.now(UTC), GATEWAY.member_lookup_key.get_secret_value())
    return sales_pb2.SaleRecorded.FromString(entry.payload)


def test_the_gateway_and_the_member_service_share_one_normalisation_and_hash() -> None:
    assert gateway_sales.member_identity_hash is identity_lookup.member_identity_hash
    key, spelling = b"k" * 32, "+86 138-0013-8000"
    assert identities.identity_hash(key, identities.parse_identity("phone", spelling)) == identity_lookup.lookup_hash(
        key, "phone", identity_lookup.normalise_phone(spelling)
    )


async def test_every_member_reference_the_gateway_journals_resolves_in_the_member_service(
    stub: Stub, member_url: str, nats_url: str, durable: str, store: str, unique: str
) -> None:
    phone, card = random_phone(), f"VIP{unique.upper()[:10]}0042"
    by_phone = (await register(stub, "phone", phone)).member_id
    by_card = (await register(stub, "pos_card", card)).member_id
    by_id = (await register(stub, "phone", random_phone())).member_id
    named: dict[MemberKind, list[str]] = {
        "phone": spellings_of_a_phone(phone),
        "pos_card": spellings_of_a_card(card),
        "member_id": [by_id],
    }
    assert set(named) == set(get_args(MemberIn.model_fields["type"].annotation))  # every kind the gateway accepts
    owner = {"phone": by_phone, "pos_card": by_card, "member_id": by_id}
    expected: dict[str, str] = {}
    sales = []
    for kind, values in named.items():
        for number, value in enumerate(values):
            sale = gateway_sale(f"{store}-{kind}-{number}", store, kind, value)
            sales.append(sale)
            expected[sale.sale_id] = owner[kind]
    await publish_sales(nats_url, sales)
    await settled(nats_url, durable)
    rows = await fetch(member_url, "SELECT sale_id, member_id FROM sale_fact WHERE store_id = $1", store)
    assert {row["sale_id"]: row["member_id"] for row in rows} == expected


async def test_another_context_finds_the_member_of_a_journal_lookup_hash_and_no_other(
    stub: Stub, store: str, unique: str
) -> None:
    phone, card = random_phone(), f"VIP{unique.upper()[:10]}0043"
    by_phone = (await register(stub, "phone", phone)).member_id
    by_card = (await register(stub, "pos_card", card)).member_id
    cases: list[tuple[MemberKind, list[str], str]] = [
        ("phone", spellings_of_a_phone(phone), by_phone),
        ("pos_card", spellings_of_a_card(card), by_card),
    ]
    for kind, values, owner in cases:
        for number, value in enumerate(values):
            reference = gateway_sale(f"{store}-{kind}-{number}", store, kind, value).member
            found = await stub.FindMemberByLookupHash(
                member_pb2.FindMemberByLookupHashRequest(identity_hash=reference.identity_hash), timeout=5
            )
            assert found.member_id == owner
    stranger = gateway_sale(f"{store}-stranger", store, "phone", random_phone()).member
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.FindMemberByLookupHash(
            member_pb2.FindMemberByLookupHashRequest(identity_hash=stranger.identity_hash), timeout=5
        )
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await stub.FindMemberByLookupHash(member_pb2.FindMemberByLookupHashRequest(identity_hash=b"short"), timeout=5)
    assert malformed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
