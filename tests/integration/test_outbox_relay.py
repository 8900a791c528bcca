"""The outbox relay against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from nats.errors import TimeoutError as NatsTimeoutError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from servicekit.consumer import EventConsumer, EventHandlers, InboundEvent
from servicekit.db import UnitOfWork, create_engine
from servicekit.messaging import ConsumerSpec, ensure_consumer
from servicekit.outbox import OutboxEvent, OutboxRelay
from servicekit.settings import to_plain_url
from tests.conftest import Infra
from tests.support.messaging import jetstream, own_stream, read_all

if TYPE_CHECKING:
    from nats.js import JetStreamContext


async def write_events(
    database_url: str, token: str, aggregates: int, per_aggregate: int, *, prefix: str = ""
) -> list[OutboxEvent]:
    """Interleave events of several aggregates over many small transactions."""
    engine = create_engine(database_url)
    uow = UnitOfWork(async_sessionmaker(engine, expire_on_commit=False))
    written: list[OutboxEvent] = []
    order = [a for _ in range(per_aggregate) for a in range(aggregates)]
    counters: dict[int, int] = defaultdict(int)
    for start in range(0, len(order), 25):
        async with uow:
            for aggregate in order[start : start + 25]:
                counters[aggregate] += 1
                event = OutboxEvent(
                    subject=f"test.{token}.happened",
                    event_type="retail.test.v1.Happened",
                    aggregate_id=f"{prefix}agg-{aggregate}",
                    payload=f"agg-{aggregate}:{counters[aggregate]}".encode(),
                )
                uow.publish(event)
                written.append(event)
            await uow.commit()
    await engine.dispose()
    return written


def assert_exactly_once_in_aggregate_order(
    written: list[OutboxEvent], received: list[tuple[str, dict[str, str], bytes]]
) -> None:
    ids = [headers["Nats-Msg-Id"] for _, headers, _ in received]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert sorted(ids) == sorted(str(event.event_id) for event in written), "an event is missing"
    sequence_by_aggregate: dict[str, list[int]] = defaultdict(list)
    for _, _, payload in received:
        aggregate, number = payload.decode().split(":")
        sequence_by_aggregate[aggregate].append(int(number))
    for aggregate, numbers in sequence_by_aggregate.items():
        assert numbers == sorted(numbers), f"events of {aggregate} overtook each other"


async def unpublished(database_url: str) -> int:
    connection = await asyncpg.connect(to_plain_url(database_url))
    try:
        return int(await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    finally:
        await connection.close()


async def run_relay_until_drained(relay: OutboxRelay, database_url: str) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    async with asyncio.timeout(60):
        while await unpublished(database_url):
            await asyncio.sleep(0.02)
    stop.set()
    await task


async def test_relay_publishes_every_row_once_with_its_id_and_type_and_marks_it(
    database_url: str, nats_url: str, unique: str
) -> None:
    written = await write_events(database_url, unique, aggregates=7, per_aggregate=30)
    async with jetstream(nats_url) as (_, js):
        stream = await own_stream(js, unique)
        relay = OutboxRelay(database_url, js, batch_size=50)
        await run_relay_until_drained(relay, database_url)
        received = await read_all(js, stream.name)
    assert_exactly_once_in_aggregate_order(written, received)
    _, headers, _ = received[0]
    assert headers["Retail-Event-Type"] == "retail.test.v1.Happened"
    assert headers["Retail-Aggregate-Id"].startswith("agg-")
    assert relay.stats.published == len(written)


async def test_relay_keeps_rows_while_nats_is_down_and_publishes_them_after_restart(
    infra: Infra, database_url: str, unique: str
) -> None:
    if infra.nats is None:
        pytest.fail("this test restarts NATS, so it needs the test run's own NATS server")
    async with jetstream(infra.nats_url) as (_, js):
        stream = await own_stream(js, unique)
        infra.nats.stop()
        written = await write_events(database_url, unique, aggregates=3, per_aggregate=20)
        relay = OutboxRelay(database_url, js, batch_size=20, publish_timeout=0.5, max_backoff=0.5)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        async with asyncio.timeout(30):
            while relay.stats.failed == 0:
                await asyncio.sleep(0.05)
        assert await unpublished(database_url) == len(written), "a row was marked sent without an ack"
        infra.nats.start()
        async with asyncio.timeout(60):
            while await unpublished(database_url):
                await asyncio.sleep(0.05)
        stop.set()
        await task
        received = await read_all(js, stream.name)
    assert_exactly_once_in_aggregate_order(written, received)


async def test_only_one_of_two_relays_publishes_at_a_time(database_url: str, nats_url: str, unique: str) -> None:
    written = await write_events(database_url, unique, aggregates=4, per_aggregate=50)
    async with jetstream(nats_url) as (_, js):
        stream = await own_stream(js, unique)
        first = OutboxRelay(database_url, js, batch_size=10, poll_interval=0.05)
        second = OutboxRelay(database_url, js, batch_size=10, poll_interval=0.05)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(first.run(stop)), asyncio.create_task(second.run(stop))]
        async with asyncio.timeout(60):
            while await unpublished(database_url):
                assert not (first.is_leader and second.is_leader)
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*tasks)
        received = await read_all(js, stream.name)
    assert_exactly_once_in_aggregate_order(written, received)
    assert {first.stats.published, second.stats.published} == {0, len(written)}


@pytest.mark.slow
async def test_relay_killed_with_sigkill_at_random_moments_loses_and_duplicates_nothing(
    database_url: str, nats_url: str, unique: str
) -> None:
    written = await write_events(database_url, unique, aggregates=10, per_aggregate=400)
    rng = random.Random(unique)
    kills_with_work_left = 0
    async with jetstream(nats_url) as (_, js):
        stream = await own_stream(js, unique)
        for _ in range(8):
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.support.relay_worker",
                database_url,
                nats_url,
                stdout=asyncio.subprocess.PIPE,
            )
            assert worker.stdout is not None
            assert (await worker.stdout.readline()).strip() == b"relay started"
            # Kill once a random amount of work has gone out: mid-batch, between a publish ack
            # and its mark, or while marking; wherever the signal happens to land.
            before = await unpublished(database_url)
            target = before - rng.randint(40, 350)
            async with asyncio.timeout(30):
                while (left := await unpublished(database_url)) > target and left:
                    await asyncio.sleep(0.001)
            worker.send_signal(signal.SIGKILL)
            if left:
                kills_with_work_left += 1
            assert await worker.wait() == -signal.SIGKILL
        final = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.relay_worker",
            database_url,
            nats_url,
            "--until-empty",
            stdout=asyncio.subprocess.DEVNULL,
        )
        assert await final.wait() == 0
        received = await read_all(js, stream.name)
    assert kills_with_work_left >= 3, "the kills did not interrupt publishing"
    assert_exactly_once_in_aggregate_order(written, received)
    assert await unpublished(database_url) == 0


async def test_relay_killed_after_the_publish_ack_but_before_marking_republishes_without_duplicates(
    database_url: str, nats_url: str, unique: str
) -> None:
    written = await write_events(database_url, unique, aggregates=3, per_aggregate=30)
    async with jetstream(nats_url) as (_, js):
        stream = await own_stream(js, unique)
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.relay_worker",
            database_url,
            nats_url,
            "--freeze-before-mark",
            stdout=asyncio.subprocess.PIPE,
        )
        assert worker.stdout is not None
        assert (await worker.stdout.readline()).strip() == b"relay started"
        frozen = (await worker.stdout.readline()).decode()
        assert frozen.startswith("acked 40 unmarked")
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
        assert await unpublished(database_url) == len(written), "nothing was marked before the kill"
        relay = OutboxRelay(database_url, js, batch_size=500)
        await run_relay_until_drained(relay, database_url)
        received = await read_all(js, stream.name)
    assert relay.stats.published == len(written)  # the 40 acked rows went out once more...
    assert_exactly_once_in_aggregate_order(written, received)  # ...and JetStream dropped the copies


async def test_rows_published_longer_ago_than_the_retention_are_pruned(database_url: str, nats_url: str) -> None:
    connection = await asyncpg.connect(to_plain_url(database_url))
    try:
        for age_days, published in ((5, True), (1, True), (5, False)):
            await connection.execute(
                "INSERT INTO outbox (event_id, subject, event_type, aggregate_id, payload, occurred_at, published_at)"
                " VALUES ($1, 's', 't', 'a', '', now(), CASE WHEN $2 THEN now() - make_interval(days => $3) END)",
                uuid.uuid4(),
                published,
                age_days,
            )
        async with jetstream(nats_url) as (_, js):
            deleted = await OutboxRelay(database_url, js).prune(connection)
        remaining = await connection.fetch("SELECT published_at IS NULL AS pending FROM outbox ORDER BY id")
    finally:
        await connection.close()
    assert deleted == 1
    assert [row["pending"] for row in remaining] == [False, True]


class RefusingJetStream:
    """The real JetStream, except that every ``every``-th publish is lost on the way: it never
    reaches the server and its ack fails as a lost request's does."""

    def __init__(self, js: JetStreamContext, every: int) -> None:
        self._js = js
        self._every = every
        self.calls = 0
        self.refused = 0

    async def publish_async(
        self,
        subject: str,
        payload: bytes = b"",
        wait_stall: float | None = None,
        stream: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> asyncio.Future[Any]:
        self.calls += 1
        if self.calls % self._every == 0:
            self.refused += 1
            lost: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            lost.set_exception(NatsTimeoutError())
            return lost
        return await self._js.publish_async(subject, payload, wait_stall=wait_stall, stream=stream, headers=headers)


async def test_many_aggregates_written_while_the_relay_runs_arrive_once_each_and_in_aggregate_order(
    database_url: str, nats_url: str, unique: str
) -> None:
    """Four writers commit interleaved events of 120 aggregates while the relay publishes them,
    many at a time, and some publishes are lost: no aggregate's events may overtake each other."""
    async with jetstream(nats_url) as (_, js):
        stream = await own_stream(js, unique)
        refusing = RefusingJetStream(js, every=53)
        relay = OutboxRelay(database_url, refusing, batch_size=400, poll_interval=0.05, max_backoff=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        # Each writer owns its aggregates (an aggregate's events are numbered in commit order).
        batches = await asyncio.gather(
            *(
                write_events(database_url, f"{unique}.w{writer}", aggregates=30, per_aggregate=25, prefix=f"w{writer}-")
                for writer in range(4)
            )
        )
        async with asyncio.timeout(120):
            while await unpublished(database_url):
                await asyncio.sleep(0.02)
        stop.set()
        await task
        received = await read_all(js, stream.name)
    written = [event for batch in batches for event in batch]
    assert refusing.refused > 0, "no publish was lost: the test proved nothing"
    assert relay.stats.failed == refusing.refused
    # Payloads name the aggregate without the writer: tell them apart by subject.
    by_writer: dict[str, list[tuple[str, dict[str, str], bytes]]] = defaultdict(list)
    for subject, headers, payload in received:
        by_writer[subject].append((subject, headers, payload))
    for writer in range(4):
        subject = f"test.{unique}.w{writer}.happened"
        mine = [event for event in written if event.subject == subject]
        assert_exactly_once_in_aggregate_order(mine, by_writer[subject])
    assert relay.stats.published == len(written)


@pytest.mark.slow
async def test_a_relay_killed_mid_batch_leaves_a_consumer_every_effect_once_and_in_aggregate_order(
    database_url: str, nats_url: str, unique: str
) -> None:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE effect (n bigserial PRIMARY KEY, aggregate text, number int)"))
    written: list[OutboxEvent] = []
    for start in range(0, 1200, 30):  # 12 aggregates x 100 events, interleaved, 30 per transaction
        async with UnitOfWork(sessions) as uow:
            for index in range(start, start + 30):
                aggregate, number = f"agg-{index % 12}", index // 12 + 1
                event = OutboxEvent.of(
                    f"test.{unique}.happened", StringValue(value=f"{aggregate}:{number}"), aggregate_id=aggregate
                )
                uow.publish(event)
                written.append(event)
            await uow.commit()

    async def apply(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
        aggregate, number = event.message.value.split(":")
        await uow.session.execute(
            text("INSERT INTO effect (aggregate, number) VALUES (:aggregate, :number)"),
            {"aggregate": aggregate, "number": int(number)},
        )

    kills_with_work_left = 0
    async with jetstream(nats_url) as (_, js):
        stream = await own_stream(js, unique)
        for _ in range(4):
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.support.relay_worker",
                database_url,
                nats_url,
                stdout=asyncio.subprocess.PIPE,
            )
            assert worker.stdout is not None
            assert (await worker.stdout.readline()).strip() == b"relay started"
            target = await unpublished(database_url) - 150
            async with asyncio.timeout(30):
                while (left := await unpublished(database_url)) > target and left:
                    await asyncio.sleep(0.001)
            worker.send_signal(signal.SIGKILL)
            kills_with_work_left += bool(left)
            assert await worker.wait() == -signal.SIGKILL
        final = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.relay_worker", database_url, nats_url, "--until-empty"
        )
        assert await final.wait() == 0
        spec = ConsumerSpec(stream=stream.name, durable=f"fx{unique}")
        await ensure_consumer(js, spec)
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, apply)
        consumer = EventConsumer(js, spec, handlers, lambda: UnitOfWork(sessions))
        stop = asyncio.Event()
        consuming = asyncio.create_task(consumer.run(stop))
        async with asyncio.timeout(60):
            while consumer.stats.handled + consumer.stats.duplicates < len(written):
                await asyncio.sleep(0.05)
        stop.set()
        await consuming
        stored = len(await read_all(js, stream.name))
    async with engine.connect() as connection:
        effects = (await connection.execute(text("SELECT aggregate, number FROM effect ORDER BY n"))).all()
    await engine.dispose()
    assert kills_with_work_left >= 3, "the kills did not interrupt publishing"
    assert stored == len(written), "JetStream kept a republished copy or lost an event"
    assert len(effects) == len(written), "an effect is missing or happened twice"
    numbers: dict[str, list[int]] = defaultdict(list)
    for aggregate, number in effects:
        numbers[aggregate].append(number)
    assert all(applied == list(range(1, 101)) for applied in numbers.values()), "an aggregate's effects overtook"


async def test_events_of_one_transaction_are_stored_as_given_in_the_order_given(database_url: str) -> None:
    engine = create_engine(database_url)
    uow = UnitOfWork(async_sessionmaker(engine, expire_on_commit=False))
    events = [
        OutboxEvent(
            subject=f"test.order.{n % 3}",
            event_type="retail.test.v1.Happened",
            aggregate_id=f"agg-{n % 3}",
            payload=f"event {n}".encode(),
        )
        for n in range(600)
    ]
    async with uow:
        uow.publish(*reversed(events))
        await uow.commit()
    await engine.dispose()
    connection = await asyncpg.connect(to_plain_url(database_url))
    try:
        rows = await connection.fetch(
            "SELECT event_id, subject, event_type, aggregate_id, payload, headers, occurred_at FROM outbox ORDER BY id"
        )
    finally:
        await connection.close()
    assert [
        (row["event_id"], row["subject"], row["event_type"], row["aggregate_id"], row["payload"], row["occurred_at"])
        for row in rows
    ] == [(e.event_id, e.subject, e.event_type, e.aggregate_id, e.payload, e.occurred_at) for e in reversed(events)]
    assert all(row["headers"] in ("{}", {}) for row in rows)  # outside a trace: no trace context
