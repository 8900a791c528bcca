"""Member's SALES consumer never drops a sale: what it cannot credit it keeps as a fact, what fails it retries.

A dead letter is for a message that cannot be read. A sale naming nobody the member service
knows is still a purchase (for KPIs and the store's figures); a sale it cannot apply right
now (a fault in its database, a bug) waits in the journal and is applied once the cause is
gone — it is never parked where nobody applies it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg
import pytest
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.identity_lookup import member_identity_hash
from servicekit.messaging import DEAD_LETTER_STREAM
from servicekit.outbox import MSG_ID_HEADER
from servicekit.settings import to_plain_url
from services.member.bootstrap import MemberApp
from tests.integration.member.conftest import (
    LOOKUP_KEY,
    by_member_id,
    fetch,
    journal_sale,
    publish_sales,
    random_phone,
    register,
    settled,
)
from tests.integration.member.test_points import balance
from tests.support.messaging import jetstream, read_all

if TYPE_CHECKING:
    from retail.member.v1.member_service_pb2_grpc import MemberServiceAsyncStub as Stub

# The consumer's stuck_after_attempts: a sale failing this often used to be dead-lettered.
ATTEMPTS_THAT_USED_TO_PARK_IT = 5


@pytest.fixture
def durable(unique: str) -> str:
    return f"member-sales-{unique}"


@pytest.fixture
def store(unique: str) -> str:
    return f"T{unique}"


async def parked(nats_url: str, durable: str, sale_ids: set[str]) -> list[str]:
    async with jetstream(nats_url) as (_, js):
        letters = await read_all(js, DEAD_LETTER_STREAM, f"retail.deadletter.{durable}")
    return [headers[MSG_ID_HEADER] for _, headers, _ in letters if headers[MSG_ID_HEADER].split(":", 1)[1] in sale_ids]


async def refused_attempts(url: str) -> int:
    rows = await fetch(url, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS attempts FROM refused_attempts")
    return int(rows[0]["attempts"])


async def execute(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def test_sales_naming_nobody_the_member_service_knows_are_kept_as_anonymous_purchases(
    app: MemberApp, member_url: str, nats_url: str, durable: str, store: str
) -> None:
    unknown_phone = sales_pb2.MemberReference(
        type=sales_pb2.MEMBER_IDENTIFIER_TYPE_PHONE,
        identity_hash=member_identity_hash(LOOKUP_KEY, "phone", random_phone()),
    )
    strangers = [
        journal_sale(store_id=store, lines=[("RICE", 500)], member=by_member_id("M999999999")),  # nobody
        journal_sale(store_id=store, lines=[("RICE", 600)], member=by_member_id("card-0042")),  # not an id
        journal_sale(store_id=store, lines=[("RICE", 700)], member=unknown_phone),
    ]
    await publish_sales(nats_url, strangers)
    await settled(nats_url, durable)
    assert await parked(nats_url, durable, {sale.sale_id for sale in strangers}) == []
    facts = await fetch(member_url, "SELECT sale_id, member_id, amount_minor FROM sale_fact WHERE store_id = $1", store)
    assert sorted((row["sale_id"], row["member_id"], row["amount_minor"]) for row in facts) == sorted(
        (sale.sale_id, None, sale.total.minor_units) for sale in strangers
    )


async def test_a_sale_the_member_service_cannot_apply_for_now_is_retried_never_dead_lettered_and_applied_once(
    app: MemberApp, stub: Stub, member_url: str, nats_url: str, durable: str, store: str
) -> None:
    member_id = (await register(stub, "phone", random_phone())).member_id
    sale = journal_sale(store_id=store, lines=[("RICE", 10_000)], member=by_member_id(member_id))  # 100 points
    # A fault in the member database refuses this sale for now (say, a constraint the code got wrong).
    await execute(
        member_url,
        "CREATE SEQUENCE refused_attempts",
        "CREATE FUNCTION refuse_sale() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.sale_id = '{sale.sale_id}' THEN PERFORM nextval('refused_attempts'); "
        "RAISE EXCEPTION 'refused for now'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_sale BEFORE INSERT ON sale_fact FOR EACH ROW EXECUTE FUNCTION refuse_sale()",
    )
    await publish_sales(nats_url, [sale])
    async with asyncio.timeout(60):  # a sequence counts the attempts: it ignores their rollbacks
        while await refused_attempts(member_url) < ATTEMPTS_THAT_USED_TO_PARK_IT:
            await asyncio.sleep(0.1)
    await execute(member_url, "DROP TRIGGER refuse_sale ON sale_fact")  # the cause is gone
    await settled(nats_url, durable)
    assert await parked(nats_url, durable, {sale.sale_id}) == []
    facts = await fetch(member_url, "SELECT member_id, points FROM sale_fact WHERE sale_id = $1", sale.sale_id)
    assert [(row["member_id"], row["points"]) for row in facts] == [(member_id, 100)]
    assert await balance(stub, member_id) == 100
