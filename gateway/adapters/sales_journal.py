"""The sales journal: the ``SALES`` JetStream stream, and the gateway's table of journaled sale ids.

A sale is published with ``Nats-Msg-Id`` = sale id, so JetStream drops a republication
within its duplicate window (``PubAck.duplicate``); after the ack the sale id is recorded
in ``journaled_sale`` so that a replay days later is still recognised as a duplicate.

The crash window: if the gateway dies after the ack and before recording, the terminal
gets no answer and replays; inside the duplicate window JetStream reports the duplicate,
and beyond it a second journal entry with the same sale id is harmless because every
consumer applies a sale once by its id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from nats.js.api import PubAck
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.domain.sales import SALES_JOURNAL_RETENTION
from servicekit.messaging import StreamSpec, ensure_stream
from servicekit.nats_connection import NatsConnection
from servicekit.outbox import AGGREGATE_HEADER, EVENT_TYPE_HEADER, MSG_ID_HEADER, OCCURRED_AT_HEADER
from servicekit.telemetry import current_trace_headers

SALES_STREAM = StreamSpec(
    name="SALES",
    subjects=["retail.sales.v1.>"],
    description="The sales journal: every sale and return, published by the gateway",
    max_age_seconds=SALES_JOURNAL_RETENTION.total_seconds(),
    # Terminals retry within minutes; older replays are caught by journaled_sale.
    duplicate_window_seconds=2 * 3600,
)
SALE_RECORDED_TYPE = "retail.sales.v1.SaleRecorded"


def sale_subject(location_id: str) -> str:
    return f"retail.sales.v1.sale_recorded.{location_id}"


@dataclass(frozen=True)
class JournalEntry:
    """One serialised SaleRecorded, ready to publish."""

    sale_id: str
    kind: str
    location_id: str
    submitted_by: str
    occurred_at: datetime
    payload: bytes


class JournalUnavailable(RuntimeError):
    """NATS did not acknowledge a publication; nothing can be promised about the sale."""


class SalesJournal:
    def __init__(
        self, engine: AsyncEngine, nats: NatsConnection, *, replicas: int, publish_timeout: float = 5.0
    ) -> None:
        self._engine = engine
        self._nats = nats
        self._replicas = replicas
        self._publish_timeout = publish_timeout
        self._provisioned = False
        self._provisioning = asyncio.Lock()

    async def provision(self) -> None:
        """Declare the SALES stream (idempotent); done at start-up, or before the first publish."""
        async with self._provisioning:
            if not self._provisioned:
                await ensure_stream(self._nats.client.jetstream(), SALES_STREAM, replicas=self._replicas)
                self._provisioned = True

    async def journaled(self, sale_ids: Sequence[str]) -> set[str]:
        """Which of these sale ids are already in the journal."""
        if not sale_ids:
            return set()
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT sale_id FROM journaled_sale WHERE sale_id = ANY(:ids)"), {"ids": list(sale_ids)}
            )
            return {row.sale_id for row in rows}

    async def publish(self, entries: Sequence[JournalEntry]) -> list[bool]:
        """Publish each entry and wait for every ack; True per entry that was new, False for a duplicate.

        Entries are published concurrently, then recorded; raises JournalUnavailable when
        any publication was not acknowledged (those already acknowledged are recorded).
        """
        if not entries:
            return []
        if not self._nats.is_connected:
            raise JournalUnavailable("NATS is not connected")
        try:
            await self.provision()
        except Exception as exc:
            raise JournalUnavailable(f"declaring the SALES stream failed: {type(exc).__name__}") from exc
        js = self._nats.client.jetstream()
        trace_headers = current_trace_headers()

        async def publish_one(entry: JournalEntry) -> PubAck:
            headers = {
                MSG_ID_HEADER: entry.sale_id,
                EVENT_TYPE_HEADER: SALE_RECORDED_TYPE,
                OCCURRED_AT_HEADER: entry.occurred_at.isoformat(),
                AGGREGATE_HEADER: entry.sale_id,
                **trace_headers,
            }
            ack: PubAck = await js.publish(
                sale_subject(entry.location_id), entry.payload, timeout=self._publish_timeout, headers=headers
            )
            return ack

        outcomes = await asyncio.gather(*(publish_one(entry) for entry in entries), return_exceptions=True)
        acked = [(entry, ack) for entry, ack in zip(entries, outcomes, strict=True) if isinstance(ack, PubAck)]
        await self._record(acked)
        failed = [outcome for outcome in outcomes if not isinstance(outcome, PubAck)]
        if failed:
            raise JournalUnavailable(f"{len(failed)} publications were not acknowledged: {failed[0]!r}")
        return [not ack.duplicate for _, ack in acked]

    async def _record(self, acked: Sequence[tuple[JournalEntry, PubAck]]) -> None:
        if not acked:
            return
        async with self._engine.begin() as connection:
            await connection.execute(
                text(
                    """
                    INSERT INTO journaled_sale (sale_id, kind, location_id, submitted_by, occurred_at, stream_sequence)
                    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:kinds AS text[]), CAST(:locations AS text[]),
                                         CAST(:submitters AS text[]), CAST(:occurred AS timestamptz[]),
                                         CAST(:sequences AS bigint[]))
                    ON CONFLICT (sale_id) DO NOTHING
                    """
                ),
                {
                    "ids": [entry.sale_id for entry, _ in acked],
                    "kinds": [entry.kind for entry, _ in acked],
                    "locations": [entry.location_id for entry, _ in acked],
                    "submitters": [entry.submitted_by for entry, _ in acked],
                    "occurred": [entry.occurred_at for entry, _ in acked],
                    "sequences": [ack.seq for _, ack in acked],
                },
            )
