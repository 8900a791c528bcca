"""NATS connection and JetStream stream/consumer provisioning, declared in code.

Streams and durable consumers are described by :class:`StreamSpec` and
:class:`ConsumerSpec` and applied idempotently at start-up: created when missing,
updated when their configuration changed, left alone otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from servicekit.nats_connection import NatsConnection

log = logging.getLogger("servicekit.messaging")

DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_PREFIX = "retail.deadletter"


async def connect_nats(url: str, *, name: str, connect_timeout: float = 5.0) -> NatsClient:
    """Connect now and wait for it (tools, tests, benchmarks); services use NatsConnection.

    The client keeps reconnecting after later outages, like every connection of ours.
    """
    connection = NatsConnection(url, name=name)
    connection.start()
    if not await connection.wait_connected(connect_timeout):
        await connection.close()
        raise ConnectionError(f"no NATS server answered at {url} within {connect_timeout}s")
    return cast(NatsClient, connection.client)


@dataclass(frozen=True)
class StreamSpec:
    """One producing context's stream: ``retail.<context>.v1.>`` by convention."""

    name: str
    subjects: Sequence[str]
    description: str = ""
    max_age_seconds: float = 30 * 24 * 3600
    # How long JetStream remembers Nats-Msg-Id values to drop republished duplicates.
    duplicate_window_seconds: float = 10 * 60
    max_bytes: int = -1

    def config(self, replicas: int) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            description=self.description or None,
            subjects=list(self.subjects),
            storage=StorageType.FILE,
            num_replicas=replicas,
            max_age=self.max_age_seconds,
            duplicate_window=self.duplicate_window_seconds,
            discard=DiscardPolicy.OLD,
            max_bytes=self.max_bytes,
        )


def dead_letter_stream() -> StreamSpec:
    """Where consumers park messages they cannot handle, for people to inspect and replay."""
    return StreamSpec(
        name=DEAD_LETTER_STREAM,
        subjects=[f"{DEAD_LETTER_PREFIX}.>"],
        description="Messages a consumer gave up on, with the reason in their headers",
        max_age_seconds=90 * 24 * 3600,
    )


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer with explicit acks on one stream."""

    stream: str
    durable: str
    filter_subjects: Sequence[str] = field(default_factory=tuple)
    ack_wait_seconds: float = 30.0
    # Failed deliveries after which an event counts as stuck and each further failure is
    # logged at ERROR. It is still retried: events are facts and are never dead-lettered for
    # a handler's failure (see servicekit.consumer). The server-side limit stays unbounded.
    stuck_after_attempts: int = 5
    max_ack_pending: int = 1000
    description: str = ""
    # Deliveries fetched at once and applied in one transaction (servicekit.consumer); not part of the
    # server-side configuration.
    fetch_batch: int = 50

    def config(self) -> ConsumerConfig:
        subjects = list(self.filter_subjects)
        return ConsumerConfig(
            durable_name=self.durable,
            description=self.description or None,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_seconds,
            max_deliver=-1,
            max_ack_pending=self.max_ack_pending,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
        )


_COMPARED_STREAM_FIELDS = ("subjects", "max_age", "duplicate_window", "num_replicas", "max_bytes", "description")


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, *, replicas: int = 1) -> str:
    """Create or update a stream to match ``spec``; returns "created", "updated" or "unchanged"."""
    wanted = spec.config(replicas)
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(wanted)
        log.info("stream created", extra={"stream": spec.name})
        return "created"
    current = info.config
    if all(_same(getattr(current, key), getattr(wanted, key)) for key in _COMPARED_STREAM_FIELDS):
        return "unchanged"
    await js.update_stream(wanted)
    log.info("stream updated", extra={"stream": spec.name})
    return "updated"


async def ensure_consumer(js: JetStreamContext, spec: ConsumerSpec) -> None:
    """Create the durable consumer, or update it in place (the server keeps its position)."""
    await js.add_consumer(spec.stream, spec.config())


async def provision(
    js: JetStreamContext, streams: Sequence[StreamSpec], consumers: Sequence[ConsumerSpec], *, replicas: int = 1
) -> None:
    """Apply a service's declared streams (plus the dead-letter stream) and consumers."""
    for stream in [dead_letter_stream(), *streams]:
        await ensure_stream(js, stream, replicas=replicas)
    for consumer in consumers:
        await ensure_consumer(js, consumer)


def _same(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, list | tuple):
        return list(current or []) == list(wanted)
    if wanted is None:
        return current in (None, "", 0)
    return bool(current == wanted)
