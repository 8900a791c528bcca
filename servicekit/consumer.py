"""Event consumer runner: durable pull consumer, inbox, bounded redelivery, dead letters.

For each message the runner opens a unit of work, claims the event id in the ``inbox``
table, runs the handler and commits both together, then acks. A redelivered event finds
its inbox row and is acked without running the handler again, so the effect happens
exactly once although delivery is at-least-once. Two deliveries racing each other
serialise on the inbox row's primary key.

Group commit: the deliveries of one fetch are applied in ONE transaction (their inbox rows
and every handler's effects), then acked, so a backlog drains at the rate of a batch per
commit rather than a commit per event. If anything in that transaction fails, it is rolled
back as a whole and the batch is handled again one delivery at a time, so a failing event
gets exactly the per-event treatment below and never blocks or repeats the others.

Batch handlers: a route registered with ``batch=`` (:meth:`EventHandlers.on`) gets the fresh
events of a fetch in one call (consecutive deliveries of its type; the inbox claims them in
one set-based statement first, so a redelivered or repeated event never reaches it), so it
can apply them with set-based SQL. Its one-event ``handler`` is what the one-by-one fallback
runs, so the two must leave the same effects.

The rule every consumer follows — **a dead letter is for a message that cannot be read,
never for a fact the business must reconcile**:

- A message that cannot be read — no event id, a payload that does not decode, or one a
  handler declares meaningless by raising :class:`PoisonMessage` (say, a catalogue item
  without a SKU) — goes to the dead-letter stream at once, with the reason in its headers,
  and the consumer carries on with the next one.
- A readable event is a fact another context committed to (a sale happened at a till). Its
  handler applies what it can and *records* what it cannot as data of its own service, for
  people to reconcile: inventory keeps a sale line of an unknown SKU as a discrepancy and
  applies it once the SKU exists; member keeps a sale naming an unknown member as an
  anonymous fact. It never raises because of what the event says.
- What a handler still raises is something a retry or a fix cures (a deadlock, a bug, a
  constraint the code got wrong). The event is retried with growing delays (``nak`` with a
  delay, at most ``retry_max_delay`` apart) for as long as it takes — never parked, so the
  fact is applied as soon as the cause is gone. From the spec's ``stuck_after_attempts`` on
  each failure is logged at ERROR as ``event stuck`` (and counted once in ``stats.stuck``) so
  that someone looks; the other events keep flowing meanwhile.

New consumers (marketing's coupon redemptions, supply's settlement lines) follow the same
rule: decide per field what "cannot apply" means in the business, record it, and test that
such an event is recorded and nothing is dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import FetchTimeoutError
from opentelemetry import trace
from sqlalchemy import text

from servicekit.db import UnitOfWork, is_infrastructure_failure
from servicekit.lifecycle import sleep_unless
from servicekit.messaging import DEAD_LETTER_PREFIX, ConsumerSpec
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER, OCCURRED_AT_HEADER
from servicekit.telemetry import context_from_headers

log = logging.getLogger("servicekit.consumer")
_tracer = trace.get_tracer("servicekit.consumer")

MessageT = TypeVar("MessageT", bound=Message)
UowT = TypeVar("UowT", bound=UnitOfWork)


class PoisonMessage(Exception):
    """The message cannot be read (missing id, undecodable payload, or a handler says it is meaningless).

    The only failure that dead-letters: raise it from a handler only for a message no fix could ever apply.
    """


@dataclass(frozen=True)
class InboundEvent(Generic[MessageT]):
    """A decoded event as a handler sees it."""

    event_id: str
    subject: str
    event_type: str
    message: MessageT
    occurred_at: datetime | None
    attempt: int
    headers: Mapping[str, str]


Handler = Callable[[InboundEvent[MessageT], UowT], Awaitable[None]]
BatchHandler = Callable[[Sequence[InboundEvent[MessageT]], UowT], Awaitable[None]]


@dataclass(frozen=True)
class _Route(Generic[MessageT, UowT]):
    message_type: type[MessageT]
    handler: Handler[MessageT, UowT]
    batch: BatchHandler[MessageT, UowT] | None = None


class EventHandlers(Generic[UowT]):
    """Which handler runs for which event type (the protobuf full name in the headers)."""

    def __init__(self) -> None:
        self._routes: dict[str, _Route[Message, UowT]] = {}

    def on(
        self,
        message_type: type[MessageT],
        handler: Handler[MessageT, UowT],
        *,
        batch: BatchHandler[MessageT, UowT] | None = None,
    ) -> None:
        """``handler`` applies one event; ``batch``, when given, applies the events of one fetch at once.

        A batch handler gets the fresh events (their inbox rows already claimed, each event id
        once, in delivery order) of a run of consecutive deliveries of this type, in the batch's
        transaction, and must leave the same effects ``handler`` would, one event after the other.
        If it raises, the whole fetch is rolled back and handled again one delivery at a time
        with ``handler``, so a poison or failing event gets the per-event treatment.
        """
        route = _Route(message_type, handler, batch)
        self._routes[message_type.DESCRIPTOR.full_name] = route  # type: ignore[assignment]

    def route(self, event_type: str) -> _Route[Message, UowT] | None:
        return self._routes.get(event_type)


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    stuck: int = 0  # events whose handler failed stuck_after_attempts times (still being retried)
    ignored: int = 0
    handed_back: int = 0  # deliveries returned because our own database was unreachable


class EventConsumer(Generic[UowT]):
    """Runs one durable pull consumer until stopped."""

    def __init__(
        self,
        js: JetStreamContext,
        spec: ConsumerSpec,
        handlers: EventHandlers[UowT],
        unit_of_work: Callable[[], UowT],
        *,
        batch_size: int = 50,
        fetch_timeout: float = 1.0,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 30.0,
    ) -> None:
        self._js = js
        self.spec = spec
        self._handlers = handlers
        self._unit_of_work = unit_of_work
        self._batch_size = batch_size
        self._fetch_timeout = fetch_timeout
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self.stats = ConsumerStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and handle until ``stop`` is set; the batch in hand is finished first (drain).

        Losing NATS or PostgreSQL never ends the loop: it backs off and carries on when
        they return, and nothing is dead-lettered because of an outage.
        """
        backoff = 0.1
        while not stop.is_set():
            try:
                subscription = await self._js.pull_subscribe_bind(durable=self.spec.durable, stream=self.spec.stream)
            except Exception as exc:  # broker unreachable at start-up: keep trying
                log.warning("cannot bind consumer; retrying", extra={"consumer": self.spec.durable, "error": str(exc)})
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                await self._consume(subscription, stop)
            finally:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def _consume(self, subscription: JetStreamContext.PullSubscription, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                messages = await subscription.fetch(self._batch_size, timeout=self._fetch_timeout)
            except (FetchTimeoutError, TimeoutError):
                continue
            except Exception as exc:  # broker restarting, connection lost: wait and retry
                log.warning("fetch failed; retrying", extra={"consumer": self.spec.durable, "error": str(exc)})
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            if messages and not stop.is_set():
                messages = await self._handle_together(messages, stop)
            for index, message in enumerate(messages):
                if stop.is_set() or not await self.handle(message):
                    # Draining, or our database is unreachable: hand the rest back at once
                    # rather than after ack_wait, and (on an outage) pause before fetching again.
                    for unhandled in messages[index + (0 if stop.is_set() else 1) :]:
                        with contextlib.suppress(Exception):
                            await unhandled.nak()
                    if not stop.is_set():
                        await sleep_unless(stop, self._retry_base_delay)
                    break

    async def handle(self, message: Msg) -> bool:
        """Handle one delivery: effect + inbox in one transaction, then ack (or retry/park).

        Returns False when the service's own infrastructure failed (the message is handed
        back without counting against it), True otherwise.
        """
        headers = dict(message.headers or {})
        attempt = message.metadata.num_delivered if message.reply else 1
        started = time.perf_counter()
        with _tracer.start_as_current_span(
            f"consume {message.subject}",
            context=context_from_headers(headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.consumer.group.name": self.spec.durable,
                "messaging.destination.name": message.subject,
            },
        ):
            try:
                outcome = await self._apply(message, headers, attempt)
            except PoisonMessage as exc:
                await self._dead_letter(message, headers, attempt, f"poison: {exc}")
                return True
            except Exception as exc:
                if is_infrastructure_failure(exc):
                    log.warning(
                        "database unavailable; event handed back",
                        extra={**self._log_fields(message, attempt), "error": str(exc)},
                    )
                    self.stats.handed_back += 1
                    with contextlib.suppress(Exception):
                        await message.nak(delay=self._retry_base_delay)
                    return False
                # Growing delays, capped (the exponent too: an event may be retried for days).
                delay = min(self._retry_base_delay * 2 ** min(attempt - 1, 30), self._retry_max_delay)
                fields = {
                    **self._log_fields(message, attempt),
                    "error": f"{type(exc).__name__}: {exc}",
                    "retry_in_s": delay,
                }
                if attempt >= self.spec.stuck_after_attempts:
                    # Never dead-lettered: the fact waits here for its cause to be fixed, visibly.
                    if attempt == self.spec.stuck_after_attempts:
                        self.stats.stuck += 1
                    log.error(
                        "event stuck: its handler keeps failing; retrying until it succeeds",
                        extra=fields,
                        exc_info=attempt == self.spec.stuck_after_attempts,
                    )
                else:
                    log.warning("event handler failed; will retry", extra=fields)
                self.stats.retried += 1
                await message.nak(delay=delay)
                return True
            await message.ack()
            setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
            log.debug(
                "event %s",
                outcome,
                extra={**self._log_fields(message, attempt), "ms": round((time.perf_counter() - started) * 1000, 2)},
            )
            return True

    async def _handle_together(self, messages: list[Msg], stop: asyncio.Event) -> list[Msg]:
        """Apply a fetched batch in one transaction; returns the deliveries left to handle one by one.

        When ``stop`` is set midway, what was applied so far commits and the rest is
        returned unclaimed (the caller hands it back at once).
        """
        alone: list[Msg] = []
        together: list[tuple[Msg, InboundEvent[Message], _Route[Message, UowT]]] = []
        ignored: list[Msg] = []
        for message in messages:
            headers = dict(message.headers or {})
            try:
                decoded = self._decode(message, headers, message.metadata.num_delivered if message.reply else 1)
            except PoisonMessage:
                alone.append(message)  # parked by the one-by-one path, with its reason
                continue
            if decoded is None:
                ignored.append(message)
            else:
                together.append((message, *decoded))
        if not together or (len(together) == 1 and together[0][2].batch is None):
            return alone + [message for message, _, _ in together] + ignored
        try:
            async with self._unit_of_work() as uow:
                claimed = await uow.session.execute(
                    text(
                        "INSERT INTO inbox (consumer, event_id, subject)"
                        " SELECT :consumer, e.event_id, e.subject"
                        " FROM unnest(CAST(:event_ids AS text[]), CAST(:subjects AS text[])) AS e (event_id, subject)"
                        " ON CONFLICT DO NOTHING RETURNING event_id"
                    ),
                    {
                        "consumer": self.spec.durable,
                        "event_ids": [event.event_id for _, event, _ in together],
                        "subjects": [message.subject for message, _, _ in together],
                    },
                )
                fresh = {row.event_id for row in claimed}
                outcomes: list[str] = []
                # A run of consecutive fresh events whose route takes batches, applied at once.
                run: list[InboundEvent[Message]] = []
                run_route: _Route[Message, UowT] | None = None
                for message, event, route in together:
                    if outcomes and stop.is_set():  # draining: keep what is done, give the rest back
                        break
                    if run and route is not run_route:
                        await self._apply_run(run_route, run, uow)
                        run = []
                    if event.event_id not in fresh:
                        outcomes.append("duplicates")
                        continue
                    fresh.discard(event.event_id)  # the same event twice in one fetch runs once
                    if route.batch is not None:
                        run.append(event)
                        run_route = route
                        outcomes.append("handled")
                        continue
                    with _tracer.start_as_current_span(
                        f"consume {message.subject}",
                        context=context_from_headers(dict(event.headers)),
                        kind=trace.SpanKind.CONSUMER,
                        attributes={
                            "messaging.system": "nats",
                            "messaging.consumer.group.name": self.spec.durable,
                            "messaging.destination.name": message.subject,
                            "messaging.batch.message_count": len(together),
                        },
                    ):
                        await route.handler(event, uow)
                    outcomes.append("handled")
                if run:
                    await self._apply_run(run_route, run, uow)
                unstarted = [event.event_id for _, event, _ in together[len(outcomes) :] if event.event_id in fresh]
                if unstarted:
                    await uow.session.execute(
                        text("DELETE FROM inbox WHERE consumer = :consumer AND event_id = ANY(CAST(:ids AS text[]))"),
                        {"consumer": self.spec.durable, "ids": unstarted},
                    )
                await uow.commit()
        except Exception as exc:
            log.info(
                "a batch failed as a whole; handling its events one by one",
                extra={"consumer": self.spec.durable, "events": len(together), "error": f"{type(exc).__name__}: {exc}"},
            )
            return [message for message, _, _ in together] + alone + ignored
        for (message, _, _), outcome in zip(together, outcomes, strict=False):
            with contextlib.suppress(Exception):  # an ack lost here only means a redelivery the inbox absorbs
                await message.ack()
            setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        return [message for message, _, _ in together[len(outcomes) :]] + alone + ignored

    async def _apply_run(
        self, route: _Route[Message, UowT] | None, events: list[InboundEvent[Message]], uow: UowT
    ) -> None:
        """One batch handler call for a run of fresh events of one type (inside the batch's transaction)."""
        assert route is not None
        assert route.batch is not None
        with _tracer.start_as_current_span(
            f"consume {events[0].subject} batch",
            context=context_from_headers(dict(events[0].headers)),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.consumer.group.name": self.spec.durable,
                "messaging.destination.name": events[0].subject,
                "messaging.batch.message_count": len(events),
            },
        ):
            await route.batch(events, uow)

    def _decode(
        self, message: Msg, headers: dict[str, str], attempt: int
    ) -> tuple[InboundEvent[Message], _Route[Message, UowT]] | None:
        """The delivery as an event and its route; None for an event type this consumer ignores."""
        event_id = headers.get(MSG_ID_HEADER)
        if not event_id:
            raise PoisonMessage(f"no {MSG_ID_HEADER} header")
        event_type = headers.get(EVENT_TYPE_HEADER, "")
        route = self._handlers.route(event_type)
        if route is None:
            return None
        try:
            decoded = route.message_type.FromString(message.data)
        except DecodeError as exc:
            raise PoisonMessage(f"cannot decode {event_type}: {exc}") from exc
        event = InboundEvent(
            event_id=event_id,
            subject=message.subject,
            event_type=event_type,
            message=decoded,
            occurred_at=_parse_time(headers.get(OCCURRED_AT_HEADER)),
            attempt=attempt,
            headers=headers,
        )
        return event, route

    async def _apply(self, message: Msg, headers: dict[str, str], attempt: int) -> str:
        decoded = self._decode(message, headers, attempt)
        if decoded is None:
            return "ignored"  # an event type this consumer does not care about
        event, route = decoded
        async with self._unit_of_work() as uow:
            claimed = await uow.session.execute(
                text(
                    "INSERT INTO inbox (consumer, event_id, subject) VALUES (:consumer, :event_id, :subject) "
                    "ON CONFLICT DO NOTHING RETURNING 1"
                ),
                {"consumer": self.spec.durable, "event_id": event.event_id, "subject": message.subject},
            )
            if claimed.first() is None:
                return "duplicates"
            await route.handler(event, uow)
            await uow.commit()
        return "handled"

    async def _dead_letter(self, message: Msg, headers: dict[str, str], attempt: int, reason: str) -> None:
        subject = f"{DEAD_LETTER_PREFIX}.{self.spec.durable}"
        dead_headers = {
            **headers,
            "Retail-Dead-Letter-Reason": reason[:1000],
            "Retail-Original-Subject": message.subject,
            "Retail-Consumer": self.spec.durable,
            "Retail-Attempts": str(attempt),
        }
        # The dead letter keeps the original id so parking the same message twice stores it once.
        if MSG_ID_HEADER in headers:
            dead_headers[MSG_ID_HEADER] = f"{self.spec.durable}:{headers[MSG_ID_HEADER]}"
        else:
            dead_headers.pop(MSG_ID_HEADER, None)
        try:
            await self._js.publish(subject, message.data, headers=dead_headers)
        except Exception as exc:
            # Could not park it: leave it unacked so it comes back rather than vanish.
            log.error("dead-letter publish failed", extra={**self._log_fields(message, attempt), "error": str(exc)})
            await message.nak(delay=self._retry_max_delay)
            return
        log.error(
            "event dead-lettered",
            extra={**self._log_fields(message, attempt), "reason": reason[:300], "dead_letter_subject": subject},
        )
        await message.ack()
        self.stats.dead_lettered += 1

    def _log_fields(self, message: Msg, attempt: int) -> dict[str, object]:
        headers = message.headers or {}
        return {
            "consumer": self.spec.durable,
            "subject": message.subject,
            "event_id": headers.get(MSG_ID_HEADER),
            "attempt": attempt,
        }


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
