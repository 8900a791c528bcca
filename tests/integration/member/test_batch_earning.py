"""Sales applied a fetched batch at a time (SalesJournal.apply_sales, set-based) leave what applying them one
by one leaves; repeated deliveries, two replicas on one durable and a kill -9 mid-batch earn each sale once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from retail.member.v1 import member_service_pb2_grpc as pb_grpc
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.consumer import InboundEvent
from servicekit.identity_lookup import member_identity_hash
from servicekit.messaging import StreamSpec, ensure_stream
from servicekit.outbox import OCCURRED_AT_HEADER
from services.member.bootstrap import MemberApp
from services.member.entrypoints.wire import map_sale
from services.member.service_layer.journal_sales import JournalSale
from services.member.settings import MemberSettings
from tests.integration.member.conftest import (
    LOOKUP_KEY,
    by_member_id,
    fetch,
    journal_sale,
    link,
    random_phone,
    register,
    settled,
    start_member_app,
)
from tests.support.clock import HandClock
from tests.support.messaging import jetstream
from tests.support.processes import ServiceProcess, serving

SALE_TYPE = sales_pb2.SaleRecorded.DESCRIPTOR.full_name

if TYPE_CHECKING:
    Stub = pb_grpc.MemberServiceAsyncStub


def by_phone(phone: str) -> sales_pb2.MemberReference:
    return sales_pb2.MemberReference(
        type=sales_pb2.MEMBER_IDENTIFIER_TYPE_PHONE, identity_hash=member_identity_hash(LOOKUP_KEY, "phone", phone)
    )


def mapped(sale: sales_pb2.SaleRecorded) -> JournalSale:
    event = InboundEvent(
        event_id=sale.sale_id,
        subject=f"retail.sales.v1.sale_recorded.{sale.location_id}",
        event_type="retail.sales.v1.SaleRecorded",
        message=sale,
        occurred_at=None,
        attempt=1,
        headers={OCCURRED_AT_HEADER: ""},
    )
    return map_sale(event)


async def member_journal(stub: Stub, clock: HandClock, store: str, tag: str) -> tuple[list[str], list[JournalSale]]:
    """Five members (the fifth merged into the fourth) and a journal touching every path of the consumer:
    a member's sales crossing a tier threshold within the batch, a partial return, a return that
    overtakes its sale, a sale by member id, one naming nobody, one by the merged member's id, a repeat."""
    phones = [random_phone() for _ in range(5)]
    members = [(await register(stub, "phone", phone)).member_id for phone in phones]
    await link(stub, members[3], "phone", phones[4])  # the fifth is absorbed by the fourth
    at = clock.now - timedelta(minutes=30)

    def sale(name: str, lines: list[tuple[str, int]], member: sales_pb2.MemberReference | None, **more: Any) -> Any:
        minutes = len(journal)
        return journal_sale(
            store_id=store,
            lines=lines,
            member=member,
            sale_id=f"{store}-{tag}-{name}",
            occurred_at=at + timedelta(minutes=minutes),
            **more,
        )

    journal: list[sales_pb2.SaleRecorded] = []
    entries: list[tuple[str, list[tuple[str, int]], sales_pb2.MemberReference | None, dict[str, Any]]] = [
        ("s1", [("SKU-A", 150_000)], by_phone(phones[0]), {}),
        ("s2", [("SKU-A", 60_000), ("SKU-B", 40_000)], by_phone(phones[0]), {}),  # silver from here on
        ("s3", [("SKU-B", 50_000)], by_phone(phones[0]), {}),  # earns at silver's 1.2
        ("r1", [("SKU-A", 50_000)], None, {"is_return": True, "original_sale_id": f"{store}-{tag}-s1"}),
        ("s4", [("SKU-A", 12_345)], by_member_id(members[1]), {"points_paid": 2_000}),
        ("r5", [("SKU-B", 10_000)], None, {"is_return": True, "original_sale_id": f"{store}-{tag}-s5"}),
        ("s5", [("SKU-A", 20_000), ("SKU-B", 10_000)], by_phone(phones[2]), {}),
        ("s6", [("SKU-A", 9_900)], by_phone(random_phone()), {}),  # nobody
        ("s7", [("SKU-B", 33_300)], by_member_id(members[4]), {}),  # the merged member: the survivor earns
        ("s8", [("SKU-A", 7_700)], by_phone(phones[1]), {}),
        ("s9", [("SKU-A", 100)], by_phone(phones[3]), {}),
    ]
    for name, lines, member, more in entries:
        journal.append(sale(name, lines, member, **more))
    journal.insert(9, journal[4])  # s4 delivered twice in the batch
    return members, [mapped(entry) for entry in journal]


async def figures(url: str, member_id: str) -> dict[str, Any]:
    """What a member's sales left, without ids: points, tier, stage, ledger, sale facts, events."""
    [member] = await fetch(
        url, "SELECT points_balance, points_debt, tier, lifecycle_stage FROM member WHERE member_id = $1", member_id
    )
    ledger = await fetch(url, "SELECT kind, points FROM points_entry WHERE member_id = $1 ORDER BY entry_id", member_id)
    lots = await fetch(url, "SELECT points, remaining FROM points_lot WHERE member_id = $1 ORDER BY lot_id", member_id)
    facts = await fetch(
        url,
        "SELECT split_part(sale_id, '-', 3) AS name, kind, amount_minor, points, reversal_pending, categories, "
        "lot_id IS NOT NULL AS has_lot FROM sale_fact WHERE member_id = $1 ORDER BY sale_id",
        member_id,
    )
    events = await fetch(
        url, "SELECT event_type FROM outbox WHERE aggregate_id = $1 ORDER BY event_type, id", member_id
    )
    tiers = await fetch(url, "SELECT from_tier, to_tier, reason FROM tier_change WHERE member_id = $1", member_id)
    return {
        "member": dict(member),
        "ledger": [tuple(row) for row in ledger],
        "lots": [tuple(row) for row in lots],
        "facts": [tuple(row) for row in facts],
        "events": [row["event_type"] for row in events],
        "tiers": [tuple(row) for row in tiers],
    }


async def test_a_batch_applied_at_once_leaves_what_its_sales_applied_one_by_one_leave(
    app: MemberApp, stub: Stub, clock: HandClock, member_url: str, unique: str
) -> None:
    store = f"B{unique}"
    together_members, together = await member_journal(stub, clock, store, "together")
    alone_members, alone = await member_journal(stub, clock, store, "alone")
    sales = app.services.sales
    uow_factory = app.connected.unit_of_work

    async with uow_factory() as uow:
        await sales.apply_sales(uow, together)
        await uow.commit()
    for sale in alone:
        async with uow_factory() as uow:
            await sales.apply_sale(uow, sale)
            await uow.commit()

    for batch_member, single_member in zip(together_members, alone_members, strict=True):
        assert await figures(member_url, batch_member) == await figures(member_url, single_member)
    first = await figures(member_url, together_members[0])
    # The path the journal was built to take: silver reached by s2, s3 earning at 1.2, r1 reversing s1.
    assert first["tiers"] == [("basic", "silver", "upgrade")]
    assert first["ledger"] == [("earn", 1500), ("earn", 1000), ("earn", 600), ("reverse", -500)]
    assert (await figures(member_url, together_members[2]))["ledger"] == [("earn", 300), ("reverse", -100)]
    assert [fact[0] for fact in (await figures(member_url, together_members[3]))["facts"]] == ["s7", "s9"]
    anonymous = await fetch(member_url, "SELECT member_id FROM sale_fact WHERE sale_id = $1", f"{store}-together-s6")
    assert [row["member_id"] for row in anonymous] == [None]


async def earned_once(url: str, sale_ids: Sequence[str]) -> None:
    """Each sale kept once and earned once; every balance is its ledger and its lots."""
    [row] = await fetch(
        url,
        "SELECT count(*) AS facts, (SELECT count(*) FROM points_entry WHERE kind = 'earn' AND sale_id = ANY($1)) "
        "AS earns, (SELECT count(*) FROM outbox WHERE event_type = 'retail.member.v1.PointsEarned') AS events "
        "FROM sale_fact WHERE sale_id = ANY($1)",
        list(sale_ids),
    )
    assert (row["facts"], row["earns"], row["events"]) == (len(sale_ids),) * 3
    drift = await fetch(
        url,
        "SELECT m.member_id FROM member m WHERE m.points_balance <> (SELECT coalesce(sum(points), 0) "
        "FROM points_entry e WHERE e.member_id = m.member_id) OR m.points_balance <> (SELECT coalesce(sum(remaining), "
        "0) FROM points_lot l WHERE l.member_id = m.member_id) - m.points_debt",
    )
    assert drift == []


async def publish_twice(nats_url: str, sales: Sequence[sales_pb2.SaleRecorded]) -> None:
    """Each sale journaled, then again under another message id (a replayed upload): both are delivered."""
    async with jetstream(nats_url) as (_, js):
        for index, sale in enumerate(sales):
            for msg_id in (sale.sale_id, f"{sale.sale_id}-replayed"):
                if msg_id.endswith("replayed") and index % 3 == 0:
                    continue  # those come later, in other batches
                await js.publish(
                    f"retail.sales.v1.sale_recorded.{sale.location_id}",
                    sale.SerializeToString(),
                    headers={"Nats-Msg-Id": msg_id, "Retail-Event-Type": SALE_TYPE},
                )
        for sale in sales[::3]:
            await js.publish(
                f"retail.sales.v1.sale_recorded.{sale.location_id}",
                sale.SerializeToString(),
                headers={
                    "Nats-Msg-Id": f"{sale.sale_id}-replayed",
                    "Retail-Event-Type": "retail.sales.v1.SaleRecorded",
                },
            )


async def test_two_replicas_on_one_durable_and_repeated_deliveries_earn_each_sale_once(
    app: MemberApp,
    stub: Stub,
    member_settings: Callable[..., MemberSettings],
    clock: HandClock,
    member_url: str,
    nats_url: str,
    unique: str,
) -> None:
    store = f"R{unique}"
    phones = [random_phone() for _ in range(12)]
    members = [(await register(stub, "phone", phone)).member_id for phone in phones]
    replica = await start_member_app(member_settings(), clock)  # a second pod on the same durable
    try:
        sales = [
            journal_sale(store_id=store, lines=[("SKU-A", 1_000 + 37 * n)], member=by_phone(phones[n % len(phones)]))
            for n in range(240)
        ]
        await asyncio.gather(publish_twice(nats_url, sales[:120]), publish_twice(nats_url, sales[120:]))
        await settled(nats_url, member_settings().sales_consumer_durable)
    finally:
        await replica.server.stop()
        await replica.close()
    await earned_once(member_url, [sale.sale_id for sale in sales])
    expected: dict[str, int] = {}
    for n, sale in enumerate(sales):
        member = members[n % len(members)]
        expected[member] = expected.get(member, 0) + sale.total.minor_units // 100
    rows = await fetch(member_url, "SELECT member_id, points_balance FROM member WHERE member_id = ANY($1)", members)
    assert {row["member_id"]: row["points_balance"] for row in rows} == expected


@pytest.mark.slow
async def test_a_member_service_killed_mid_batch_earns_each_sale_once_after_its_restart(
    member_url: str, nats_url: str, unique: str, tmp_path: Path
) -> None:
    store = f"K{unique}"
    durable = f"member-sales-kill-{unique}"
    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, StreamSpec("SALES", ["retail.sales.v1.>"]))  # the gateway's stream
    process, port = ServiceProcess.grpc_service(
        "services.member",
        database_url=member_url,
        nats_url=nats_url,
        log=tmp_path / "member.log",
        SALES_CONSUMER_DURABLE=durable,
        MEMBER_REVIEW_SECONDS="0",
    )
    phones = [random_phone() for _ in range(50)]
    sales = [
        journal_sale(store_id=store, lines=[("SKU-A", 500 + n)], member=by_phone(phones[n % len(phones)]))
        for n in range(3_000)
    ]
    ids = [sale.sale_id for sale in sales]
    publishing: asyncio.Task[None] | None = None
    process.start()
    try:
        await serving(port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.MemberServiceStub(channel)  # type: ignore[no-untyped-call]
            for phone in phones:
                await register(stub, "phone", phone)
        # The journal fills while the service earns: it is killed once some sales are in, however
        # fast it earns, with many still to come (published, or still being published).
        publishing = asyncio.create_task(publish_twice(nats_url, sales))
        async with asyncio.timeout(120):  # kill -9 once some sales are in and many are not
            while (kept := await kept_count(member_url, ids)) < 200:
                await asyncio.sleep(0.01)
        assert kept < len(ids) - 200, "the service finished before it could be killed"
        process.kill()
        process.start()
        await publishing
        await serving(port)
        await settled(nats_url, durable)
    finally:
        if publishing is not None and not publishing.done():
            publishing.cancel()
        process.stop()
    await earned_once(member_url, ids)


async def kept_count(url: str, sale_ids: Sequence[str]) -> int:
    [row] = await fetch(url, "SELECT count(*) AS n FROM sale_fact WHERE sale_id = ANY($1)", list(sale_ids))
    return int(row["n"])
