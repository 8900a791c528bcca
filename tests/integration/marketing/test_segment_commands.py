"""Segments through their commands: saved once per request, previewed without saving, frozen into snapshots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import asyncpg
import pytest

from servicekit.db import UnitOfWork
from servicekit.settings import to_plain_url
from services.marketing.domain.segments import parse_rule
from services.marketing.service_layer.redemptions import TEXT
from services.marketing.service_layer.segments import (
    CreateSegment,
    InvalidSegment,
    Segments,
    SnapshotSegment,
    UnknownSegment,
)
from tests.integration.marketing.conftest import fetch, request
from tests.support.clock import HandClock


async def test_a_segment_is_saved_once_previewed_and_frozen_while_members_keep_changing(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    connection = await asyncpg.connect(to_plain_url(marketing_url))
    try:
        for index, tier in enumerate(["gold", "gold", "silver", "gold"]):
            await connection.execute(
                "INSERT INTO member (member_id, tier, lifecycle_stage, registered_at, updated_at) "
                "VALUES ($1, $2, 'active', $3, $3)",
                f"M{index}",
                tier,
                clock.now - timedelta(days=10),
            )
    finally:
        await connection.close()
    segments = Segments(unit_of_work, segment_codec=TEXT, snapshot_codec=TEXT, clock=clock)
    gold = parse_rule({"attribute": "tier", "op": "in", "value": ["gold"]})
    count, _ = await segments.preview(gold)
    assert (count.members, count.by_stage) == (3, {"active": 3})
    assert await fetch(marketing_url, "SELECT * FROM segment") == []
    creation = CreateSegment(request(), "Gold members", "", gold, "hq")
    saved = await segments.create(creation)
    assert (await segments.create(creation)).segment_id == saved.segment_id
    assert len(await fetch(marketing_url, "SELECT * FROM segment")) == 1
    freeze = SnapshotSegment(request(), saved.segment_id)
    frozen = await segments.snapshot(freeze)
    assert frozen.members == 3
    await fetch(marketing_url, "UPDATE member SET tier = 'gold' WHERE member_id = 'M2'")
    assert (await segments.snapshot(freeze)).snapshot_id == frozen.snapshot_id  # a retry freezes nothing new
    later = await segments.snapshot(SnapshotSegment(request(), saved.segment_id))
    assert (later.members, frozen.members) == (4, 3)
    latest = (await segments.latest_snapshots([saved.segment_id])).get(saved.segment_id)
    assert latest is not None
    assert latest.snapshot_id in (later.snapshot_id, frozen.snapshot_id)
    with pytest.raises(UnknownSegment):
        await segments.snapshot(SnapshotSegment(request(), "SEG-NONE"))
    with pytest.raises(InvalidSegment):
        CreateSegment(request(), " ", "", gold, "hq")
