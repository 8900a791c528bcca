"""Transactional outbox: events are rows written with the state change, published later.

A handler never publishes to NATS directly (that would be a dual write). It adds
:class:`OutboxEvent` rows in its own transaction; :class:`OutboxRelay` publishes them to
JetStream with ``Nats-Msg-Id`` = event id and marks them sent only after the publish ack.

Ordering: one relay per database is active at a time (a PostgreSQL advisory lock elects
it), rows are read in id order, and the rows of one aggregate are published one after
the other — a failed publish stops its aggregate until the next pass, so a later event of
that aggregate can never overtake an earlier one. Different aggregates go in parallel.

Throughput: a pass reads up to ``batch_size`` rows and has one publish in flight per
aggregate of the pass at the same time (so up to ``batch_size`` acks are awaited
together, each an asynchronous publish's ack future under a timeout), then marks every
acknowledged row of the pass in ONE ``UPDATE`` and counts the failed ones in one more.
The aggregates with one row in the pass (all of them, after a chain-wide price change) are
published one after the other without waiting and their acks awaited together under one
deadline, with no task per aggregate; an aggregate with several rows has a task that
publishes them in order, each after the previous one's ack.

Why one aggregate's events are not pipelined: the order of one aggregate is kept by the
relay, not by the consumers (they have no per-key sequence; their inbox only drops
repeats), so its next event is sent only once JetStream acknowledged the previous one.
Pipelining them on one connection would keep their order only while nothing fails — a
publish lost with a dropped connection, or refused while the stream comes back, lets the
next one land first, and the republished earlier event then lands after it. A
``Nats-Expected-Last-Subject-Sequence`` fence would need the sequence of an ack not yet
received. So an outbox whose rows belong to a few aggregates drains at one round trip per
event per aggregate, and slower still when other work keeps the event loop busy; one spread
over many aggregates drains at about the raw JetStream rate.

Choosing the aggregate is therefore the lever, and it is the writer's: an event's aggregate is
the narrowest thing whose order its consumers need, no wider. Pricing's ``PriceChanged`` was
once ``book:<store>`` (ten aggregates for a chain-wide change of 50,000 events: ten publishes
in flight, the relay at 0.2 of the raw JetStream rate); it is ``price:<store>:<sku>``, because
its consumers need one SKU's prices in a store in order and apply an event only above the
``price_book_version`` they hold for that store and SKU. Two other ways were weighed and not
taken: a ``Nats-Expected-Last-Subject-Sequence`` fence keeps a wide aggregate's order but still
waits for each ack (the fence is the previous ack's sequence), and JetStream's atomic batch
publish needs a stream created for it and a client that speaks it, and a batch of one
aggregate still waits for the previous batch's commit — a narrower aggregate needs neither.

Crash safety: a row is marked only after JetStream acknowledged it, so a ``kill -9`` at any
point leaves at most the in-flight rows unmarked; they are published once more on restart
and JetStream's duplicate window (keyed on ``Nats-Msg-Id``) drops the copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg
from google.protobuf.message import Message
from opentelemetry import propagate, trace
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, TEXT, TIMESTAMP, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.lifecycle import sleep_unless
from servicekit.settings import to_plain_url
from servicekit.telemetry import context_from_headers, current_trace_headers

log = logging.getLogger("servicekit.outbox")
_tracer = trace.get_tracer("servicekit.outbox")

NOTIFY_CHANNEL = "retail_outbox"
EVENT_TYPE_HEADER = "Retail-Event-Type"
OCCURRED_AT_HEADER = "Retail-Occurred-At"
AGGREGATE_HEADER = "Retail-Aggregate-Id"
MSG_ID_HEADER = "Nats-Msg-Id"


@dataclass(frozen=True)
class OutboxEvent:
    """One integration event: a protobuf payload bound for one NATS subject."""

    subject: str
    event_type: str
    aggregate_id: str
    payload: bytes
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of(
        cls,
        subject: str,
        message: Message,
        *,
        aggregate_id: str,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> OutboxEvent:
        """Build an event from a protobuf message; its full name becomes the event type."""
        return cls(
            subject=subject,
            event_type=message.DESCRIPTOR.full_name,
            aggregate_id=aggregate_id,
            payload=message.SerializeToString(deterministic=True),
            event_id=event_id or uuid.uuid4(),
            occurred_at=occurred_at or datetime.now(UTC),
        )


_INSERT_EVENTS = text("""
    INSERT INTO outbox (event_id, subject, event_type, aggregate_id, payload, headers, occurred_at)
    SELECT v.event_id, v.subject, v.event_type, v.aggregate_id, v.payload, CAST(:headers AS jsonb), v.occurred_at
    FROM unnest(CAST(:event_ids AS uuid[]), CAST(:subjects AS text[]), CAST(:event_types AS text[]),
                CAST(:aggregate_ids AS text[]), CAST(:payloads AS bytea[]), CAST(:occurred_at AS timestamptz[]))
         WITH ORDINALITY AS v(event_id, subject, event_type, aggregate_id, payload, occurred_at, position)
    ORDER BY v.position
""").bindparams(
    bindparam("event_ids", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("subjects", type_=ARRAY(TEXT)),
    bindparam("event_types", type_=ARRAY(TEXT)),
    bindparam("aggregate_ids", type_=ARRAY(TEXT)),
    bindparam("payloads", type_=ARRAY(BYTEA)),
    bindparam("occurred_at", type_=ARRAY(TIMESTAMP(timezone=True))),
)


async def add_to_outbox(session: AsyncSession, events: Iterable[OutboxEvent]) -> None:
    """Write events in the session's transaction, carrying the caller's trace context.

    One statement of arrays for all of them, in the order given (ids follow it, and the relay
    publishes an aggregate's rows in id order): a chain-wide price change writes thousands per
    transaction, which as a multi-row ``INSERT`` cost a bound parameter each per column."""
    batch = list(events)
    if not batch:
        return
    await session.execute(
        _INSERT_EVENTS,
        {
            "event_ids": [event.event_id for event in batch],
            "subjects": [event.subject for event in batch],
            "event_types": [event.event_type for event in batch],
            "aggregate_ids": [event.aggregate_id for event in batch],
            "payloads": [event.payload for event in batch],
            "occurred_at": [event.occurred_at for event in batch],
            "headers": json.dumps(current_trace_headers()),
        },
    )
    # Delivered at commit only, so the relay wakes exactly when there is something to read.
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


class JetStreamPublisher(Protocol):
    """The one call of nats-py's JetStreamContext the relay needs: a publish whose ack is a future."""

    async def publish_async(
        self,
        subject: str,
        payload: bytes = b"",
        wait_stall: float | None = None,
        stream: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> asyncio.Future[Any]: ...


@dataclass(frozen=True)
class _Row:
    id: int
    event_id: uuid.UUID
    subject: str
    event_type: str
    aggregate_id: str
    payload: bytes
    headers: dict[str, str]
    occurred_at: datetime


@dataclass
class RelayStats:
    published: int = 0
    failed: int = 0
    passes: int = 0


class OutboxRelay:
    """Publishes unsent outbox rows to JetStream; one active relay per database."""

    def __init__(
        self,
        database_url: str,
        jetstream: JetStreamPublisher,
        *,
        lock_key: int = 0x4F55_5442_4F58,  # "OUTBOX"
        batch_size: int = 500,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        max_backoff: float = 10.0,
        retention: timedelta = timedelta(days=3),
    ) -> None:
        self._database_url = to_plain_url(database_url)
        self._js = jetstream
        self._lock_key = lock_key
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._publish_timeout = publish_timeout
        self._max_backoff = max_backoff
        self._retention = retention
        self._wakeup = asyncio.Event()
        self.stats = RelayStats()
        self.is_leader = False

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set, reconnecting to PostgreSQL with backoff."""
        backoff = 0.1
        while not stop.is_set():
            try:
                await self._run_connected(stop)
                backoff = 0.1
            except Exception as exc:  # database gone, or anything unforeseen: never stop relaying
                self.is_leader = False
                log.warning("outbox relay interrupted; reconnecting", extra={"error": f"{type(exc).__name__}: {exc}"})
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, self._max_backoff)

    async def _run_connected(self, stop: asyncio.Event) -> None:
        connection = await asyncpg.connect(self._database_url)
        try:
            # Session-level lock: held for as long as this connection lives, released if we die.
            while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                if await sleep_unless(stop, self._poll_interval):
                    return
            self.is_leader = True
            await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
            backoff = 0.05
            last_prune = datetime.now(UTC) - timedelta(hours=1)
            while not stop.is_set():
                self._wakeup.clear()
                published, failed = await self.publish_pending(connection)
                if failed:
                    # JetStream is unhappy: back off, but keep the rows (they stay unpublished).
                    await sleep_unless(stop, backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                backoff = 0.05
                if published >= self._batch_size:
                    continue  # more rows are probably waiting
                if datetime.now(UTC) - last_prune > timedelta(minutes=10):
                    await self.prune(connection)
                    last_prune = datetime.now(UTC)
                await self._wait_for_work(stop)
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2)

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=self._poll_interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def publish_pending(self, connection: asyncpg.Connection) -> tuple[int, int]:
        """One pass over the oldest unsent rows; returns (published, failed)."""
        records = await connection.fetch(
            """
            SELECT id, event_id, subject, event_type, aggregate_id, payload, headers, occurred_at
            FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1
            """,
            self._batch_size,
        )
        if not records:
            return 0, 0
        rows = [_row(record) for record in records]
        by_aggregate: dict[str, list[_Row]] = {}
        for row in rows:
            by_aggregate.setdefault(row.aggregate_id, []).append(row)
        alone = [group[0] for group in by_aggregate.values() if len(group) == 1]
        ordered = [group for group in by_aggregate.values() if len(group) > 1]
        outcomes = await asyncio.gather(
            self._publish_side_by_side(alone), *(self._publish_in_order(group) for group in ordered)
        )
        published_ids = [row_id for sent, _ in outcomes for row_id in sent]
        failures = [failure for _, failed in outcomes for failure in failed]
        if published_ids:
            await self._mark_published(connection, published_ids)
        if failures:
            await connection.execute(
                """
                UPDATE outbox SET attempts = attempts + 1, last_error = failed.error
                FROM unnest($1::bigint[], $2::text[]) AS failed (id, error) WHERE outbox.id = failed.id
                """,
                [row_id for row_id, _ in failures],
                [error[:500] for _, error in failures],
            )
        self.stats.passes += 1
        self.stats.published += len(published_ids)
        self.stats.failed += len(failures)
        if failures:
            log.warning(
                "outbox publish failed; rows stay queued",
                extra={"failed": len(failures), "published": len(published_ids), "error": failures[0][1][:200]},
            )
        return len(published_ids), len(failures)

    async def _mark_published(self, connection: asyncpg.Connection, row_ids: list[int]) -> None:
        await connection.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", row_ids)

    async def _publish_in_order(self, rows: Sequence[_Row]) -> tuple[list[int], list[tuple[int, str]]]:
        sent: list[int] = []
        for row in rows:
            try:
                await self._publish(row)
            except Exception as exc:
                return sent, [(row.id, f"{type(exc).__name__}: {exc}")]
            sent.append(row.id)
        return sent, []

    async def _publish_side_by_side(self, rows: Sequence[_Row]) -> tuple[list[int], list[tuple[int, str]]]:
        """Rows of different aggregates, one each: all published, then their acks awaited together
        under one deadline (an ack not in by then fails its row, which stays queued)."""
        started: list[tuple[_Row, trace.Span, asyncio.Future[Any]]] = []
        failures: list[tuple[int, str]] = []
        try:
            for row in rows:
                span = _publish_span(row)
                try:
                    ack = await self._js.publish_async(row.subject, row.payload, headers=_headers(row, span))
                except Exception as exc:
                    _failed(span, exc)
                    span.end()
                    failures.append((row.id, f"{type(exc).__name__}: {exc}"))
                    continue
                started.append((row, span, ack))
            if started:
                await asyncio.wait([ack for _, _, ack in started], timeout=self._publish_timeout)
        finally:  # whatever is not acknowledged by now (the deadline passed, or the relay is stopping) fails
            for _, _, ack in started:
                ack.cancel()
        sent: list[int] = []
        for row, span, ack in started:
            error = TimeoutError() if ack.cancelled() else ack.exception()
            if error is None:
                sent.append(row.id)
            else:
                _failed(span, error)
                failures.append((row.id, f"{type(error).__name__}: {error}"))
            span.end()
        return sent, failures

    async def _publish(self, row: _Row) -> None:
        span = _publish_span(row)
        try:
            headers = _headers(row, span)
            # The ack future is awaited under asyncio.timeout (a timer that cancels it), not through
            # the request path's wait_for: one event-loop turn less per event, which is what an
            # aggregate's events wait on in a busy service (each waits for the previous ack).
            async with asyncio.timeout(self._publish_timeout):
                ack = await self._js.publish_async(row.subject, row.payload, headers=headers)
                await ack
        except BaseException as exc:
            _failed(span, exc)
            raise
        finally:
            span.end()

    async def prune(self, connection: asyncpg.Connection) -> int:
        """Delete rows published longer ago than the retention period, in small batches."""
        deleted_total = 0
        while True:
            status = await connection.execute(
                """
                DELETE FROM outbox WHERE id IN (
                    SELECT id FROM outbox WHERE published_at < now() - $1::interval LIMIT 5000)
                """,
                self._retention,
            )
            deleted = int(status.split()[-1])
            deleted_total += deleted
            if deleted < 5000:
                return deleted_total


def _publish_span(row: _Row) -> trace.Span:
    # start_span, not start_as_current_span: the span is the publish's parent only through the
    # headers it injects, so nothing needs attaching to the running context (a third of the
    # per-event cost when it was done the other way).
    return _tracer.start_span(
        f"publish {row.subject}",
        context=context_from_headers(row.headers),
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": row.subject,
            "messaging.message.id": str(row.event_id),
        },
    )


def _headers(row: _Row, span: trace.Span) -> dict[str, str]:
    headers = {
        MSG_ID_HEADER: str(row.event_id),
        EVENT_TYPE_HEADER: row.event_type,
        OCCURRED_AT_HEADER: row.occurred_at.isoformat(),
        AGGREGATE_HEADER: row.aggregate_id,
    }
    propagate.inject(headers, context=trace.set_span_in_context(span))
    return headers


def _failed(span: trace.Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def _row(record: asyncpg.Record) -> _Row:
    headers = record["headers"]
    if isinstance(headers, str):  # asyncpg returns jsonb as text unless a codec is set
        headers = json.loads(headers)
    return _Row(
        id=record["id"],
        event_id=record["event_id"],
        subject=record["subject"],
        event_type=record["event_type"],
        aggregate_id=record["aggregate_id"],
        payload=bytes(record["payload"]),
        headers=dict(headers or {}),
        occurred_at=record["occurred_at"],
    )
