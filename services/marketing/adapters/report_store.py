"""The sums a campaign report is computed from, each group's in one aggregate query.

Per member of the treatment and control groups, over the attribution window: purchases (a sale
returned in full does not count), gross revenue (before coupon discounts) and gross margin
(revenue − item cost), both net of returns in proportion to what came back. The per-group
counts, sums and sums of squares come back as exact integers (``numeric`` in PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.marketing.domain.campaign_report import GroupStats, Moments

OUTCOMES = """
WITH purchase_kept AS (
    SELECT p.member_id,
           NOT (p.net_fen > 0 AND p.returned_fen >= p.net_fen) AS counts,
           p.gross_fen - CASE WHEN p.net_fen > 0 THEN round(p.gross_fen::numeric * p.returned_fen / p.net_fen)
                              ELSE 0 END AS revenue,
           p.cost_fen - CASE WHEN p.net_fen > 0 THEN round(p.cost_fen::numeric * p.returned_fen / p.net_fen)
                             ELSE 0 END AS cost
      FROM purchase p
     WHERE p.occurred_at >= :window_start AND p.occurred_at < :window_end
), outcome AS (
    SELECT cm.grp, cm.member_id,
           count(*) FILTER (WHERE k.counts) AS purchases,
           COALESCE(sum(k.revenue), 0)::numeric AS revenue,
           COALESCE(sum(k.revenue - k.cost), 0)::numeric AS margin
      FROM campaign_member cm
      LEFT JOIN purchase_kept k ON k.member_id = cm.member_id
     WHERE cm.campaign_id = :campaign_id AND cm.grp IN ('treatment', 'control')
     GROUP BY cm.grp, cm.member_id
)
SELECT grp, count(*), count(*) FILTER (WHERE purchases > 0), count(*) FILTER (WHERE purchases > 1),
       COALESCE(sum(purchases), 0), COALESCE(sum(revenue), 0), COALESCE(sum(revenue * revenue), 0),
       COALESCE(sum(margin), 0), COALESCE(sum(margin * margin), 0)
  FROM outcome GROUP BY grp
"""


async def group_stats(
    session: AsyncSession, campaign_id: str, window_start: datetime, window_end: datetime
) -> dict[str, GroupStats]:
    rows = await session.execute(
        text(OUTCOMES), {"campaign_id": campaign_id, "window_start": window_start, "window_end": window_end}
    )
    groups = {
        "treatment": GroupStats(0, 0, 0, 0, Moments(0, 0, 0), Moments(0, 0, 0)),
        "control": GroupStats(0, 0, 0, 0, Moments(0, 0, 0), Moments(0, 0, 0)),
    }
    for grp, members, buyers, repeat_buyers, purchases, revenue, revenue_sq, margin, margin_sq in rows:
        groups[grp] = GroupStats(
            members=int(members),
            buyers=int(buyers),
            repeat_buyers=int(repeat_buyers),
            purchases=int(purchases),
            revenue=Moments(int(members), int(revenue), int(revenue_sq)),
            margin=Moments(int(members), int(margin), int(margin_sq)),
        )
    return groups


async def redemption_totals(session: AsyncSession, campaign_id: str) -> tuple[int, int, int]:
    """(redemptions, discount redeemed in fen, redemption conflicts) of the campaign."""
    row = (
        await session.execute(
            text(
                "SELECT count(*), COALESCE(sum(discount_fen), 0), "
                "(SELECT count(*) FROM redemption_conflict WHERE campaign_id = :id) "
                "FROM redemption WHERE campaign_id = :id AND given_back_at IS NULL"
            ),
            {"id": campaign_id},
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])
