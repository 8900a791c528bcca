"""Helpers for tests that talk to the real NATS JetStream of the test run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

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
