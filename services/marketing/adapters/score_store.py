"""Member tags and RFM cells recomputed for every member in one statement (a periodic job).

The engagement rule is :func:`services.marketing.domain.member_tags.engagement`, written here
in SQL so a million members are tagged set-based; a test holds the two to the same answers.
Days are calendar days in China Standard Time (a purchase at 23:30 and one at 00:30 are on two
days). RFM cells rank the members who bought in the last 365 days into quintiles — recency by
the days since their last purchase, frequency by their purchases, monetary by their spend
(net of returns) — 5 the best; ties are broken by member id so the cells are reproducible.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.marketing.domain.member_tags import EngagementPolicy

TIME_ZONE = "Asia/Shanghai"

REFRESH = f"""
WITH kept AS (
    SELECT p.member_id, p.net_fen - p.returned_fen AS spend,
           (CAST(:as_of AS timestamptz) AT TIME ZONE '{TIME_ZONE}')::date
             - (p.occurred_at AT TIME ZONE '{TIME_ZONE}')::date AS ago
      FROM purchase p
     WHERE NOT (p.net_fen > 0 AND p.returned_fen >= p.net_fen) AND p.occurred_at <= :as_of
), days AS (
    SELECT DISTINCT member_id, ago FROM kept
), gaps AS (
    SELECT member_id, ago - lag(ago) OVER (PARTITION BY member_id ORDER BY ago) AS gap FROM days
), visits AS (
    SELECT member_id, count(*) AS purchase_days, min(ago) AS since_last FROM days GROUP BY member_id
), rhythm AS (
    SELECT member_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS median_gap
      FROM gaps WHERE gap IS NOT NULL GROUP BY member_id
), facts AS (
    SELECT m.member_id,
           (CAST(:as_of AS timestamptz) AT TIME ZONE '{TIME_ZONE}')::date
             - (m.registered_at AT TIME ZONE '{TIME_ZONE}')::date AS registered_ago,
           COALESCE(v.purchase_days, 0) AS purchase_days,
           v.since_last,
           r.median_gap,
           s.churn_risk
      FROM member m
      LEFT JOIN visits v ON v.member_id = m.member_id
      LEFT JOIN rhythm r ON r.member_id = m.member_id
      LEFT JOIN member_score s ON s.member_id = m.member_id
     WHERE NOT m.erased AND m.merged_into IS NULL
), tagged AS (
    SELECT member_id, CASE
             WHEN purchase_days = 0 THEN CASE WHEN registered_ago <= :new_days THEN 'new'
                                              WHEN registered_ago > :lost_days THEN 'lost'
                                              ELSE 'sleeping' END
             WHEN registered_ago <= :new_days AND purchase_days <= 1 THEN 'new'
             WHEN since_last > :lost_days THEN 'lost'
             WHEN since_last > :sleeping_days THEN 'sleeping'
             WHEN since_last > CASE WHEN purchase_days < 3 THEN :active_days
                                    ELSE greatest(median_gap * :gaps, 7.0) END THEN 'at_risk'
             WHEN churn_risk >= :at_risk_churn THEN 'at_risk'
             ELSE 'active' END AS engagement
      FROM facts
), year AS (
    SELECT member_id, min(ago) AS since_last, count(*) AS purchases, sum(spend) AS spend
      FROM kept WHERE ago <= 365 GROUP BY member_id
), cells AS (
    SELECT member_id,
           ntile(5) OVER (ORDER BY since_last DESC, member_id)::text
           || ntile(5) OVER (ORDER BY purchases, member_id)::text
           || ntile(5) OVER (ORDER BY spend, member_id)::text AS rfm_cell
      FROM year
)
INSERT INTO member_score (member_id, engagement, rfm_cell, scored_at)
SELECT t.member_id, t.engagement, c.rfm_cell, :as_of FROM tagged t LEFT JOIN cells c ON c.member_id = t.member_id
ON CONFLICT (member_id) DO UPDATE SET engagement = excluded.engagement, rfm_cell = excluded.rfm_cell,
                                      scored_at = excluded.scored_at
"""


async def refresh_tags(session: AsyncSession, as_of: datetime, policy: EngagementPolicy = EngagementPolicy()) -> int:  # noqa: B008 - frozen
    """Recompute every member's engagement and RFM cell as of ``as_of``; how many members."""
    result = await session.execute(
        text(REFRESH),
        {
            "as_of": as_of,
            "new_days": policy.new_days,
            "lost_days": policy.lost_days,
            "sleeping_days": policy.sleeping_days,
            "active_days": policy.active_days,
            "gaps": policy.at_risk_after_gaps,
            "at_risk_churn": policy.at_risk_churn,
        },
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]  # a CursorResult for an INSERT


async def member_tags(
    session: AsyncSession, member_id: str, as_of: datetime
) -> tuple[str | None, str | None, list[str], str | None]:
    """(engagement, RFM cell, top three categories by spend, most visited store) over the last year."""
    score = (
        await session.execute(
            text("SELECT engagement, rfm_cell FROM member_score WHERE member_id = :id"), {"id": member_id}
        )
    ).first()
    year = {"id": member_id, "since": as_of - timedelta(days=365), "as_of": as_of}
    kept = (
        "p.member_id = :id AND p.occurred_at > :since AND p.occurred_at <= :as_of "
        "AND NOT (p.net_fen > 0 AND p.returned_fen >= p.net_fen)"
    )
    categories = await session.execute(
        text(
            f"SELECT l.category FROM purchase p JOIN purchase_line l ON l.sale_id = p.sale_id WHERE {kept} "
            "AND l.category <> '' GROUP BY l.category HAVING sum(l.net_fen) > 0 "
            "ORDER BY sum(l.net_fen) DESC, l.category LIMIT 3"
        ),
        year,
    )
    store = (
        await session.execute(
            text(
                f"SELECT p.store_id FROM purchase p WHERE {kept} "
                "GROUP BY p.store_id ORDER BY count(*) DESC, p.store_id LIMIT 1"
            ),
            year,
        )
    ).first()
    return (
        None if score is None else score[0],
        None if score is None else score[1],
        [row[0] for row in categories],
        None if store is None else store[0],
    )
