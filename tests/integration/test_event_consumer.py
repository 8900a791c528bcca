"""The event consumer runner against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from servicekit.consumer import EventConsumer, EventHandlers, InboundEvent, PoisonMessage
from servicekit.db import UnitOfWork, create_engine
from servicekit.messaging import DEAD_LETTER_STREAM, ConsumerSpec, StreamSpec, ensure_consumer, ensure_stream, provision
from servicekit.settings import to_plain_url
from tests.conftest import Infra
from tests.support.messaging import jetstream, own_stream, read_all

EVENT_TYPE = StringValue.DESCRIPTOR.full_name


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE applied (event_id text, value text)"))
    yield engine
    await engine.dispose()


def unit_of_work(engine: AsyncEngine) -> UnitOfWork:
    return UnitOfWork(async_sessionmaker(engine, expire_on_commit=False))


async def record(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
    await uow.session.execute(
        text("INSERT INTO applied VALUES (:id, :value)"), {"id": event.event_id, "value": event.message.value}
    )


async def applied(database_url: str) -> list[tuple[str, str]]:
    connection = await asyncpg.connect(to_plain_url(database_url))
    try:
        rows = await connection.fetch("SELECT event_id, value FROM applied ORDER BY value")
    finally:
        await connection.close()
    return [(row["event_id"], row["value"]) for row in rows]


async def publish(js: JetStreamContext, subject: str, value: str, *, payload: bytes | None = None) -> str:
    event_id = str(uuid.uuid4())
    data = payload if payload is not None else StringValue(value=value).SerializeToString()
    await js.publish(subject, data, headers={"Nats-Msg-Id": event_id, "Retail-Event-Type": EVENT_TYPE})
    return event_id


async def consumer_for(js: JetStreamContext, token: str, **spec_options: object) -> ConsumerSpec:
    stream = await own_stream(js, token)
    await ensure_stream(js, StreamSpec(DEAD_LETTER_STREAM, ["retail.deadletter.>"]))
    spec = ConsumerSpec(stream=stream.name, durable=f"c{token}", filter_subjects=[f"test.{token}.>"], **spec_options)  # type: ignore[arg-type]
    await ensure_consumer(js, spec)
    return spec


async def run_until(consumer: EventConsumer[UnitOfWork], condition: asyncio.Event | None = None, **stats: int) -> None:
    """Run the consumer until its counters reach ``stats``, then stop it (bounded by a timeout)."""
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        async with asyncio.timeout(30):
            while any(getattr(consumer.stats, name) < value for name, value in stats.items()):
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task


async def test_each_event_is_applied_once_and_recorded_in_the_inbox(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique)
        ids = [await publish(js, f"test.{unique}.noted", f"v{i:02}") for i in range(20)]
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, record)
        consumer = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine), batch_size=7)
        await run_until(consumer, handled=20)
    assert sorted(event_id for event_id, _ in await applied(database_url)) == sorted(ids)
    connection = await asyncpg.connect(to_plain_url(database_url))
    inbox = await connection.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", spec.durable)
    await connection.close()
    assert inbox == 20


async def test_a_redelivered_event_whose_ack_was_lost_changes_nothing_the_second_time(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique, ack_wait_seconds=1.0)
        await publish(js, f"test.{unique}.noted", "once")
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, record)
        crashed = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine))
        subscription = await js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)
        [message] = await subscription.fetch(1, timeout=5)
        # The effect commits, then the process dies before its ack reaches the broker.
        assert await crashed._apply(message, dict(message.headers or {}), attempt=1) == "handled"
        await subscription.unsubscribe()
        survivor = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine))
        await run_until(survivor, duplicates=1)  # JetStream redelivers after ack_wait
    assert [value for _, value in await applied(database_url)] == ["once"]
    assert survivor.stats.handled == 0


async def test_two_consumers_racing_on_one_redelivered_event_apply_it_once(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique, ack_wait_seconds=1.0)
        await publish(js, f"test.{unique}.noted", "raced")
        first_inside = asyncio.Event()
        release_first = asyncio.Event()

        async def slow_record(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
            await record(event, uow)
            if event.attempt == 1:
                first_inside.set()
                await release_first.wait()  # hold the inbox claim past ack_wait

        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, slow_record)
        slow = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine))
        fast = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine))
        stop = asyncio.Event()
        slow_task = asyncio.create_task(slow.run(stop))
        await asyncio.wait_for(first_inside.wait(), 10)
        fast_task = asyncio.create_task(fast.run(stop))
        # The redelivery reaches `fast`, whose inbox insert now waits on `slow`'s claim.
        async with asyncio.timeout(20):
            while not await _blocked_on_lock(database_url):
                await asyncio.sleep(0.05)
        release_first.set()
        async with asyncio.timeout(20):
            while fast.stats.duplicates + slow.stats.duplicates < 1:
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(slow_task, fast_task)
    assert [value for _, value in await applied(database_url)] == ["raced"]
    assert slow.stats.handled + fast.stats.handled == 1


async def _blocked_on_lock(database_url: str) -> bool:
    connection = await asyncpg.connect(to_plain_url(database_url))
    try:
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    finally:
        await connection.close()
    return bool(waiting)


async def test_a_malformed_event_is_dead_lettered_with_its_reason_and_the_consumer_carries_on(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique)
        poison_id = await publish(js, f"test.{unique}.noted", "", payload=b"\xff\xff\xff not protobuf")
        await publish(js, f"test.{unique}.noted", "after-poison")
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, record)
        consumer = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine))
        await run_until(consumer, handled=1, dead_lettered=1)
        parked = [
            (subject, headers)
            for subject, headers, _ in await read_all(js, DEAD_LETTER_STREAM, f"retail.deadletter.{spec.durable}")
        ]
    assert [value for _, value in await applied(database_url)] == ["after-poison"]
    [(subject, headers)] = parked
    assert subject == f"retail.deadletter.{spec.durable}"
    assert headers["Retail-Dead-Letter-Reason"].startswith("poison: cannot decode")
    assert headers["Retail-Original-Subject"] == f"test.{unique}.noted"
    assert headers["Nats-Msg-Id"] == f"{spec.durable}:{poison_id}"


async def test_a_handler_that_keeps_failing_is_retried_past_stuck_never_dead_lettered_and_applied_once_fixed(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    attempts: list[int] = []
    fixed = asyncio.Event()

    async def fails_until_fixed(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
        await record(event, uow)  # rolled back on each failure
        attempts.append(event.attempt)
        if not fixed.is_set():
            raise RuntimeError("downstream rule violated")

    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique, stuck_after_attempts=3)
        await publish(js, f"test.{unique}.noted", "a fact")
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, fails_until_fixed)
        consumer = EventConsumer(
            js, spec, handlers, lambda: unit_of_work(engine), retry_base_delay=0.05, retry_max_delay=0.2
        )
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        try:
            async with asyncio.timeout(30):
                while len(attempts) < 6:  # well past stuck_after_attempts
                    await asyncio.sleep(0.01)
            assert consumer.stats.stuck == 1
            assert consumer.stats.dead_lettered == 0
            fixed.set()  # the cause is gone (a fix deployed, a constraint corrected)
            async with asyncio.timeout(30):
                while consumer.stats.handled < 1:
                    await asyncio.sleep(0.01)
        finally:
            stop.set()
            await task
        parked = await read_all(js, DEAD_LETTER_STREAM, f"retail.deadletter.{spec.durable}")
    assert attempts[:6] == [1, 2, 3, 4, 5, 6]
    assert [value for _, value in await applied(database_url)] == ["a fact"]
    assert parked == []


async def test_an_event_its_handler_declares_unreadable_is_dead_lettered_at_once(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    attempts: list[int] = []

    async def refuses_empty(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
        attempts.append(event.attempt)
        if not event.message.value:
            raise PoisonMessage("a note without text means nothing")
        await record(event, uow)

    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique)
        await publish(js, f"test.{unique}.noted", "")
        await publish(js, f"test.{unique}.noted", "after")
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, refuses_empty)
        consumer = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine), retry_base_delay=0.05)
        await run_until(consumer, handled=1, dead_lettered=1)
        [(_, headers, _)] = await read_all(js, DEAD_LETTER_STREAM, f"retail.deadletter.{spec.durable}")
    assert headers["Retail-Dead-Letter-Reason"] == "poison: a note without text means nothing"
    assert consumer.stats.retried == 0
    assert [value for _, value in await applied(database_url)] == ["after"]


async def test_a_transient_failure_is_retried_and_then_applied_once(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    async def flaky(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
        await record(event, uow)
        if event.attempt == 1:
            raise RuntimeError("downstream service hiccup")

    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique)
        await publish(js, f"test.{unique}.noted", "eventually")
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, flaky)
        consumer = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine), retry_base_delay=0.05)
        await run_until(consumer, handled=1)
    assert [value for _, value in await applied(database_url)] == ["eventually"]
    assert consumer.stats.retried == 1


async def test_stopping_drains_the_event_in_hand_before_returning(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    inside = asyncio.Event()
    finish = asyncio.Event()

    async def slow(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
        inside.set()
        await finish.wait()
        await record(event, uow)

    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique, ack_wait_seconds=60.0)
        for value in ("first", "second", "third"):
            await publish(js, f"test.{unique}.noted", value)
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, slow)
        consumer = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine), batch_size=3)
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        await asyncio.wait_for(inside.wait(), 10)
        stop.set()
        finish.set()
        await asyncio.wait_for(task, 10)
        assert [value for _, value in await applied(database_url)] == ["first"]
        assert consumer.stats.handled == 1
        # The two it never started were handed back at once: a successor gets them long
        # before the 60 s ack_wait would have released them.
        handlers.on(StringValue, record)
        successor = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine))
        async with asyncio.timeout(20):
            await run_until(successor, handled=2)
    assert [value for _, value in await applied(database_url)] == ["first", "second", "third"]


async def test_provisioning_twice_changes_nothing_and_a_changed_spec_updates_the_stream(
    nats_url: str, unique: str
) -> None:
    spec = StreamSpec(name=f"P{unique}", subjects=[f"prov.{unique}.a"])
    changed = StreamSpec(name=f"P{unique}", subjects=[f"prov.{unique}.a", f"prov.{unique}.b"])
    consumer = ConsumerSpec(stream=spec.name, durable=f"d{unique}", filter_subjects=[f"prov.{unique}.a"])
    async with jetstream(nats_url) as (_, js):
        await provision(js, [spec], [consumer])
        assert await ensure_stream(js, spec) == "unchanged"
        await provision(js, [spec], [consumer])
        assert await ensure_stream(js, changed) == "updated"
        info = await js.stream_info(spec.name)
        consumer_info = await js.consumer_info(spec.name, consumer.durable)
        dead_letter = await js.stream_info(DEAD_LETTER_STREAM)
    assert sorted(info.config.subjects or []) == sorted(changed.subjects)
    assert str(consumer_info.config.ack_policy).rsplit(".", 1)[-1].lower() == "explicit"
    assert dead_letter.config.subjects == ["retail.deadletter.>"]


async def test_a_database_outage_hands_events_back_without_dead_lettering_them_and_recovers(
    infra: Infra, database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    if infra.postgres is None:
        pytest.fail("this test restarts PostgreSQL, so it needs the test run's own server")
    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique, stuck_after_attempts=2)
        attempts: list[int] = []

        async def record_attempt(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
            attempts.append(event.attempt)
            await record(event, uow)

        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, record_attempt)
        consumer = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine), retry_base_delay=0.05)
        stop = asyncio.Event()
        infra.postgres.stop()
        try:
            await publish(js, f"test.{unique}.noted", "survives-the-outage")
            task = asyncio.create_task(consumer.run(stop))
            # Delivered well past stuck_after_attempts while the database is down...
            async with asyncio.timeout(30):
                while consumer.stats.handed_back < 3:
                    await asyncio.sleep(0.05)
        finally:
            infra.postgres.start()
        # ...yet handled once it is back, and never parked.
        async with asyncio.timeout(30):
            while consumer.stats.handled < 1:
                await asyncio.sleep(0.05)
        stop.set()
        await task
    assert consumer.stats.dead_lettered == consumer.stats.stuck == 0
    assert attempts[-1] > spec.stuck_after_attempts
    assert [value for _, value in await applied(database_url)] == ["survives-the-outage"]


async def test_a_fetched_batch_is_applied_in_one_transaction(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    async def record_transaction(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
        txid = (await uow.session.execute(text("SELECT txid_current()"))).scalar_one()
        await uow.session.execute(
            text("INSERT INTO applied VALUES (:id, :value)"), {"id": str(txid), "value": event.message.value}
        )

    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique)
        for i in range(20):
            await publish(js, f"test.{unique}.noted", f"v{i:02}")
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, record_transaction)
        consumer = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine), batch_size=20)
        await run_until(consumer, handled=20)
    rows = await applied(database_url)
    assert [value for _, value in rows] == [f"v{i:02}" for i in range(20)]
    # Group commit: the 20 events pending at the first fetch share very few transactions.
    assert len({txid for txid, _ in rows}) <= 2


async def test_a_failing_event_in_a_batch_neither_blocks_nor_repeats_the_others(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    attempts: dict[str, int] = {}

    async def flaky(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
        attempts[event.message.value] = attempts.get(event.message.value, 0) + 1
        await record(event, uow)
        # Fails inside the batch and again when handled alone; its redelivery succeeds.
        if event.message.value == "v04" and attempts["v04"] <= 2:
            raise RuntimeError("a transient handler failure")

    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique)
        for i in range(10):
            await publish(js, f"test.{unique}.noted", f"v{i:02}")
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, flaky)
        consumer = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine), batch_size=10, retry_base_delay=0.05)
        await run_until(consumer, handled=10)
    # The failed batch rolled back as a whole; each event then committed exactly once.
    assert [value for _, value in await applied(database_url)] == [f"v{i:02}" for i in range(10)]
    assert consumer.stats.retried == 1
    assert consumer.stats.handled == 10


async def test_a_batch_handler_gets_a_fetch_at_once_without_the_events_already_in_the_inbox(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    calls: list[list[str]] = []

    async def one(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
        raise AssertionError("the one-event handler runs only when a batch fails")

    async def many(events: Sequence[InboundEvent[StringValue]], uow: UnitOfWork) -> None:
        calls.append([event.message.value for event in events])
        for event in events:
            await record(event, uow)

    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique)
        ids = [await publish(js, f"test.{unique}.noted", f"v{i:02}") for i in range(6)]
        # v02 again under its own id (a replay; JetStream keeps it after the duplicate window), and v04's
        # id already claimed by an earlier run.
        await js.publish(
            f"test.{unique}.noted",
            StringValue(value="v02").SerializeToString(),
            headers={"Nats-Msg-Id": f"{ids[2]}-again", "Retail-Event-Type": EVENT_TYPE},
        )
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO inbox (consumer, event_id, subject) VALUES (:c, :e, 's')"),
                {"c": spec.durable, "e": ids[4]},
            )
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, one, batch=many)
        consumer = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine), batch_size=20)
        await run_until(consumer, handled=6, duplicates=1)
    assert calls == [["v00", "v01", "v02", "v03", "v05", "v02"]]
    assert consumer.stats.retried == consumer.stats.dead_lettered == 0


async def test_a_failing_batch_is_applied_one_event_at_a_time_and_a_poison_event_in_it_blocks_nothing(
    database_url: str, engine: AsyncEngine, nats_url: str, unique: str
) -> None:
    batches: list[int] = []

    async def one(event: InboundEvent[StringValue], uow: UnitOfWork) -> None:
        if event.message.value == "meaningless":
            raise PoisonMessage("a value no fix could apply")
        await record(event, uow)

    async def many(events: Sequence[InboundEvent[StringValue]], uow: UnitOfWork) -> None:
        batches.append(len(events))
        for event in events:
            await one(event, uow)  # the poison event fails the whole batch

    async with jetstream(nats_url) as (_, js):
        spec = await consumer_for(js, unique)
        for i in range(8):
            await publish(js, f"test.{unique}.noted", "meaningless" if i == 3 else f"v{i:02}")
        await publish(js, f"test.{unique}.noted", "undecodable", payload=b"\xff\xff")
        handlers: EventHandlers[UnitOfWork] = EventHandlers()
        handlers.on(StringValue, one, batch=many)
        consumer = EventConsumer(js, spec, handlers, lambda: unit_of_work(engine), batch_size=20)
        await run_until(consumer, handled=7, dead_lettered=2)
        dead = await read_all(js, DEAD_LETTER_STREAM, f"retail.deadletter.{spec.durable}")
    # The batch of 8 readable events rolled back; one by one, 7 applied once and the poison one parked.
    assert batches == [8]
    assert [value for _, value in await applied(database_url)] == [f"v{i:02}" for i in range(8) if i != 3]
    assert len(dead) == 2
    assert consumer.stats.handled == 7
