"""Engagement tags and RFM cells computed in SQL for every member agree with the domain's rule."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from servicekit.db import UnitOfWork
from servicekit.settings import to_plain_url
from services.marketing.adapters.score_store import refresh_tags
from services.marketing.domain.member_tags import engagement
from tests.integration.marketing.conftest import fetch

AS_OF = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # noon in China Standard Time
CST = ZoneInfo("Asia/Shanghai")


def days_ago(moment: datetime) -> int:
    return (AS_OF.astimezone(CST).date() - moment.astimezone(CST).date()).days


async def test_every_members_engagement_is_the_domains_and_rfm_cells_rank_buyers_by_quintile(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork]
) -> None:
    rng = random.Random(7)
    expected = {}
    connection = await asyncpg.connect(to_plain_url(marketing_url))
    try:
        for index in range(600):
            member_id = f"M{index:04d}"
            registered = AS_OF - timedelta(days=rng.choice([3, 20, 45, 200, 500]), hours=rng.randint(0, 23))
            churn = rng.choice([None, 0.1, 0.7, 0.8])
            await connection.execute(
                "INSERT INTO member (member_id, registered_at, updated_at) VALUES ($1, $2, $2)", member_id, registered
            )
            if churn is not None:
                await connection.execute(
                    "INSERT INTO member_score (member_id, churn_risk, scored_at) VALUES ($1, $2, $3)",
                    member_id,
                    churn,
                    AS_OF,
                )
            rhythm = rng.choice([2, 5, 14, 40, 90])
            # Away for 0 to 4 times their own rhythm, or long gone: every boundary of the rule is crossed.
            start = int(rhythm * rng.uniform(0, 4)) if rng.random() < 0.8 else rng.randint(100, 500)
            bought: list[datetime] = []
            for number in range(rng.choice([0, 1, 2, 3, 5, 8])):
                at = AS_OF - timedelta(days=start + number * rhythm + rng.randint(0, 2), hours=rng.randint(0, 23))
                if at < registered:
                    break
                net = rng.randint(100, 20_000)
                returned = rng.choice([0, 0, 0, net])
                await connection.execute(
                    "INSERT INTO purchase (sale_id, member_id, made_by, store_id, occurred_at, gross_fen, net_fen, "
                    "cost_fen, returned_fen) VALUES ($1, $2, $2, 'S1', $3, $4, $4, 0, $5)",
                    f"{member_id}-{number}",
                    member_id,
                    at,
                    net,
                    returned,
                )
                if returned < net:
                    bought.append(at)
            expected[member_id] = engagement(
                days_since_registration=days_ago(registered),
                purchase_days_ago=[days_ago(at) for at in bought],
                churn_risk=churn,
            ).value
        await connection.execute(
            "INSERT INTO member (member_id, erased, registered_at, updated_at) VALUES ('GONE', true, $1, $1)", AS_OF
        )
    finally:
        await connection.close()
    async with unit_of_work() as uow:
        assert await refresh_tags(uow.session, AS_OF) == 600
        await uow.commit()
    rows = await fetch(marketing_url, "SELECT member_id, engagement, rfm_cell FROM member_score")
    tagged = {row["member_id"]: row["engagement"] for row in rows}
    assert tagged == expected
    assert len(set(tagged.values())) == 5  # the population reaches every tag
    cells = [row["rfm_cell"] for row in rows if row["rfm_cell"] is not None]
    assert cells
    for position in range(3):
        counts = [sum(cell[position] == str(q) for cell in cells) for q in range(1, 6)]
        assert max(counts) - min(counts) <= 1  # quintiles: equal shares
