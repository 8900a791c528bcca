"""Helpers for tests that talk to the real NATS JetStream of the test run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError

from servicekit.messaging import StreamSpec, connect_nats, ensure_stream


@asynccontextmanager
async def jetstream(nats_url: str) -> AsyncIterator[tuple[NatsClient, JetStreamContext]]:
    client = await connect_nats(nats_url, name="tests")
    try:
        yield client, client.jetstream()
    finally:
        await client.close()


async def own_stream(js: JetStreamContext, token: str) -> StreamSpec:
    """A stream of this test's own, on subjects ``test.<token>.>``."""
    spec = StreamSpec(name=f"T{token}", subjects=[f"test.{token}.>"])
    await ensure_stream(js, spec)
    return spec


async def read_all(js: JetStreamContext, stream: str, subject: str = ">") -> list[tuple[str, dict[str, str], bytes]]:
    """Every message currently in ``stream`` (subject, headers, payload), in stream order."""
    subscription = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=30),
    )
    # The consumer counts what matches its filter at creation: that is exactly what to read.
    expected = (await subscription.consumer_info()).num_pending or 0
    received: list[tuple[str, dict[str, str], bytes]] = []
    while len(received) < expected:
        for message in await subscription.fetch(min(500, expected - len(received)), timeout=5):
            received.append((message.subject, dict(message.headers or {}), message.data))
    await subscription.unsubscribe()
    return received


async def receive(js: JetStreamContext, stream: str, subject: str, count: int) -> list[Msg]:
    """The first ``count`` messages on ``subject``, waiting (server-side long polls, 30 s at most) for them."""
    subscription = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=30),
    )
    received: list[Msg] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < count:
                try:
                    received += await subscription.fetch(count - len(received), timeout=5)
                except NatsTimeoutError:
                    continue  # nothing yet: ask again until the overall timeout
    finally:
        await subscription.unsubscribe()
    return received


StreamsSnapshot = dict[str, tuple[int, set[str]]]


async def snapshot_streams(nats_url: str) -> StreamsSnapshot:
    """Every stream's last sequence and consumers, for :func:`restore_streams`."""
    async with jetstream(nats_url) as (_, js):
        snapshot: StreamsSnapshot = {}
        for info in await js.streams_info():
            name = str(info.config.name)
            snapshot[name] = (info.state.last_seq, {str(c.name) for c in await js.consumers_info(name)})
        return snapshot


async def restore_streams(nats_url: str, before: StreamsSnapshot) -> None:
    """Undo on the test run's shared NATS what happened since ``before``: streams created since are
    deleted, and in the others the messages published and the consumers made since.

    For tests that start whole services on the shared server (a `make run` on the test servers, a
    service with its relay): no later test's consumer with a service's default durable name replays
    their events into its own fresh database. Tests run one at a time."""
    async with jetstream(nats_url) as (_, js):
        for info in await js.streams_info():
            name = str(info.config.name)
            if name not in before:
                await js.delete_stream(name)
                continue
            last_seq, consumers = before[name]
            for consumer in await js.consumers_info(name):
                if consumer.name is not None and consumer.name not in consumers:
                    with contextlib.suppress(NotFoundError):
                        await js.delete_consumer(name, consumer.name)
            for sequence in range(last_seq + 1, info.state.last_seq + 1):
                with contextlib.suppress(NotFoundError, BadRequestError):
                    await js.delete_msg(name, sequence)


@asynccontextmanager
async def streams_left_as_found(nats_url: str) -> AsyncIterator[None]:
    """:func:`restore_streams` after the block, to what :func:`snapshot_streams` saw before it."""
    before = await snapshot_streams(nats_url)
    try:
        yield
    finally:
        await restore_streams(nats_url, before)


async def consumer_settled(
    js: JetStreamContext,
    stream: str,
    durable: str,
    timeout: float = 60,  # noqa: ASYNC109 - the wait's bound is the caller's
    *,
    declared_later: bool = False,
    past_sequence: int = 0,
) -> None:
    """Wait until a durable consumer has nothing pending and nothing unacknowledged; with
    ``declared_later``, also until the service under test has declared it; with
    ``past_sequence``, also until it has been delivered the stream's message of that sequence."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                info = await js.consumer_info(stream, durable)
            except NotFoundError:
                if not declared_later:
                    raise
            else:
                delivered = info.delivered is not None and (info.delivered.stream_seq or 0) >= past_sequence
                if delivered and not info.num_pending and not info.num_ack_pending:
                    return
            await asyncio.sleep(0.05)
