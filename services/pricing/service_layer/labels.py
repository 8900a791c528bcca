"""Shelf labels: the registry, pushing each label's content to its store's station, following
every push to its acknowledgement, and the parity audit.

Three rounds run side by side, each safe to run on every replica:

* :meth:`LabelSync.push_due` claims due labels (pending, or failed and past their backoff),
  commits the claim, then pushes them per store, stations in parallel, each call bounded by
  the station's timeout: a slow, failing or garbage-answering station fails its own labels
  (retried with backoff, then given up and reported), never the other stores'. What the
  round's stations answered is recorded in one transaction once every station of the round
  answered (or timed out): one commit per round, not one per store. A round that cannot record
  does not cancel the rounds still pushing (see :meth:`LabelSync._push_round`).
* :meth:`LabelSync.poll_sent` asks stations what their sent labels show: the content that
  was pushed → acknowledged; a per-label failure → failed; no answer within the ack timeout
  → failed (pushed again; a tag that was asleep simply gets it again).
* :meth:`LabelSync.refresh_status` reads every label's online state and battery; a label
  that comes back online with content it never confirmed is made pending again, so a label
  that was offline during a price change is caught up when it returns.

A given-up label stays reported (in the parity audit and by one ``LabelSyncGivenUp``) and is
still pushed once every ``given_up_retry_seconds``: when the station itself was down longer
than the backoff, its labels never went offline in its tag database, so only this slow retry
brings them back in step before their prices next change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import chain
from typing import NamedTuple

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from services.pricing.adapters import book_entries, label_store, pricing_store
from services.pricing.adapters import integration_events as events
from services.pricing.adapters.esl.base import LabelPush, LabelStation, PushState, StationUnavailable, open_station
from services.pricing.adapters.label_store import Failure, LabelRow, Mismatch, Status
from services.pricing.adapters.pricing_store import StoreRow
from services.pricing.domain.catalogue import validate_sku
from services.pricing.service_layer.book import label_content
from services.pricing.service_layer.pricing import NotListed, UnknownSku, UnknownStore

log = logging.getLogger("pricing.labels")
Clock = Callable[[], datetime]
LABEL_STATES = ("pending", "sent", "acknowledged", "failed", "given_up")
_LABEL_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
_TEMPLATE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
STATUS_BATCH = 1000


class StationAnswers(NamedTuple):
    """What one store's station answered about some labels, to be recorded."""

    store_id: str
    acknowledged: Sequence[tuple[str, str]] = ()
    tickets: Sequence[tuple[str, str, str]] = ()
    failures: Sequence[Failure] = ()
    statuses: Sequence[Status] = ()


@dataclass(frozen=True)
class LabelPolicy:
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 600.0
    max_attempts: int = 6
    given_up_retry_seconds: float = 1800.0
    ack_timeout_seconds: float = 900.0  # above a tag's check-in interval (10 minutes by default)
    ack_deadline_seconds: float = 1200.0
    station_timeout_seconds: float = 10.0
    push_batch: int = 1000
    push_rounds: int = 4  # claims of push_batch being pushed at once
    api_key: str = ""


@dataclass(frozen=True)
class Audit:
    store_id: str
    label_count: int
    mismatch_count: int
    mismatch_rate: Decimal
    deadline_seconds: int
    mismatches: list[Mismatch]
    next_label: str


class Stations:
    """One adapter per (kind, URL), opened on first use and kept (they hold connection pools)."""

    def __init__(self, policy: LabelPolicy) -> None:
        self._policy = policy
        self._open: dict[tuple[str, str], LabelStation] = {}

    def of(self, store: StoreRow) -> LabelStation | None:
        if not store.label_station_kind:
            return None
        key = (store.label_station_kind, store.label_station_url)
        station = self._open.get(key)
        if station is None:
            options = (
                {"api_key": self._policy.api_key}
                if store.label_station_kind == "batch" and self._policy.api_key
                else {}
            )
            station = open_station(*key, timeout=self._policy.station_timeout_seconds, **options)
            self._open[key] = station
        return station

    async def close(self) -> None:
        stations, self._open = list(self._open.values()), {}
        for station in stations:
            await station.close()


class LabelSync:
    def __init__(
        self, unit_of_work: Callable[[], UnitOfWork], stations: Stations, policy: LabelPolicy, *, clock: Clock
    ) -> None:
        self._uow = unit_of_work
        self._stations = stations
        self._policy = policy
        self._clock = clock

    # -- registry ----------------------------------------------------------------------------

    async def put_label(
        self, uow: UnitOfWork, store_id: str, label_id: str, sku: str, template: str
    ) -> tuple[LabelRow, bool]:
        if not label_id or len(label_id) > 64 or not set(label_id) <= _LABEL_ID_CHARS:
            raise InvalidArgument(
                "label_id must be 1-64 letters, digits, '.', '_', ':' or '-'", details={"field": "label_id"}
            )
        template = template or "standard"
        if len(template) > 40 or not set(template) <= _TEMPLATE_CHARS:
            raise InvalidArgument(
                "template must be 1-40 lower-case letters, digits, '_' or '-'", details={"field": "template"}
            )
        validate_sku(sku)
        store = await pricing_store.get_store(uow.session, store_id)
        if store is None:
            raise UnknownStore(f"unknown store {store_id}", details={"store_id": store_id})
        item = await pricing_store.share_lock_item(uow.session, sku)  # no book refresh of the SKU meanwhile
        if item is None:
            raise UnknownSku(f"unknown SKU {sku}", details={"sku": sku})
        if not item.item.sellable_in(store_id):
            raise NotListed(f"SKU {sku} is not in the catalogue of store {store_id}", details={"sku": sku})
        entry = (await book_entries.book_rows(uow.session, [sku], [store_id])).get((store_id, sku))
        content = None
        if entry is not None and not entry.removed:
            content = label_content(book_entries.decode(entry.entry), template)
        return await label_store.put_label(uow.session, store_id, label_id, sku, template, content, self._clock())

    async def list_labels(self, store_id: str, state: str, after_label: str, limit: int) -> list[LabelRow]:
        if state and state not in LABEL_STATES:
            raise InvalidArgument(f"state must be one of {', '.join(LABEL_STATES)}", details={"field": "state"})
        async with self._uow() as uow:
            await self._store(uow, store_id)
            return await label_store.list_labels(uow.session, store_id, state, after_label, limit)

    async def audit(self, store_id: str, after_label: str, limit: int) -> Audit:
        deadline_seconds = int(self._policy.ack_deadline_seconds)
        deadline = self._clock() - timedelta(seconds=self._policy.ack_deadline_seconds)
        async with self._uow() as uow:
            await self._store(uow, store_id)
            total, failing = await label_store.mismatch_counts(uow.session, store_id, deadline)
            found = await label_store.mismatches(uow.session, store_id, deadline, after_label, limit + 1)
        rate = (Decimal(failing) / Decimal(total)).quantize(Decimal("0.0001"), ROUND_HALF_UP) if total else Decimal(0)
        next_label = found[limit - 1].label.label_id if len(found) > limit else ""
        return Audit(store_id, total, failing, rate, deadline_seconds, found[:limit], next_label)

    async def _store(self, uow: UnitOfWork, store_id: str) -> StoreRow:
        store = await pricing_store.get_store(uow.session, store_id)
        if store is None:
            raise UnknownStore(f"unknown store {store_id}", details={"store_id": store_id})
        return store

    # -- sync rounds -------------------------------------------------------------------------

    async def push_due(self) -> int:
        """Push every due label, a claim of ``push_batch`` at a time; the number claimed.

        Up to ``push_rounds`` claims are pushed at once: the next batch is claimed and pushed while
        the stations still answer the previous ones (a round waits for no other store, and no other
        round), except that a round holding a label that an earlier round still pushes (its content
        changed again meanwhile) pushes only once that earlier push was answered, so a station never
        gets a label's newer content before its older."""
        claimed = 0
        failed: list[Exception] = []
        rounds: list[tuple[frozenset[tuple[str, str]], asyncio.Task[None]]] = []
        async with asyncio.TaskGroup() as group:
            while not failed:
                rounds = [(keys, task) for keys, task in rounds if not task.done()]
                if len(rounds) >= self._policy.push_rounds:
                    await asyncio.wait([task for _, task in rounds], return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    labels, stores = await self._claim()
                except Exception as exc:  # the rounds in flight finish first (below)
                    failed.append(exc)
                    break
                claimed += len(labels)
                if labels:
                    keys = frozenset((label.store_id, label.label_id) for label in labels)
                    earlier = [task for other, task in rounds if not keys.isdisjoint(other)]
                    round_ = self._push_round(labels, stores, earlier, failed)
                    rounds.append((keys, group.create_task(round_)))
                if len(labels) < self._policy.push_batch:
                    break
        if failed:
            raise failed[0]
        return claimed

    async def _claim(self) -> tuple[list[LabelRow], dict[str, StoreRow]]:
        async with self._uow() as uow:
            claimed = await label_store.claim_due(uow.session, self._clock(), self._policy.push_batch)
            stores = {store.store_id: store for store in await pricing_store.all_stores(uow.session)}
            await uow.commit()
        return claimed, stores

    async def _push_round(
        self,
        claimed: list[LabelRow],
        stores: dict[str, StoreRow],
        earlier: list[asyncio.Task[None]],
        failed: list[Exception],
    ) -> None:
        """Push a claim and record the answers. A failure is kept in ``failed``, not raised: raised,
        it would cancel the other rounds mid-push, and labels claimed but never pushed would wait
        out the acknowledgement timeout. Labels pushed but not recorded are confirmed later: by
        what they show (a batch station), or pushed again after that timeout (OpenEPaperLink,
        whose acknowledgement needs the ticket)."""
        if earlier:
            await asyncio.wait(earlier)
        by_store: dict[str, list[LabelRow]] = {}
        for label in claimed:
            by_store.setdefault(label.store_id, []).append(label)
        try:
            answers = await asyncio.gather(
                *(self._push_store(stores[store_id], labels) for store_id, labels in by_store.items())
            )
            await self.record_answers(answers)
        except Exception as exc:
            failed.append(exc)

    async def _push_store(self, store: StoreRow, labels: list[LabelRow]) -> StationAnswers:
        station = self._stations.of(store)
        pushes = [
            LabelPush(label.label_id, label.desired, label.desired_digest or "")
            for label in labels
            if label.desired is not None
        ]
        digests = {label.label_id: label.sent_digest or "" for label in labels}
        acknowledged: list[tuple[str, str]] = []
        tickets: list[tuple[str, str, str]] = []
        failures: list[Failure] = []
        if station is None:
            failures = [
                Failure(push.label_id, digests[push.label_id], "the store has no label station") for push in pushes
            ]
        else:
            try:
                results = await station.push(pushes)
            except StationUnavailable as exc:
                failures = [
                    Failure(push.label_id, digests[push.label_id], f"station unavailable: {exc}") for push in pushes
                ]
            except Exception as exc:  # an adapter bug must not stop the other stores
                log.exception("label station push failed", extra={"store_id": store.store_id})
                failures = [Failure(push.label_id, digests[push.label_id], f"push failed: {exc}") for push in pushes]
            else:
                for result in results:
                    digest = digests.get(result.label_id, "")
                    if result.state is PushState.ACKNOWLEDGED:
                        acknowledged.append((result.label_id, digest))
                    elif result.state is PushState.ACCEPTED:
                        tickets.append((result.label_id, digest, result.ticket))
                    else:
                        failures.append(Failure(result.label_id, digest, result.error or "refused by the station"))
        return StationAnswers(store.store_id, acknowledged=acknowledged, tickets=tickets, failures=failures)

    async def poll_sent(self) -> int:
        """Ask every station what its sent labels show now; the number of labels asked about."""
        async with self._uow() as uow:
            store_ids = await label_store.stores_with_sent(uow.session)
            stores = {store.store_id: store for store in await pricing_store.all_stores(uow.session)}
        counts = await asyncio.gather(
            *(self._poll_store(stores[store_id]) for store_id in store_ids if store_id in stores)
        )
        return sum(counts)

    async def _poll_store(self, store: StoreRow) -> int:
        station = self._stations.of(store)
        asked = 0
        after = ""
        while True:
            async with self._uow() as uow:
                sent = await label_store.sent_labels(uow.session, store.store_id, STATUS_BATCH, after)
            if not sent:
                return asked
            asked += len(sent)
            after = sent[-1].label_id
            now = self._clock()
            timeout = timedelta(seconds=self._policy.ack_timeout_seconds)
            acknowledged: list[tuple[str, str]] = []
            failures: list[Failure] = []
            statuses: list[Status] = []
            if station is not None:
                try:
                    # A label whose push has not recorded its ticket yet (or never will: the pusher
                    # stopped) is asked about without one: the station then reports what it shows.
                    answers = await station.status([label.label_id for label in sent], [label.ticket for label in sent])
                except StationUnavailable as exc:
                    log.warning("label station unavailable", extra={"store_id": store.store_id, "error": str(exc)})
                    answers = []
                except Exception:
                    log.exception("label station status failed", extra={"store_id": store.store_id})
                    answers = []
                by_id = {label.label_id: label for label in sent}
                for answer in answers:
                    label = by_id.get(answer.label_id)
                    if label is None:
                        continue
                    statuses.append((label.label_id, answer.online, answer.battery_mv, answer.last_seen))
                    if answer.acknowledged_digest is not None and answer.acknowledged_digest == label.sent_digest:
                        acknowledged.append((label.label_id, answer.acknowledged_digest))
                    elif answer.error and not answer.pending:
                        failures.append(Failure(label.label_id, label.sent_digest or "", answer.error))
            answered = {label_id for label_id, _ in acknowledged} | {failure.label_id for failure in failures}
            for label in sent:
                if label.label_id not in answered and label.sent_at is not None and now - label.sent_at >= timeout:
                    failures.append(Failure(label.label_id, label.sent_digest or "", "not acknowledged in time"))
            await self.record_answers(
                [StationAnswers(store.store_id, acknowledged=acknowledged, failures=failures, statuses=statuses)]
            )
            if len(sent) < STATUS_BATCH:
                return asked

    async def refresh_status(self) -> int:
        """Read every label's online state and battery from its station; the number refreshed."""
        async with self._uow() as uow:
            stores = [store for store in await pricing_store.all_stores(uow.session) if store.label_station_kind]
        counts = await asyncio.gather(*(self._refresh_store(store) for store in stores))
        return sum(counts)

    async def _refresh_store(self, store: StoreRow) -> int:
        station = self._stations.of(store)
        if station is None:
            return 0
        refreshed = 0
        after = ""
        while True:
            async with self._uow() as uow:
                label_ids = await label_store.label_ids_of_store(uow.session, store.store_id, after, STATUS_BATCH)
            if not label_ids:
                return refreshed
            after = label_ids[-1]
            try:
                answers = await station.status(label_ids)
            except Exception as exc:
                log.warning("label station status failed", extra={"store_id": store.store_id, "error": str(exc)})
                return refreshed
            statuses = [(a.label_id, a.online, a.battery_mv, a.last_seen) for a in answers]
            await self.record_answers([StationAnswers(store.store_id, statuses=statuses)])
            refreshed += len(statuses)
            if len(label_ids) < STATUS_BATCH:
                return refreshed

    async def record_answers(self, answers: Sequence[StationAnswers]) -> None:
        """What stations answered, every store's in one transaction (a push round's stores answer
        together: one commit for the round, not one per store). The labels are locked first, all
        at once and in the one order of every label writer, so that a push round and an
        acknowledgement round recording the same labels never deadlock (see
        :func:`label_store.lock_answered`)."""
        now = self._clock()
        async with self._uow() as uow:
            locked = await label_store.lock_answered(
                uow.session,
                answered=[
                    (answer.store_id, label_id)
                    for answer in answers
                    for label_id in chain(
                        (label_id for label_id, _ in answer.acknowledged),
                        (label_id for label_id, _, _ in answer.tickets),
                        (failure.label_id for failure in answer.failures),
                    )
                ],
                reported=[(answer.store_id, status) for answer in answers for status in answer.statuses],
            )
            for answer in answers:
                await self._record_in(uow, answer, locked, now)
            await uow.commit()

    async def _record_in(
        self, uow: UnitOfWork, answer: StationAnswers, locked: set[tuple[str, str]], now: datetime
    ) -> None:
        store_id, acknowledged, tickets, failures, statuses = answer
        await label_store.record_tickets(uow.session, store_id, tickets)
        await label_store.record_acknowledged(uow.session, store_id, acknowledged, now)
        given_up = await label_store.record_failures(
            uow.session,
            store_id,
            failures,
            now,
            retry_base=self._policy.retry_base_seconds,
            retry_max=self._policy.retry_max_seconds,
            max_attempts=self._policy.max_attempts,
            given_up_retry=self._policy.given_up_retry_seconds,
        )
        await label_store.record_status(
            uow.session, store_id, [status for status in statuses if (store_id, status[0]) in locked], now
        )
        for label in given_up:
            log.warning(
                "label given up",
                extra={"store_id": store_id, "label_id": label.label_id, "error": label.last_error},
            )
            uow.publish(
                events.label_sync_given_up(
                    store_id=store_id,
                    label_id=label.label_id,
                    sku=label.sku,
                    attempts=label.attempts,
                    last_error=label.last_error,
                    at=now,
                )
            )
