"""Points from the SALES journal: earned once per sale, reversed at most once per return, redeemed
never below zero (also under concurrency), expired oldest first; the balance always equals the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from retail.common.v1 import paging_pb2
from retail.member.v1 import events_pb2
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.identity_lookup import member_identity_hash
from services.member.bootstrap import MemberApp
from services.member.settings import MemberSettings
from tests.integration.member.conftest import (
    HQ,
    LOOKUP_KEY,
    by_member_id,
    fetch,
    journal_sale,
    outbox_messages,
    publish_sales,
    random_phone,
    register,
    request_id,
    seed_categories,
    settled,
    start_member_app,
)
from tests.support.clock import HandClock
from tests.support.grpc_status import refused
from tests.support.messaging import jetstream

if TYPE_CHECKING:
    Stub = pb_grpc.MemberServiceAsyncStub


@pytest.fixture
def durable(unique: str) -> str:
    return f"member-sales-{unique}"


@pytest.fixture
def store(unique: str) -> str:
    return f"T{unique}"


def by_phone(phone: str) -> sales_pb2.MemberReference:
    """As the gateway journals a phone number: its keyed hash only."""
    return sales_pb2.MemberReference(
        type=sales_pb2.MEMBER_IDENTIFIER_TYPE_PHONE, identity_hash=member_identity_hash(LOOKUP_KEY, "phone", phone)
    )


async def balance(stub: Stub, member_id: str) -> int:
    check = await stub.CheckPointsLedger(pb.CheckPointsLedgerRequest(member_id=member_id), timeout=5)
    assert check.consistent, check.problems
    return check.balance


async def redeem(stub: Stub, member_id: str, points: int) -> pb.RedeemPointsResponse:
    request = pb.RedeemPointsRequest(
        request_id=request_id(), member_id=member_id, points=points, reference="order-1", actor=HQ
    )
    return await stub.RedeemPoints(request, timeout=10)


async def test_a_sale_by_phone_hash_earns_by_amount_and_category_once(
    stub: Stub,
    member_url: str,
    member_settings: Callable[..., MemberSettings],
    nats_url: str,
    durable: str,
    store: str,
) -> None:
    phone = random_phone()
    member_id = (await register(stub, "phone", phone)).member_id
    await seed_categories(member_url, {"WINE": "C0901", "RICE": "C0101"})
    sale = journal_sale(
        store_id=store, lines=[("RICE", 12_345), ("WINE", 5_000), ("UNKNOWN", 99)], member=by_phone(f"+86 {phone}")
    )
    await publish_sales(nats_url, [sale, sale])  # the same sale twice (JetStream drops the copy anyway)
    await settled(nats_url, durable)
    assert await balance(stub, member_id) == 174  # floor(174.44 yuan × 1 point), basic tier
    (earned,) = await outbox_messages(member_url, events_pb2.PointsEarned)
    assert (earned.member_id, earned.points, earned.sale_id, earned.balance) == (member_id, 174, sale.sale_id, 174)
    facts = await fetch(member_url, "SELECT member_id, categories FROM sale_fact WHERE sale_id = $1", sale.sale_id)
    assert [(row["member_id"], sorted(row["categories"])) for row in facts] == [(member_id, ["C0101", "C0901"])]


async def test_returns_reverse_at_most_what_the_sale_earned_and_a_buy_redeem_return_loop_gains_nothing(
    stub: Stub, nats_url: str, durable: str, store: str, member_url: str
) -> None:
    member_id = (await register(stub, "phone", random_phone())).member_id
    sale = journal_sale(store_id=store, lines=[("A", 10_000)], member=by_member_id(member_id))  # 100 points
    await publish_sales(nats_url, [sale])
    await settled(nats_url, durable)
    assert (await redeem(stub, member_id, 100)).balance == 0
    returns = [
        journal_sale(store_id=store, lines=[("A", amount)], is_return=True, original_sale_id=sale.sale_id)
        for amount in (3_333, 3_333, 3_334, 5_000)
    ]
    await publish_sales(nats_url, returns)
    await settled(nats_url, durable)
    # The member kept the goods' worth of points they redeemed: now they owe them.
    assert await balance(stub, member_id) == -100
    reversed_points = [event.points for event in await outbox_messages(member_url, events_pb2.PointsReversed)]
    assert reversed_points == [34, 34, 32]  # rounded up, capped: exactly what the sale earned, never more
    await refused(redeem(stub, member_id, 1), grpc.StatusCode.FAILED_PRECONDITION, "insufficient-points")
    await publish_sales(nats_url, [journal_sale(store_id=store, lines=[("B", 15_000)], member=by_member_id(member_id))])
    await settled(nats_url, durable)
    assert await balance(stub, member_id) == 50  # the next earn paid the debt first


async def test_a_return_that_overtakes_its_sale_is_reversed_when_the_sale_arrives(
    stub: Stub, nats_url: str, durable: str, store: str
) -> None:
    member_id = (await register(stub, "phone", random_phone())).member_id
    sale = journal_sale(store_id=store, lines=[("A", 8_000)], member=by_member_id(member_id))
    refund = journal_sale(store_id=store, lines=[("A", 2_000)], is_return=True, original_sale_id=sale.sale_id)
    await publish_sales(nats_url, [refund, sale])
    await settled(nats_url, durable)
    assert await balance(stub, member_id) == 60


async def test_concurrent_redemptions_never_take_a_balance_below_zero(stub: Stub, member_url: str) -> None:
    member_id = (await register(stub, "phone", random_phone())).member_id
    for points in (40, 35, 25):  # three lots
        await stub.AdjustPoints(
            pb.AdjustPointsRequest(
                request_id=request_id(), member_id=member_id, points=points, reason="opening balance", actor=HQ
            )
        )

    outcomes = await asyncio.gather(*(redeem(stub, member_id, 7) for _ in range(40)), return_exceptions=True)
    refusals = [outcome for outcome in outcomes if isinstance(outcome, grpc.aio.AioRpcError)]
    assert len(outcomes) - len(refusals) == 14  # 14 × 7 = 98 of 100
    assert {refusal.code() for refusal in refusals} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert await balance(stub, member_id) == 2
    (row,) = await fetch(member_url, "SELECT min(remaining) AS low FROM points_lot")
    assert row["low"] >= 0


async def test_points_expire_oldest_first_and_a_redemption_never_spends_expired_points(
    app: MemberApp, stub: Stub, clock: HandClock, member_url: str
) -> None:
    member_id = (await register(stub, "phone", random_phone())).member_id

    async def grant(points: int) -> None:
        await stub.AdjustPoints(
            pb.AdjustPointsRequest(
                request_id=request_id(), member_id=member_id, points=points, reason="campaign", actor=HQ
            )
        )

    await grant(30)
    clock.advance(days=200)
    await grant(20)
    clock.advance(days=170)  # the first lot (365 days) is past its expiry, the second is not
    # 50 on the books, but 30 of them are past their expiry: they cannot be spent.
    await refused(redeem(stub, member_id, 21), grpc.StatusCode.FAILED_PRECONDITION, "insufficient-points")
    assert await app.services.points.expire_due() == 1
    assert await balance(stub, member_id) == 20
    assert (await redeem(stub, member_id, 20)).balance == 0
    await grant(5)
    clock.advance(days=366)
    assert await app.services.points.expire_due() == 1
    assert await balance(stub, member_id) == 0
    expired = await outbox_messages(member_url, events_pb2.PointsExpired)
    assert [(event.points, event.balance) for event in expired] == [(30, 20), (5, 0)]
    kinds = []
    page = paging_pb2.PageRequest(page_size=2)
    while True:
        points = await stub.GetPoints(pb.GetPointsRequest(member_id=member_id, page=page))
        kinds += [entry.kind for entry in points.entries]
        if not points.page_info.next_page_token:
            break
        page = paging_pb2.PageRequest(page_size=2, page_token=points.page_info.next_page_token)
    assert kinds == [
        pb.POINTS_ENTRY_KIND_EXPIRE,
        pb.POINTS_ENTRY_KIND_ADJUST,
        pb.POINTS_ENTRY_KIND_REDEEM,
        pb.POINTS_ENTRY_KIND_EXPIRE,
        pb.POINTS_ENTRY_KIND_ADJUST,
        pb.POINTS_ENTRY_KIND_ADJUST,
    ]


async def test_adjustments_need_a_reason_and_never_overdraw(stub: Stub) -> None:
    member_id = (await register(stub, "phone", random_phone())).member_id

    def adjustment(points: int, reason: str) -> Any:
        return stub.AdjustPoints(
            pb.AdjustPointsRequest(request_id=request_id(), member_id=member_id, points=points, reason=reason, actor=HQ)
        )

    await refused(adjustment(10, "  "), grpc.StatusCode.INVALID_ARGUMENT, "adjustment-reason-required")
    await refused(adjustment(0, "nothing"), grpc.StatusCode.INVALID_ARGUMENT, "invalid-points-amount")
    await adjustment(10, "missing receipt")
    await refused(adjustment(-11, "too much"), grpc.StatusCode.FAILED_PRECONDITION, "insufficient-points")
    await refused(redeem(stub, member_id, 0), grpc.StatusCode.INVALID_ARGUMENT, "invalid-points-amount")
    assert await balance(stub, member_id) == 10


async def test_replaying_the_sales_journal_twice_leaves_every_balance_unchanged(
    app: MemberApp,
    member_settings: Callable[..., MemberSettings],
    clock: HandClock,
    nats_url: str,
    durable: str,
    store: str,
    member_url: str,
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        first_stub = pb_grpc.MemberServiceStub(channel)  # type: ignore[no-untyped-call]
        phones = [random_phone() for _ in range(4)]
        members = [(await register(first_stub, "phone", phone)).member_id for phone in phones]
    sales = [
        journal_sale(store_id=store, lines=[("A", 1_000 * (n + 1))], member=by_phone(phones[n % 4])) for n in range(12)
    ]
    sales += [
        journal_sale(store_id=store, lines=[("A", 500)], is_return=True, original_sale_id=sales[n].sale_id)
        for n in (0, 5, 7)
    ]
    await publish_sales(nats_url, sales)
    await settled(nats_url, durable)

    async def ledger() -> list[tuple[str, int, int]]:
        query = (
            "SELECT m.member_id, m.points_balance, (SELECT count(*) FROM points_entry e "
            "WHERE e.member_id = m.member_id) AS entries FROM member m ORDER BY 1"
        )
        rows = await fetch(member_url, query)
        return [(row["member_id"], row["points_balance"], row["entries"]) for row in rows]

    first = await ledger()
    assert [member for member, points, _ in first if points > 0] == members
    await app.server.stop()
    await app.close()
    # Replay 1: the same durable consumer from the start (the inbox recognises every event).
    async with jetstream(nats_url) as (_, js):
        await js.delete_consumer("SALES", durable)
    for settings in (member_settings(), member_settings(sales_consumer_durable=f"{durable}-replay")):
        # Replay 2: a consumer of another name (no inbox rows): the sale ids alone keep it exactly-once.
        replay = await start_member_app(settings, clock)
        try:
            await settled(nats_url, settings.sales_consumer_durable)
        finally:
            await replay.server.stop()
            await replay.close()
        assert await ledger() == first
    facts = await fetch(member_url, "SELECT count(*) AS n FROM sale_fact WHERE store_id = $1", store)
    assert facts[0]["n"] == len(sales)
