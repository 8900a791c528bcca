"""Segment commands and queries: save a rule, preview its size, freeze it into a snapshot."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument, NotFound
from servicekit.idempotency import ReplyCodec, RequestFingerprint, keep_reply, replay
from services.marketing.adapters import segment_store as store
from services.marketing.adapters.segment_store import Count, StoredSegment, StoredSnapshot
from services.marketing.domain.segments import Rule

NAME_MAX = 120
DESCRIPTION_MAX = 2_000
PAGE_MAX = 200


class UnknownSegment(NotFound):
    reason = "segment-not-found"


class InvalidSegment(InvalidArgument):
    reason = "invalid-segment"


@dataclass(frozen=True, slots=True)
class CreateSegment:
    request: RequestFingerprint
    name: str
    description: str
    rule: Rule
    created_by: str

    def __post_init__(self) -> None:
        if not 0 < len(self.name.strip()) <= NAME_MAX:
            raise InvalidSegment(f"a segment's name is 1 to {NAME_MAX} characters", details={"field": "name"})
        if len(self.description) > DESCRIPTION_MAX:
            raise InvalidSegment(
                f"a description is at most {DESCRIPTION_MAX} characters", details={"field": "description"}
            )


@dataclass(frozen=True, slots=True)
class SnapshotSegment:
    request: RequestFingerprint
    segment_id: str


def new_segment_id() -> str:
    return f"SEG{secrets.token_hex(8).upper()}"


def new_snapshot_id() -> str:
    return f"SNAP{secrets.token_hex(8).upper()}"


class Segments:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        segment_codec: ReplyCodec[str],
        snapshot_codec: ReplyCodec[str],
        clock: Clock = utc_now,
        new_segment: Callable[[], str] = new_segment_id,
        new_snapshot: Callable[[], str] = new_snapshot_id,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._segment_codec = segment_codec
        self._snapshot_codec = snapshot_codec
        self._clock = clock
        self._new_segment = new_segment
        self._new_snapshot = new_snapshot

    async def create(self, command: CreateSegment) -> StoredSegment:
        """Save the segment; a retry of the same request answers with the same segment."""
        async with self._unit_of_work() as uow:
            first = await replay(uow.session, command.request, self._segment_codec)
            if first is None:
                segment = StoredSegment(
                    self._new_segment(),
                    command.name.strip(),
                    command.description,
                    command.rule,
                    command.created_by,
                    self._clock(),
                )
                await store.insert_segment(uow.session, segment)
                await keep_reply(uow.session, command.request, self._segment_codec, segment.segment_id)
                await uow.commit()
                return segment
        return await self.get(first)

    async def get(self, segment_id: str) -> StoredSegment:
        async with self._unit_of_work() as uow:
            segment = await store.get_segment(uow.session, segment_id)
        if segment is None:
            raise UnknownSegment("no such segment")
        return segment

    async def latest_snapshots(self, segment_ids: list[str]) -> dict[str, StoredSnapshot]:
        """Each segment's latest snapshot (one query for a whole page)."""
        async with self._unit_of_work() as uow:
            return await store.latest_snapshots(uow.session, segment_ids)

    async def list(self, *, after: tuple[datetime, str] | None, limit: int) -> list[StoredSegment]:
        async with self._unit_of_work() as uow:
            return await store.list_segments(uow.session, after=after, limit=min(max(limit, 1), PAGE_MAX))

    async def preview(self, rule: Rule) -> tuple[Count, datetime]:
        now = self._clock()
        async with self._unit_of_work() as uow:
            return await store.count(uow.session, rule, now), now

    async def snapshot(self, command: SnapshotSegment) -> StoredSnapshot:
        """Evaluate the segment now into a frozen snapshot (a retry answers with the same snapshot)."""
        now = self._clock()
        async with self._unit_of_work() as uow:
            first = await replay(uow.session, command.request, self._snapshot_codec)
            if first is None:
                segment = await store.get_segment(uow.session, command.segment_id)
                if segment is None:
                    raise UnknownSegment("no such segment")
                frozen = await store.snapshot(uow.session, segment, self._new_snapshot(), now, now)
                await keep_reply(uow.session, command.request, self._snapshot_codec, frozen.snapshot_id)
                await uow.commit()
                return frozen
            stored = await store.get_snapshot(uow.session, first)
        assert stored is not None  # snapshots are never deleted
        return stored
