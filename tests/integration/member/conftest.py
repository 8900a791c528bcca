"""Member databases and a running member service for tests: real PostgreSQL and NATS, a hand-moved clock.

Each test gets its own database (copied from a migrated template) and its own durable
consumer name on the shared SALES stream, so journal entries of other tests only ever
arrive as anonymous facts at stores no member test looks at.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import identifiers_pb2, money_pb2
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.messaging import StreamSpec, ensure_stream
from servicekit.settings import load_settings, to_plain_url
from services.member.bootstrap import MemberApp, build
from services.member.migrate import VERSIONS
from services.member.settings import MemberSettings
from tests.conftest import Infra, create_database_from, run_in_fresh_loop, service_template
from tests.support.clock import HandClock
from tests.support.messaging import consumer_settled, jetstream

MessageT = TypeVar("MessageT", bound=Message)
HQ = identifiers_pb2.Actor(
    client_id="HQ-OPS01",
    client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
    staff_role=identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
)
LOOKUP_KEY = b"local-development-member-lookup-key-not-a-secret"


@pytest.fixture(scope="session")
def member_template(infra: Infra, kit_template: str) -> str:
    return service_template(infra, kit_template, VERSIONS)


@pytest.fixture
def member_url(infra: Infra, member_template: str) -> str:
    """A fresh member database whose member ids start at a random number: journal entries of other
    tests that name a member by id (the SALES stream is shared) then name nobody here."""
    url = create_database_from(infra, member_template)

    async def shift_ids() -> None:
        connection = await asyncpg.connect(to_plain_url(url))
        try:
            await connection.execute("SELECT setval('member_number', $1)", 1_000_000 + uuid.uuid4().int % 8_000_000)
        finally:
            await connection.close()

    run_in_fresh_loop(shift_ids)
    return url


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture
def member_settings(member_url: str, nats_url: str, unique: str) -> Callable[..., MemberSettings]:
    def settings(**overrides: Any) -> MemberSettings:
        values: dict[str, Any] = {
            "app_env": "test",
            "database_url": member_url,
            "nats_url": nats_url,
            "grpc_host": "127.0.0.1",
            "grpc_port": 0,
            "sales_consumer_durable": f"member-sales-{unique}",
            "member_review_seconds": 0,
        }
        return load_settings(MemberSettings, **(values | overrides))

    return settings


async def start_member_app(settings: MemberSettings, clock: Callable[[], datetime]) -> MemberApp:
    async with jetstream(settings.nats_url) as (_, js):
        await ensure_stream(js, StreamSpec("SALES", ["retail.sales.v1.>"]))  # the gateway's stream
    app = build(settings, clock=clock)
    await app.server.start()
    return app


@pytest.fixture
async def app(member_settings: Callable[..., MemberSettings], clock: HandClock) -> AsyncIterator[MemberApp]:
    app = await start_member_app(member_settings(), clock)
    yield app
    await app.server.stop()
    await app.close()


@pytest.fixture
async def stub(app: MemberApp) -> AsyncIterator[pb_grpc.MemberServiceAsyncStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        yield pb_grpc.MemberServiceStub(channel)  # type: ignore[no-untyped-call]


def request_id() -> str:
    return str(uuid.uuid4())


def identity(kind: str, value: str, app_id: str = "") -> pb.Identity:
    return pb.Identity(type=pb.IdentityType.Value(f"IDENTITY_TYPE_{kind.upper()}"), value=value, app_id=app_id)


def random_phone() -> str:
    return f"13{uuid.uuid4().int % 10**9:09d}"


async def register(
    stub: pb_grpc.MemberServiceAsyncStub,
    kind: str,
    value: str,
    *,
    app_id: str = "",
    channel: pb.Channel.ValueType = pb.CHANNEL_STORE,
    profile: pb.Profile | None = None,
    consents: Sequence[pb.ConsentChoice] = (),
    store_id: str = "S001",
) -> pb.RegisterMemberResponse:
    return await stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=request_id(),
            identity=identity(kind, value, app_id),
            profile=profile,
            consents=consents,
            channel=channel,
            store_id=store_id if channel == pb.CHANNEL_STORE else "",
            actor=HQ,
        ),
        timeout=10,
    )


async def link(
    stub: pb_grpc.MemberServiceAsyncStub,
    member_id: str,
    kind: str,
    value: str,
    *,
    app_id: str = "",
    survivor: str = "",
) -> pb.LinkIdentityResponse:
    return await stub.LinkIdentity(
        pb.LinkIdentityRequest(
            request_id=request_id(),
            member_id=member_id,
            identity=identity(kind, value, app_id),
            survivor_member_id=survivor,
            actor=HQ,
        ),
        timeout=10,
    )


async def clear_view(stub: pb_grpc.MemberServiceAsyncStub, member_id: str) -> pb.Member:
    answer = await stub.GetMember(
        pb.GetMemberRequest(member_id=member_id, view=pb.PERSONAL_DATA_VIEW_CLEAR, actor=HQ, purpose="test"), timeout=10
    )
    return answer.member


# ---- the journal --------------------------------------------------------------------------------


def journal_sale(
    *,
    store_id: str,
    lines: Sequence[tuple[str, int]],
    member: sales_pb2.MemberReference | None = None,
    sale_id: str | None = None,
    is_return: bool = False,
    original_sale_id: str = "",
    occurred_at: datetime | None = None,
    points_paid: int = 0,
) -> sales_pb2.SaleRecorded:
    """A SaleRecorded as the gateway journals it; ``lines`` are (sku, line total in fen)."""
    moment = Timestamp()
    moment.FromDatetime(occurred_at or datetime.now(UTC))
    total = sum(amount for _, amount in lines)
    payments = [
        sales_pb2.Payment(
            method=sales_pb2.PAYMENT_METHOD_WECHAT_PAY,
            amount=money_pb2.Money(currency_code="CNY", minor_units=total - points_paid),
        )
    ]
    if points_paid:
        payments.append(
            sales_pb2.Payment(
                method=sales_pb2.PAYMENT_METHOD_POINTS,
                amount=money_pb2.Money(currency_code="CNY", minor_units=points_paid),
            )
        )
    return sales_pb2.SaleRecorded(
        sale_id=sale_id or f"{store_id}-POS01-{uuid.uuid4().hex[:12]}",
        kind=sales_pb2.SALE_KIND_RETURN if is_return else sales_pb2.SALE_KIND_SALE,
        location_id=store_id,
        channel=sales_pb2.SALES_CHANNEL_STORE,
        occurred_at=moment,
        recorded_at=moment,
        lines=[
            sales_pb2.SaleLine(
                line_number=n,
                sku=sku,
                quantity=money_pb2.Decimal(value="1"),
                line_total=money_pb2.Money(currency_code="CNY", minor_units=amount),
            )
            for n, (sku, amount) in enumerate(lines, start=1)
        ],
        member=member,
        payments=payments,
        original_sale_id=original_sale_id,
        total=money_pb2.Money(currency_code="CNY", minor_units=total),
    )


def by_member_id(member_id: str) -> sales_pb2.MemberReference:
    return sales_pb2.MemberReference(type=sales_pb2.MEMBER_IDENTIFIER_TYPE_MEMBER_ID, member_id=member_id)


async def publish_sales(nats_url: str, sales: Sequence[sales_pb2.SaleRecorded]) -> None:
    """Journal sales the way the gateway does (subject, Nats-Msg-Id = sale id, event type header)."""
    async with jetstream(nats_url) as (_, js):
        for sale in sales:
            await js.publish(
                f"retail.sales.v1.sale_recorded.{sale.location_id}",
                sale.SerializeToString(),
                headers={"Nats-Msg-Id": sale.sale_id, "Retail-Event-Type": "retail.sales.v1.SaleRecorded"},
            )


async def settled(nats_url: str, durable: str) -> None:
    """Wait until the member consumer has handled everything in the journal (nothing pending or unacked)."""
    async with jetstream(nats_url) as (_, js):
        await consumer_settled(js, "SALES", durable, declared_later=True)  # declared once the service starts


async def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def outbox_messages(url: str, message_type: type[MessageT]) -> list[MessageT]:
    rows = await fetch(
        url, "SELECT payload FROM outbox WHERE event_type = $1 ORDER BY id", message_type.DESCRIPTOR.full_name
    )
    return [message_type.FromString(row["payload"]) for row in rows]


async def seed_categories(url: str, categories: dict[str, str]) -> None:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        await connection.executemany(
            "INSERT INTO item_category (sku, category_id, department_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [(sku, category, category[:3]) for sku, category in categories.items()],
        )
    finally:
        await connection.close()
