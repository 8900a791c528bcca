"""PostgreSQL persistence of the shelf-label registry and of every label's sync state.

A label row holds three contents by digest: ``desired`` (what it should show, set in the
same transaction as the book entry it follows), ``sent`` (what was last pushed to its
station) and ``acked`` (what it last confirmed showing). The state machine:
pending → sent → acknowledged, or failed → (retried after a backoff) → given_up. A new
desired content makes any label pending again with its attempts reset. Pushers claim due
labels with ``FOR UPDATE SKIP LOCKED`` and commit the claim before talking to a station,
so no row lock is held across the network, and two replicas never push the same label.
Every other write of many labels takes their row locks in one order, by store and label
(see :func:`lock_answered`), so that no two of them deadlock.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.pricing.adapters.esl.base import LabelContent

_COLUMNS = (
    "store_id, label_id, sku, template, state, desired, desired_digest, desired_price_fen, pending_since, attempts, "
    "next_attempt_at, last_error, ticket, sent_digest, sent_at, acked_digest, acked_price_fen, acked_at, online, "
    "battery_mv, last_seen"
)
# The same columns of the row aliased "l" (updates with FROM, joins).
_L_COLUMNS = ", ".join(f"l.{column.strip()}" for column in _COLUMNS.split(","))


class LabelRow(NamedTuple):
    """A label's row (a tuple: a push round claims a thousand, a chain-wide change fifty thousand)."""

    store_id: str
    label_id: str
    sku: str
    template: str
    state: str
    desired: LabelContent | None
    desired_digest: str | None
    desired_price_fen: int | None
    pending_since: datetime
    attempts: int
    next_attempt_at: datetime
    last_error: str
    ticket: str
    sent_digest: str | None
    sent_at: datetime | None
    acked_digest: str | None
    acked_price_fen: int | None
    acked_at: datetime | None
    online: bool
    battery_mv: int | None
    last_seen: datetime | None


def _content(raw: Any) -> LabelContent | None:
    if raw is None:
        return None
    data = json.loads(raw) if isinstance(raw, str) else raw
    return LabelContent(**data)


def _label(row: Any, desired: LabelContent | None = None) -> LabelRow:
    return LabelRow(
        store_id=row.store_id,
        label_id=row.label_id,
        sku=row.sku,
        template=row.template,
        state=row.state,
        desired=desired if desired is not None else _content(row.desired),
        desired_digest=row.desired_digest,
        desired_price_fen=row.desired_price_fen,
        pending_since=row.pending_since,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        ticket=row.ticket,
        sent_digest=row.sent_digest,
        sent_at=row.sent_at,
        acked_digest=row.acked_digest,
        acked_price_fen=row.acked_price_fen,
        acked_at=row.acked_at,
        online=row.online,
        battery_mv=row.battery_mv,
        last_seen=row.last_seen,
    )


_CONTENT_FIELDS = tuple(field.name for field in dataclasses.fields(LabelContent))


def _json(content: LabelContent | None) -> str | None:
    # The fields by name, not dataclasses.asdict (which deep-copies every value: a refresh stores thousands).
    if content is None:
        return None
    return json.dumps({name: getattr(content, name) for name in _CONTENT_FIELDS}, ensure_ascii=False)


@functools.lru_cache(maxsize=16_384)
def _shown(content: LabelContent, template: str) -> tuple[str, str]:
    """(stored JSON, digest) of the content in a label's template: after a chain-wide change every store's
    label of a SKU shows the same, so it is serialized and hashed once, not once per label."""
    shown = dataclasses.replace(content, template=template)
    return _json(shown) or "", shown.digest()


async def get_label(session: AsyncSession, store_id: str, label_id: str, *, lock: bool = False) -> LabelRow | None:
    suffix = " FOR UPDATE" if lock else ""
    row = (
        await session.execute(
            text(f"SELECT {_COLUMNS} FROM label WHERE store_id = :store AND label_id = :label{suffix}"),
            {"store": store_id, "label": label_id},
        )
    ).one_or_none()
    return _label(row) if row else None


async def put_label(
    session: AsyncSession,
    store_id: str,
    label_id: str,
    sku: str,
    template: str,
    content: LabelContent | None,
    now: datetime,
) -> tuple[LabelRow, bool]:
    """Link a label to a SKU with the content it should show; a label whose desired content
    does not change keeps its state (re-linking the same SKU is harmless)."""
    before = await get_label(session, store_id, label_id, lock=True)
    digest = None if content is None else content.digest()
    if before is not None and before.sku == sku and before.template == template and before.desired_digest == digest:
        return before, False
    row = (
        await session.execute(
            text(f"""
                INSERT INTO label (store_id, label_id, sku, template, state, desired, desired_digest,
                                   desired_price_fen, pending_since, attempts, next_attempt_at, created_at)
                VALUES (:store, :label, :sku, :template, 'pending', CAST(:desired AS jsonb), :digest, :price, :now, 0,
                        :now, :now)
                ON CONFLICT (store_id, label_id) DO UPDATE SET sku = EXCLUDED.sku, template = EXCLUDED.template,
                    state = 'pending', desired = EXCLUDED.desired, desired_digest = EXCLUDED.desired_digest,
                    desired_price_fen = EXCLUDED.desired_price_fen, pending_since = EXCLUDED.pending_since,
                    attempts = 0, next_attempt_at = EXCLUDED.next_attempt_at, last_error = ''
                RETURNING {_COLUMNS}
            """),
            {
                "store": store_id,
                "label": label_id,
                "sku": sku,
                "template": template,
                "desired": _json(content),
                "digest": digest,
                "price": None if content is None else content.price_fen,
                "now": now,
            },
        )
    ).one()
    return _label(row), before is None


async def set_desired(
    session: AsyncSession, contents: Sequence[tuple[str, str, LabelContent | None]], now: datetime
) -> int:
    """(store, SKU, content): give every label of the store showing the SKU its new content, in its own template.

    Set-based, whatever the number of labels: the templates in use are read (one row each, not
    one per label), the content is serialized and hashed once per (SKU, template), and one
    ``UPDATE`` joins it to the labels by store, SKU and template. A label relinked to another SKU
    meanwhile is not touched (that SKU's content is set already); a label's SKU or template
    cannot change under this call, as relinking takes the share lock of the item rows the
    caller holds for update."""
    by_key = {(store_id, sku): content for store_id, sku, content in contents}
    if not by_key:
        return 0
    store_ids = sorted({store_id for store_id, _ in by_key})
    skus = sorted({sku for _, sku in by_key})
    templates = (
        await session.execute(
            text("SELECT DISTINCT template FROM label WHERE store_id = ANY(:stores) AND sku = ANY(:skus)"),
            {"stores": store_ids, "skus": skus},
        )
    ).scalars()
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
    labels_store, labels_sku, labels_template, desired, digests, prices = columns
    for template in list(templates):
        for (store_id, sku), content in by_key.items():
            labels_store.append(store_id)
            labels_sku.append(sku)
            labels_template.append(template)
            if content is None:
                desired.append(None)
                digests.append(None)
                prices.append(None)
            else:
                shown, digest = _shown(content, template)
                desired.append(shown)
                digests.append(digest)
                prices.append(content.price_fen)
    if not labels_store:
        return 0
    # The labels are locked in the one order of every multi-label write (see lock_answered).
    result = await session.execute(
        text("""
            UPDATE label AS l SET desired = CAST(s.desired AS jsonb), desired_digest = s.digest,
                desired_price_fen = s.price, state = 'pending', attempts = 0, next_attempt_at = :now,
                pending_since = :now, last_error = ''
            FROM (
                SELECT d.store_id, d.label_id, v.desired, v.digest, v.price
                FROM label AS d
                JOIN unnest(CAST(:stores AS text[]), CAST(:skus AS text[]), CAST(:templates AS text[]),
                            CAST(:desired AS text[]), CAST(:digests AS text[]), CAST(:prices AS bigint[]))
                     AS v(store_id, sku, template, desired, digest, price)
                  ON d.store_id = v.store_id AND d.sku = v.sku AND d.template = v.template
                WHERE d.desired_digest IS DISTINCT FROM v.digest
                ORDER BY d.store_id, d.label_id
                FOR UPDATE OF d
            ) AS s
            WHERE l.store_id = s.store_id AND l.label_id = s.label_id
        """),
        {
            "stores": labels_store,
            "skus": labels_sku,
            "templates": labels_template,
            "desired": desired,
            "digests": digests,
            "prices": prices,
            "now": now,
        },
    )
    return int(getattr(result, "rowcount", 0))


# What a claim returns: the row, with its desired content as JSON text (decoded once per digest, below).
_CLAIMED_COLUMNS = _L_COLUMNS.replace("l.desired,", "CAST(l.desired AS text) AS desired,")


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[LabelRow]:
    """Mark up to ``limit`` due labels (with content and a station) as sent and return them.

    After a chain-wide change every store's labels of a SKU want the same content (same digest):
    it is decoded once per digest, not once per label (half a claim's cost was JSON decoding)."""
    rows = await session.execute(
        text(f"""
            UPDATE label AS l SET state = 'sent', attempts = l.attempts + 1, sent_digest = l.desired_digest,
                sent_price_fen = l.desired_price_fen, sent_at = :now, ticket = ''
            WHERE (l.store_id, l.label_id) IN (
                SELECT d.store_id, d.label_id FROM label d JOIN store s USING (store_id)
                WHERE d.state IN ('pending', 'failed', 'given_up') AND d.next_attempt_at <= :now
                  AND d.desired_digest IS NOT NULL
                  AND s.label_station_kind <> ''
                ORDER BY d.next_attempt_at LIMIT :limit FOR UPDATE OF d SKIP LOCKED)
            RETURNING {_CLAIMED_COLUMNS}
        """),
        {"now": now, "limit": limit},
    )
    contents: dict[str, LabelContent | None] = {}
    claimed: list[LabelRow] = []
    for row in rows:
        digest = row.desired_digest
        content = contents.get(digest)
        if content is None:
            content = contents[digest] = _content(row.desired)
        claimed.append(_label(row, content))
    return claimed


class SentLabel(NamedTuple):
    """What asking a station about a sent label needs (not its contents); a tuple, as every round
    of acknowledgements reads one per sent label."""

    label_id: str
    ticket: str
    sent_digest: str | None
    sent_at: datetime | None


async def sent_labels(session: AsyncSession, store_id: str, limit: int, after_label: str = "") -> list[SentLabel]:
    rows = await session.execute(
        text(
            "SELECT label_id, ticket, sent_digest, sent_at FROM label WHERE store_id = :store AND state = 'sent' "
            "AND label_id > :after ORDER BY label_id LIMIT :limit"
        ),
        {"store": store_id, "after": after_label, "limit": limit},
    )
    return [SentLabel(row.label_id, row.ticket, row.sent_digest, row.sent_at) for row in rows]


async def stores_with_sent(session: AsyncSession) -> list[str]:
    rows = await session.execute(text("SELECT DISTINCT store_id FROM label WHERE state = 'sent'"))
    return sorted(row.store_id for row in rows)


async def record_tickets(session: AsyncSession, store_id: str, tickets: Sequence[tuple[str, str, str]]) -> None:
    """(label, digest sent, ticket): remember what to poll with, if the label still waits for that content."""
    if not tickets:
        return
    await session.execute(
        text("""
            UPDATE label AS l SET ticket = v.ticket
            FROM unnest(CAST(:labels AS text[]), CAST(:digests AS text[]), CAST(:tickets AS text[]))
                 AS v(label_id, digest, ticket)
            WHERE l.store_id = :store AND l.label_id = v.label_id AND l.state = 'sent' AND l.sent_digest = v.digest
        """),
        {
            "store": store_id,
            "labels": [t[0] for t in tickets],
            "digests": [t[1] for t in tickets],
            "tickets": [t[2] for t in tickets],
        },
    )


async def record_acknowledged(
    session: AsyncSession, store_id: str, acknowledged: Sequence[tuple[str, str]], now: datetime
) -> int:
    """(label, digest confirmed): the label shows that content; acknowledged if it is still the desired one."""
    if not acknowledged:
        return 0
    result = await session.execute(
        text("""
            UPDATE label AS l SET acked_digest = v.digest, acked_at = :now,
                acked_price_fen = CASE WHEN l.desired_digest = v.digest THEN l.desired_price_fen
                                       ELSE l.sent_price_fen END,
                state = CASE WHEN l.desired_digest = v.digest THEN 'acknowledged' ELSE l.state END,
                last_error = CASE WHEN l.desired_digest = v.digest THEN '' ELSE l.last_error END,
                online = true, last_seen = :now
            FROM unnest(CAST(:labels AS text[]), CAST(:digests AS text[])) AS v(label_id, digest)
            WHERE l.store_id = :store AND l.label_id = v.label_id
              AND (l.desired_digest = v.digest OR l.sent_digest = v.digest)
              AND (l.acked_digest IS DISTINCT FROM v.digest
                   -- a revert: the label still shows what it last confirmed, and that is desired again
                   OR (l.state <> 'acknowledged' AND l.desired_digest = v.digest))
        """),
        {
            "store": store_id,
            "labels": [a[0] for a in acknowledged],
            "digests": [a[1] for a in acknowledged],
            "now": now,
        },
    )
    return int(getattr(result, "rowcount", 0))


# How far a label's stored last check-in may trail the station's report (see record_status).
LAST_SEEN_GRANULARITY = timedelta(seconds=60)
# A status report ``v`` that differs from the label's row ``l``: what record_status writes.
_STATUS_DIFFERS = """(l.online <> v.online
    OR (v.battery IS NOT NULL AND l.battery_mv IS DISTINCT FROM v.battery)
    OR (v.seen IS NOT NULL AND (l.last_seen IS NULL OR v.seen >= l.last_seen + CAST(:granularity AS interval))))"""

Status = tuple[str, bool, int | None, datetime | None]  # (label, online, battery in mV, last check-in)


async def lock_answered(
    session: AsyncSession, answered: Sequence[tuple[str, str]], reported: Sequence[tuple[str, Status]]
) -> set[tuple[str, str]]:
    """Lock, in one order, every label (store, label) a transaction recording station answers may
    write: the ``answered`` ones (a ticket, an acknowledgement or a failure) and those of the
    ``reported`` statuses that differ from their row (the others are not written: see
    record_status). Returns the reported labels locked; the transaction records only their
    statuses, and a status that changes meanwhile is recorded by the next round that reports it.

    Every statement or transaction writing many labels takes their row locks ordered by store
    and label (this one, and ``set_desired``), and a transaction takes them in one statement,
    before its writes, which then touch only locked rows. Without the one order two of them
    deadlock: a push round records its tickets in claim order while an acknowledgement round
    records the same labels in label order, and PostgreSQL rolls one back. Claims skip locked
    rows and never wait; a single label's write (its registration) is the last lock its
    transaction takes."""
    wanted: dict[tuple[str, str], tuple[bool, int | None, datetime | None] | None] = dict.fromkeys(answered)
    for store_id, (label_id, online, battery, seen) in reported:
        wanted.setdefault((store_id, label_id), (online, battery, seen))
    if not wanted:
        return set()
    statuses = list(wanted.values())
    rows = await session.execute(
        text(
            """
            SELECT l.store_id, l.label_id FROM label AS l
            JOIN unnest(CAST(:stores AS text[]), CAST(:labels AS text[]), CAST(:reported AS boolean[]),
                        CAST(:online AS boolean[]), CAST(:battery AS integer[]), CAST(:seen AS timestamptz[]))
                 AS v(store_id, label_id, reported, online, battery, seen)
              ON l.store_id = v.store_id AND l.label_id = v.label_id
            WHERE NOT v.reported OR """
            + _STATUS_DIFFERS
            + """
            ORDER BY l.store_id, l.label_id
            FOR UPDATE OF l
            """
        ),
        {
            "stores": [store_id for store_id, _ in wanted],
            "labels": [label_id for _, label_id in wanted],
            "reported": [status is not None for status in statuses],
            "online": [status[0] if status else None for status in statuses],
            "battery": [status[1] if status else None for status in statuses],
            "seen": [status[2] if status else None for status in statuses],
            "granularity": LAST_SEEN_GRANULARITY,
        },
    )
    return {(row.store_id, row.label_id) for row in rows}


@dataclass(frozen=True)
class Failure:
    label_id: str
    digest: str
    error: str


async def record_failures(
    session: AsyncSession,
    store_id: str,
    failures: Sequence[Failure],
    now: datetime,
    *,
    retry_base: float,
    retry_max: float,
    max_attempts: int,
    given_up_retry: float,
) -> list[LabelRow]:
    """Failed pushes of still-desired content: retried after base·2^(attempts−1) seconds (capped),
    or given up after ``max_attempts``. A given-up label is still tried once every
    ``given_up_retry`` seconds (a station outage longer than the backoff must not leave its
    labels stale until their prices change again); failing again, it stays given up. Returns
    the labels given up by this call for the first time (their attempts are exactly the maximum)."""
    if not failures:
        return []
    rows = await session.execute(
        text(f"""
            UPDATE label AS l SET
                state = CASE WHEN l.attempts >= :max_attempts THEN 'given_up' ELSE 'failed' END,
                last_error = left(v.error, 500),
                next_attempt_at = CAST(:now AS timestamptz) + make_interval(secs => CASE
                    WHEN l.attempts >= :max_attempts THEN CAST(:given_up_retry AS float8)
                    ELSE least(CAST(:retry_max AS float8),
                               CAST(:retry_base AS float8) * power(2, greatest(l.attempts - 1, 0))) END)
            FROM unnest(CAST(:labels AS text[]), CAST(:digests AS text[]), CAST(:errors AS text[]))
                 AS v(label_id, digest, error)
            WHERE l.store_id = :store AND l.label_id = v.label_id AND l.state = 'sent' AND l.sent_digest = v.digest
            RETURNING {_L_COLUMNS}
        """),
        {
            "store": store_id,
            "labels": [f.label_id for f in failures],
            "digests": [f.digest for f in failures],
            "errors": [f.error for f in failures],
            "now": now,
            "retry_base": retry_base,
            "retry_max": retry_max,
            "max_attempts": max_attempts,
            "given_up_retry": given_up_retry,
        },
    )
    return [label for label in (_label(row) for row in rows) if label.attempts == max_attempts]


async def record_status(session: AsyncSession, store_id: str, statuses: Sequence[Status], now: datetime) -> int:
    """(label, online, battery, last seen) as the station reports; a label seen online again
    whose content is not confirmed (failed or given up) is made pending again, attempts reset.

    Only a label whose report differs is written: online or battery changed, or its last
    check-in is ``LAST_SEEN_GRANULARITY`` or more after the stored one (an acknowledgement
    stores the moment it was recorded, so a check-in reported just before it is not news). A
    tag checks in every few seconds to minutes and every acknowledgement round asks about each
    sent label, so writing each report would rewrite every label row per round (in the label
    storm's measurement, more database time than the pushes themselves); ``last_seen`` is
    kept to within that granularity instead. Returns the number of labels written.

    The labels are to be locked already (:func:`lock_answered`, which returns the ones to pass)."""
    if not statuses:
        return 0
    result = await session.execute(
        text(
            """
            UPDATE label AS l SET online = v.online, battery_mv = coalesce(v.battery, l.battery_mv),
                last_seen = coalesce(v.seen, l.last_seen),
                state = CASE WHEN v.online AND NOT l.online AND l.state IN ('failed', 'given_up') THEN 'pending'
                             ELSE l.state END,
                attempts = CASE WHEN v.online AND NOT l.online AND l.state IN ('failed', 'given_up') THEN 0
                                ELSE l.attempts END,
                next_attempt_at = CASE WHEN v.online AND NOT l.online AND l.state IN ('failed', 'given_up')
                                       THEN :now ELSE l.next_attempt_at END
            FROM unnest(CAST(:labels AS text[]), CAST(:online AS boolean[]), CAST(:battery AS integer[]),
                        CAST(:seen AS timestamptz[])) AS v(label_id, online, battery, seen)
            WHERE l.store_id = :store AND l.label_id = v.label_id AND """
            + _STATUS_DIFFERS
        ),
        {
            "store": store_id,
            "granularity": LAST_SEEN_GRANULARITY,
            "labels": [s[0] for s in statuses],
            "online": [s[1] for s in statuses],
            "battery": [s[2] for s in statuses],
            "seen": [s[3] for s in statuses],
            "now": now,
        },
    )
    return int(getattr(result, "rowcount", 0))


async def label_ids_of_store(session: AsyncSession, store_id: str, after_label: str, limit: int) -> list[str]:
    rows = await session.execute(
        text("SELECT label_id FROM label WHERE store_id = :store AND label_id > :after ORDER BY label_id LIMIT :limit"),
        {"store": store_id, "after": after_label, "limit": limit},
    )
    return [row.label_id for row in rows]


async def list_labels(session: AsyncSession, store_id: str, state: str, after_label: str, limit: int) -> list[LabelRow]:
    condition = " AND state = :state" if state else ""
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM label WHERE store_id = :store{condition} AND label_id > :after "
            "ORDER BY label_id LIMIT :limit"
        ),
        {"store": store_id, "state": state, "after": after_label, "limit": limit},
    )
    return [_label(row) for row in rows]


@dataclass(frozen=True)
class Mismatch:
    label: LabelRow
    reason: str
    pos_price_fen: int | None


_MISMATCH_CONDITION = """
    FROM label l LEFT JOIN book_entry b ON b.store_id = l.store_id AND b.sku = l.sku
    WHERE l.store_id = :store AND (
        (l.acked_digest IS NOT NULL AND l.acked_price_fen IS DISTINCT FROM
            CASE WHEN b.removed THEN NULL ELSE b.unit_price_fen END)
        OR (l.acked_digest IS DISTINCT FROM l.desired_digest AND l.pending_since < :deadline)
        OR (l.acked_digest IS NULL AND l.desired_digest IS NULL AND l.pending_since < :deadline))
"""


async def mismatches(
    session: AsyncSession, store_id: str, deadline: datetime, after_label: str, limit: int
) -> list[Mismatch]:
    """The parity audit: labels that confirmed a price the tills do not charge now, and labels
    whose current content is not confirmed since before the deadline."""
    rows = await session.execute(
        text(
            f"SELECT {_L_COLUMNS}, "
            f"CASE WHEN b.removed THEN NULL ELSE b.unit_price_fen END AS pos_price "
            f"{_MISMATCH_CONDITION} AND l.label_id > :after ORDER BY l.label_id LIMIT :limit"
        ),
        {"store": store_id, "deadline": deadline, "after": after_label, "limit": limit},
    )
    found = []
    for row in rows:
        label = _label(row)
        differs = label.acked_digest is not None and label.acked_price_fen != row.pos_price
        found.append(Mismatch(label, "price_differs" if differs else "not_acknowledged", row.pos_price))
    return found


async def mismatch_counts(session: AsyncSession, store_id: str, deadline: datetime) -> tuple[int, int]:
    """(labels of the store, labels failing the audit)."""
    row = (
        await session.execute(
            text(
                f"SELECT (SELECT count(*) FROM label WHERE store_id = :store) AS total, count(*) AS failing "
                f"{_MISMATCH_CONDITION}"
            ),
            {"store": store_id, "deadline": deadline},
        )
    ).one()
    return int(row.total), int(row.failing)
