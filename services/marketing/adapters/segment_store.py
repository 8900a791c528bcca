"""Segments, their previews and their frozen snapshots in PostgreSQL (one statement each, set-based)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.marketing.adapters.segment_sql import AUDIENCE, FROM, compile_rule
from services.marketing.domain.segments import Rule, parse_rule


@dataclass(frozen=True)
class Count:
    members: int
    by_stage: dict[str, int]


@dataclass(frozen=True)
class StoredSegment:
    segment_id: str
    name: str
    description: str
    rule: Rule
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class StoredSnapshot:
    snapshot_id: str
    segment_id: str
    as_of: datetime
    members: int
    by_stage: dict[str, int]


def _where(rule: Rule, as_of: datetime) -> tuple[str, dict[str, Any]]:
    compiled = compile_rule(rule)
    return f"{AUDIENCE} AND {compiled.sql}", {**compiled.params, "as_of": as_of}


async def count(session: AsyncSession, rule: Rule, as_of: datetime) -> Count:
    where, params = _where(rule, as_of)
    rows = await session.execute(
        text(f"SELECT m.lifecycle_stage, count(*) FROM {FROM} WHERE {where} GROUP BY m.lifecycle_stage"), params
    )
    by_stage = {row[0]: int(row[1]) for row in rows}
    return Count(sum(by_stage.values()), by_stage)


async def insert_segment(session: AsyncSession, segment: StoredSegment) -> None:
    await session.execute(
        text(
            "INSERT INTO segment (segment_id, name, description, rule, created_by, created_at) "
            "VALUES (:segment_id, :name, :description, CAST(:rule AS jsonb), :created_by, :created_at)"
        ),
        {
            "segment_id": segment.segment_id,
            "name": segment.name,
            "description": segment.description,
            "rule": json.dumps(segment.rule.to_json()),
            "created_by": segment.created_by,
            "created_at": segment.created_at,
        },
    )


def _segment(row: Any) -> StoredSegment:
    return StoredSegment(row[0], row[1], row[2], parse_rule(row[3]), row[4], row[5])


_SEGMENT = "SELECT segment_id, name, description, rule, created_by, created_at FROM segment"


async def get_segment(session: AsyncSession, segment_id: str) -> StoredSegment | None:
    row = (await session.execute(text(f"{_SEGMENT} WHERE segment_id = :id"), {"id": segment_id})).first()
    return None if row is None else _segment(row)


async def list_segments(
    session: AsyncSession, *, after: tuple[datetime, str] | None, limit: int
) -> list[StoredSegment]:
    """Newest first, from after the (created_at, segment_id) of the previous page's last."""
    condition = "" if after is None else "WHERE (created_at, segment_id) < (:at, :id)"
    params: dict[str, Any] = {"limit": limit}
    if after is not None:
        params |= {"at": after[0], "id": after[1]}
    rows = await session.execute(
        text(f"{_SEGMENT} {condition} ORDER BY created_at DESC, segment_id DESC LIMIT :limit"), params
    )
    return [_segment(row) for row in rows]


async def snapshot(
    session: AsyncSession, segment: StoredSegment, snapshot_id: str, as_of: datetime, now: datetime
) -> StoredSnapshot:
    """Evaluate the segment at ``as_of`` into a frozen list of members, in one INSERT … SELECT."""
    await session.execute(
        text(
            "INSERT INTO segment_snapshot (snapshot_id, segment_id, as_of, members, members_by_stage, created_at) "
            "VALUES (:snapshot_id, :segment_id, :as_of, 0, '{}', :now)"
        ),
        {"snapshot_id": snapshot_id, "segment_id": segment.segment_id, "as_of": as_of, "now": now},
    )
    where, params = _where(segment.rule, as_of)
    await session.execute(
        text(
            f"INSERT INTO snapshot_member (snapshot_id, member_id, lifecycle_stage) "
            f"SELECT :snapshot_id, m.member_id, m.lifecycle_stage FROM {FROM} WHERE {where}"
        ),
        {**params, "snapshot_id": snapshot_id},
    )
    rows = await session.execute(
        text(
            "SELECT lifecycle_stage, count(*) FROM snapshot_member WHERE snapshot_id = :snapshot_id "
            "GROUP BY lifecycle_stage"
        ),
        {"snapshot_id": snapshot_id},
    )
    by_stage = {row[0]: int(row[1]) for row in rows}
    await session.execute(
        text(
            "UPDATE segment_snapshot SET members = :members, members_by_stage = CAST(:by_stage AS jsonb) "
            "WHERE snapshot_id = :snapshot_id"
        ),
        {"members": sum(by_stage.values()), "by_stage": json.dumps(by_stage), "snapshot_id": snapshot_id},
    )
    return StoredSnapshot(snapshot_id, segment.segment_id, as_of, sum(by_stage.values()), by_stage)


_SNAPSHOT = "SELECT snapshot_id, segment_id, as_of, members, members_by_stage FROM segment_snapshot"


async def latest_snapshots(session: AsyncSession, segment_ids: list[str]) -> dict[str, StoredSnapshot]:
    """Each segment's latest snapshot (segments never snapshotted are missing), in one query."""
    rows = await session.execute(
        text(
            "SELECT DISTINCT ON (segment_id) snapshot_id, segment_id, as_of, members, members_by_stage "
            "FROM segment_snapshot WHERE segment_id = ANY(:ids) ORDER BY segment_id, as_of DESC, snapshot_id DESC"
        ),
        {"ids": segment_ids},
    )
    return {row[1]: StoredSnapshot(row[0], row[1], row[2], int(row[3]), dict(row[4])) for row in rows}


async def get_snapshot(session: AsyncSession, snapshot_id: str) -> StoredSnapshot | None:
    row = (await session.execute(text(f"{_SNAPSHOT} WHERE snapshot_id = :id"), {"id": snapshot_id})).first()
    return None if row is None else StoredSnapshot(row[0], row[1], row[2], int(row[3]), dict(row[4]))


async def snapshot_members(session: AsyncSession, snapshot_id: str) -> list[tuple[str, str]]:
    rows = await session.execute(
        text("SELECT member_id, lifecycle_stage FROM snapshot_member WHERE snapshot_id = :id ORDER BY member_id"),
        {"id": snapshot_id},
    )
    return [(row[0], row[1]) for row in rows]
