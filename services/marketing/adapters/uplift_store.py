"""What the uplift model learns from and the scores it leaves, each in one set-based statement.

Per member, the features of :data:`~services.marketing.domain.uplift.UPLIFT_FEATURES` as of a
moment, from the purchase projection: purchases before that moment that were not returned in full,
counted in purchase *days* (China Standard Time, as the repurchase model counts them), spend net of
returns, days since registration, and the lifecycle stage. To learn, the moment is each ended
campaign's launch and the stage the member's stratum in its frozen audience; to score, the moment is
now and the stage the member's current one. A member's outcome is whether they bought (a purchase
not returned in full) in the campaign's attribution window — the campaign report's window: from the
launch until ``attribution_days`` after the coupons' validity.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.marketing.adapters.score_store import TIME_ZONE
from services.marketing.domain.segments import LIFECYCLE_STAGES
from services.marketing.domain.uplift import UPLIFT_FEATURES, CampaignOutcomes

_KEPT = "NOT (p.net_fen > 0 AND p.returned_fen >= p.net_fen)"

# A campaign is learned from once its attribution window is over.
_ENDED = "c.status = 'ended' AND c.valid_until + make_interval(days => c.attribution_days) <= CAST(:now AS timestamptz)"

ENDED_CAMPAIGNS = f"""
SELECT c.campaign_id FROM campaign c
 WHERE {_ENDED}
   AND EXISTS (SELECT 1 FROM campaign_member cm WHERE cm.campaign_id = c.campaign_id AND cm.grp = 'treatment')
   AND EXISTS (SELECT 1 FROM campaign_member cm WHERE cm.campaign_id = c.campaign_id AND cm.grp = 'control')
 ORDER BY COALESCE(c.launched_at, c.valid_from), c.campaign_id
"""

TRAINING_SUBJECTS = f"""
SELECT cm.campaign_id AS key, cm.member_id, COALESCE(c.launched_at, c.valid_from) AS as_of, cm.stratum AS stage,
       cm.grp = 'treatment' AS treated,
       EXISTS (SELECT 1 FROM purchase p
                WHERE p.member_id = cm.member_id AND p.occurred_at >= COALESCE(c.launched_at, c.valid_from)
                  AND p.occurred_at < c.valid_until + make_interval(days => c.attribution_days) AND {_KEPT}
       ) AS converted
  FROM campaign c JOIN campaign_member cm ON cm.campaign_id = c.campaign_id
 WHERE {_ENDED} AND cm.grp IN ('treatment', 'control') AND c.campaign_id = ANY(CAST(:campaigns AS text[]))
"""

SCORING_SUBJECTS = """
SELECT '' AS key, m.member_id, CAST(:now AS timestamptz) AS as_of, m.lifecycle_stage AS stage,
       false AS treated, false AS converted
  FROM member m WHERE NOT m.erased AND m.merged_into IS NULL
"""

FEATURES = f"""
WITH subject AS ({{subjects}}),
history AS (
    SELECT s.key, s.member_id,
           (s.as_of AT TIME ZONE '{TIME_ZONE}')::date - (p.occurred_at AT TIME ZONE '{TIME_ZONE}')::date AS ago,
           sum(p.net_fen - p.returned_fen) AS spend
      FROM subject s JOIN purchase p ON p.member_id = s.member_id AND p.occurred_at < s.as_of
     WHERE {_KEPT}
     GROUP BY 1, 2, 3
), summary AS (
    SELECT key, member_id, min(ago) AS since_last, max(ago) AS since_first, count(*) AS days,
           count(*) FILTER (WHERE ago < 30) AS days_30, count(*) FILTER (WHERE ago < 90) AS days_90,
           count(*) FILTER (WHERE ago < 365) AS days_365,
           COALESCE(sum(spend) FILTER (WHERE ago < 365), 0) AS spend_365, avg(spend) AS mean_spend
      FROM history GROUP BY 1, 2
)
SELECT s.key, s.member_id, s.treated, s.converted,
       h.since_last::float8, h.since_first::float8, COALESCE(h.days, 0)::float8, COALESCE(h.days_30, 0)::float8,
       COALESCE(h.days_90, 0)::float8, COALESCE(h.days_365, 0)::float8,
       ln(1 + greatest(COALESCE(h.spend_365, 0), 0))::float8, ln(1 + greatest(COALESCE(h.mean_spend, 0), 0))::float8,
       extract(epoch FROM s.as_of - m.registered_at)::float8 / 86400,
       (COALESCE(array_position(CAST(:stages AS text[]), s.stage), 0) - 1)::float8
  FROM subject s
  LEFT JOIN summary h ON h.key = s.key AND h.member_id = s.member_id
  LEFT JOIN member m ON m.member_id = s.member_id
 ORDER BY s.key, s.member_id
"""

_FIRST_FEATURE = 4


def _matrix(rows: list[tuple[object, ...]]) -> npt.NDArray[np.float64]:
    features = np.array(
        [[np.nan if value is None else value for value in row[_FIRST_FEATURE:]] for row in rows], dtype=np.float64
    )
    return features.reshape(len(rows), len(UPLIFT_FEATURES))


async def campaign_outcomes(session: AsyncSession, now: datetime) -> CampaignOutcomes:
    """Every treated and control member of the campaigns whose attribution window is over."""
    campaign_ids = tuple(row[0] for row in await session.execute(text(ENDED_CAMPAIGNS), {"now": now}))
    rows = [
        tuple(row)
        for row in await session.execute(
            text(FEATURES.format(subjects=TRAINING_SUBJECTS)),
            {"now": now, "campaigns": list(campaign_ids), "stages": list(LIFECYCLE_STAGES)},
        )
    ]
    position = {campaign_id: index for index, campaign_id in enumerate(campaign_ids)}
    return CampaignOutcomes(
        campaign_ids=campaign_ids,
        campaign=np.array([position[row[0]] for row in rows], dtype=np.int64),
        features=_matrix(rows),
        treated=np.array([1 if row[2] else 0 for row in rows], dtype=np.int64),
        outcome=np.array([1.0 if row[3] else 0.0 for row in rows], dtype=np.float64),
    )


async def member_features(session: AsyncSession, now: datetime) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Every member's features as of now (erased and merged members are not scored)."""
    rows = [
        tuple(row)
        for row in await session.execute(
            text(FEATURES.format(subjects=SCORING_SUBJECTS)), {"now": now, "stages": list(LIFECYCLE_STAGES)}
        )
    ]
    return [str(row[1]) for row in rows], _matrix(rows)


async def write_uplift(
    session: AsyncSession, model_version: str, member_ids: list[str], uplift: npt.NDArray[np.float64], now: datetime
) -> None:
    """Every member's predicted uplift (in batches), replacing what an older run left."""
    await session.execute(text("DELETE FROM member_uplift WHERE model_version <> :v"), {"v": model_version})
    batch = 50_000
    for start in range(0, len(member_ids), batch):
        await session.execute(
            text(
                "INSERT INTO member_uplift (member_id, uplift, model_version, scored_at) "
                "SELECT m, u, :v, :now FROM unnest(CAST(:members AS text[]), CAST(:uplift AS float8[])) AS s(m, u) "
                "ON CONFLICT (member_id) DO UPDATE SET uplift = excluded.uplift, "
                "model_version = excluded.model_version, scored_at = excluded.scored_at"
            ),
            {
                "v": model_version,
                "now": now,
                "members": member_ids[start : start + batch],
                "uplift": [float(value) for value in uplift[start : start + batch]],
            },
        )


async def member_uplift(session: AsyncSession, member_id: str) -> tuple[float, str] | None:
    row = (
        await session.execute(
            text("SELECT uplift, model_version FROM member_uplift WHERE member_id = :id"), {"id": member_id}
        )
    ).first()
    return None if row is None else (float(row[0]), str(row[1]))
