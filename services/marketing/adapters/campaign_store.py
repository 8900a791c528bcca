"""Campaigns in PostgreSQL: drafts, approval, and the launch — audience placement and coupon issue.

The placement is one ``INSERT … SELECT`` over the frozen snapshot (a million members is one
statement, not a loop): exclusions first, then the control group by the campaign's draw
(:mod:`~services.marketing.domain.control_groups`: SHA-256 of ``campaign:member``, its first
eight bytes compared as an unsigned number, which is how PostgreSQL orders ``bytea``), then the
coupon budget, by the same draw. A campaign with a target share first keeps the top of the eligible
audience by its score — the repurchase model's chance to buy (``propensity``) or the uplift model's
predicted effect of the offer (``uplift``), members without one last, ties by the draw — and only
then splits that share into control and treatment, so both groups come from the same top share.
Issue takes batches of treatment members without a coupon (``FOR UPDATE SKIP LOCKED``, so two
replicas share a launch without issuing twice) and the partial unique index
``coupon_once_per_member`` makes a second coupon for a member impossible.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.marketing.adapters.offer_json import offer_from_json, offer_to_json, terms_from_json, terms_to_json
from services.marketing.domain.campaigns import CampaignDraft, CampaignStatus, Target
from services.marketing.domain.offers import CouponTerms, Offer

_COLUMNS = (
    "campaign_id, name, status, snapshot_id, offer, terms, control_fraction_bp, frequency_cap, store_id, "
    "attribution_days, contact_channels, max_coupons, max_discount_fen, issued, spent_fen, held_fen, redemptions, "
    "created_by, approved_by, created_at, launched_at, target, target_percent"
)


@dataclass(frozen=True)
class StoredCampaign:
    campaign_id: str
    name: str
    status: CampaignStatus
    snapshot_id: str
    offer: Offer
    terms: CouponTerms
    control_fraction_bp: int
    frequency_cap: int
    store_id: str | None
    attribution_days: int
    contact_channels: frozenset[str]
    max_coupons: int | None
    max_discount_fen: int | None
    issued: int
    spent_fen: int
    held_fen: int
    redemptions: int
    created_by: str
    approved_by: str | None
    created_at: datetime
    launched_at: datetime | None
    target: Target = Target.EVERYONE
    target_percent: int | None = None


def _campaign(row: Any) -> StoredCampaign:
    return StoredCampaign(
        campaign_id=row[0],
        name=row[1],
        status=CampaignStatus(row[2]),
        snapshot_id=row[3],
        offer=offer_from_json(row[4]),
        terms=terms_from_json(row[5]),
        control_fraction_bp=row[6],
        frequency_cap=row[7],
        store_id=row[8],
        attribution_days=row[9],
        contact_channels=frozenset(row[10]),
        max_coupons=row[11],
        max_discount_fen=row[12],
        issued=row[13],
        spent_fen=row[14],
        held_fen=row[15],
        redemptions=row[16],
        created_by=row[17],
        approved_by=row[18],
        created_at=row[19],
        launched_at=row[20],
        target=Target(row[21]),
        target_percent=row[22],
    )


async def insert_campaign(
    session: AsyncSession, campaign_id: str, draft: CampaignDraft, created_by: str, now: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO campaign (campaign_id, name, status, snapshot_id, offer, terms, valid_from, valid_until, "
            "per_member_limit, control_fraction_bp, frequency_cap, store_id, attribution_days, contact_channels, "
            "max_coupons, max_discount_fen, created_by, created_at, target, target_percent) VALUES (:campaign_id, "
            ":name, 'draft', :snapshot_id, CAST(:offer AS jsonb), CAST(:terms AS jsonb), :valid_from, :valid_until, "
            ":per_member_limit, :control_fraction_bp, :frequency_cap, :store_id, :attribution_days, "
            ":contact_channels, :max_coupons, :max_discount_fen, :created_by, :now, :target, :target_percent)"
        ),
        {
            "campaign_id": campaign_id,
            "name": draft.name.strip(),
            "snapshot_id": draft.snapshot_id,
            "offer": json.dumps(offer_to_json(draft.offer)),
            "terms": json.dumps(terms_to_json(draft.terms)),
            "valid_from": draft.terms.valid_from,
            "valid_until": draft.terms.valid_until,
            "per_member_limit": draft.terms.per_member_limit,
            "control_fraction_bp": draft.control_fraction_bp,
            "frequency_cap": draft.frequency_cap,
            "store_id": draft.store_id,
            "attribution_days": draft.attribution_days,
            "contact_channels": sorted(draft.contact_channels),
            "max_coupons": draft.max_coupons,
            "max_discount_fen": draft.max_discount_fen,
            "created_by": created_by,
            "now": now,
            "target": draft.target.value,
            "target_percent": draft.target_percent,
        },
    )


async def get_campaign(session: AsyncSession, campaign_id: str, *, lock: bool = False) -> StoredCampaign | None:
    suffix = " FOR UPDATE" if lock else ""
    row = (
        await session.execute(
            text(f"SELECT {_COLUMNS} FROM campaign WHERE campaign_id = :id{suffix}"), {"id": campaign_id}
        )
    ).first()
    return None if row is None else _campaign(row)


async def set_status(
    session: AsyncSession,
    campaign_id: str,
    status: CampaignStatus,
    *,
    approved_by: str | None = None,
    launched_at: datetime | None = None,
) -> None:
    await session.execute(
        text(
            "UPDATE campaign SET status = :status, approved_by = COALESCE(:approved_by, approved_by), "
            "launched_at = COALESCE(:launched_at, launched_at) WHERE campaign_id = :id"
        ),
        {"id": campaign_id, "status": status.value, "approved_by": approved_by, "launched_at": launched_at},
    )


async def snapshot_exists(session: AsyncSession, snapshot_id: str) -> bool:
    row = await session.execute(text("SELECT 1 FROM segment_snapshot WHERE snapshot_id = :id"), {"id": snapshot_id})
    return row.first() is not None


PLACE_AUDIENCE = """
WITH audience AS (
    SELECT sm.member_id, sm.lifecycle_stage AS stratum, m.erased, m.merged_into,
           COALESCE(m.consent && CAST(:contact_channels AS text[]), false) AS consents,
           (SELECT count(*) FROM coupon c
             WHERE c.member_id = sm.member_id AND c.issued_at > CAST(:now AS timestamptz) - interval '7 days'
               AND c.campaign_id <> :campaign_id) AS recent_offers,
           substring(sha256(convert_to(:campaign_id || ':' || sm.member_id, 'UTF8')) FROM 1 FOR 8) AS draw
      FROM snapshot_member sm LEFT JOIN member m ON m.member_id = sm.member_id
     WHERE sm.snapshot_id = :snapshot_id
), classified AS (
    SELECT *, CASE
               WHEN erased IS NULL OR erased OR merged_into IS NOT NULL THEN 'erased'
               WHEN NOT consents THEN 'no_consent'
               WHEN :cap > 0 AND recent_offers >= :cap THEN 'frequency_cap'
             END AS excluded_reason
      FROM audience
), ranked AS (
    SELECT c.member_id, c.stratum, c.draw,
           row_number() OVER (
               ORDER BY CASE WHEN :target = 'uplift' THEN u.uplift ELSE s.p_active END DESC NULLS LAST,
                        c.draw, c.member_id
           ) AS by_score,
           count(*) OVER () AS candidates
      FROM classified c
      LEFT JOIN member_score s ON s.member_id = c.member_id
      LEFT JOIN member_uplift u ON u.member_id = c.member_id
     WHERE c.excluded_reason IS NULL
), untargeted AS (
    SELECT member_id, stratum FROM ranked
     WHERE CAST(:target_percent AS integer) IS NOT NULL
       AND by_score > (candidates * :target_percent + 99) / 100
), eligible AS (
    SELECT member_id, stratum, draw,
           row_number() OVER (PARTITION BY stratum ORDER BY draw, member_id) AS rank,
           count(*) OVER (PARTITION BY stratum) AS size
      FROM ranked
     WHERE CAST(:target_percent AS integer) IS NULL OR by_score <= (candidates * :target_percent + 99) / 100
), grouped AS (
    SELECT member_id, stratum, draw,
           CASE WHEN rank <= (size * :control_bp + 5000) / 10000 THEN 'control' ELSE 'treatment' END AS grp
      FROM eligible
), budgeted AS (
    SELECT member_id, stratum, grp,
           CASE WHEN grp = 'treatment' AND CAST(:max_coupons AS bigint) IS NOT NULL
                 AND row_number() OVER (PARTITION BY grp ORDER BY draw, member_id) > :max_coupons
                THEN 'budget' END AS reason
      FROM grouped
)
INSERT INTO campaign_member (campaign_id, member_id, stratum, grp, excluded_reason)
SELECT :campaign_id, member_id, stratum, CASE WHEN reason IS NULL THEN grp ELSE 'excluded' END, reason FROM budgeted
UNION ALL
SELECT :campaign_id, member_id, stratum, 'excluded', excluded_reason FROM classified WHERE excluded_reason IS NOT NULL
UNION ALL
SELECT :campaign_id, member_id, stratum, 'excluded', 'not_targeted' FROM untargeted
ON CONFLICT DO NOTHING
"""


async def place_audience(session: AsyncSession, campaign: StoredCampaign, now: datetime) -> None:
    await session.execute(
        text(PLACE_AUDIENCE),
        {
            "campaign_id": campaign.campaign_id,
            "snapshot_id": campaign.snapshot_id,
            "contact_channels": sorted(campaign.contact_channels),
            "now": now,
            "cap": campaign.frequency_cap,
            "control_bp": campaign.control_fraction_bp,
            "max_coupons": campaign.max_coupons,
            "target_percent": campaign.target_percent,
            "target": campaign.target.value,
        },
    )


async def audience_placed(session: AsyncSession, campaign_id: str) -> bool:
    row = await session.execute(
        text("SELECT 1 FROM campaign_member WHERE campaign_id = :id LIMIT 1"), {"id": campaign_id}
    )
    return row.first() is not None


async def members_to_issue(session: AsyncSession, campaign_id: str, limit: int) -> list[str]:
    rows = await session.execute(
        text(
            "SELECT member_id FROM campaign_member WHERE campaign_id = :id AND grp = 'treatment' AND code IS NULL "
            "ORDER BY member_id LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"id": campaign_id, "limit": limit},
    )
    return [row[0] for row in rows]


async def issue(session: AsyncSession, campaign_id: str, coupons: list[tuple[str, str]], now: datetime) -> set[str]:
    """Insert (code, member) coupons and note them on the audience rows; the codes that were new."""
    if not coupons:
        return set()
    codes = [code for code, _ in coupons]
    members = [member for _, member in coupons]
    inserted = await session.execute(
        text(
            "INSERT INTO coupon (code, campaign_id, member_id, issued_to, use_limit, issued_at) "
            "SELECT code, :campaign_id, member_id, member_id, 1, :now FROM unnest(CAST(:codes AS text[]), "
            "CAST(:members AS text[])) AS issued(code, member_id) "
            "ON CONFLICT (campaign_id, issued_to) WHERE issued_to IS NOT NULL DO NOTHING RETURNING code"
        ),
        {"campaign_id": campaign_id, "now": now, "codes": codes, "members": members},
    )
    new = {row[0] for row in inserted}
    await session.execute(
        text(
            "UPDATE campaign_member cm SET code = c.code FROM coupon c "
            "WHERE cm.campaign_id = :campaign_id AND cm.member_id = ANY(CAST(:members AS text[])) "
            "AND c.campaign_id = cm.campaign_id AND c.issued_to = cm.member_id"
        ),
        {"campaign_id": campaign_id, "members": members},
    )
    await session.execute(
        text("UPDATE campaign SET issued = issued + :n WHERE campaign_id = :campaign_id"),
        {"campaign_id": campaign_id, "n": len(new)},
    )
    return new


async def launching(session: AsyncSession) -> list[str]:
    rows = await session.execute(
        text("SELECT campaign_id FROM campaign WHERE status = 'launching' ORDER BY launched_at")
    )
    return [row[0] for row in rows]


@dataclass(frozen=True)
class Progress:
    audience: int
    excluded: dict[str, int]
    treatment: int
    control: int
    issued: int


async def progress(session: AsyncSession, campaign: StoredCampaign) -> Progress:
    return (await progress_of(session, [campaign]))[campaign.campaign_id]


async def progress_of(session: AsyncSession, campaigns: list[StoredCampaign]) -> dict[str, Progress]:
    """Each campaign's launch progress, in two queries whatever the number of campaigns (a page of a list)."""
    audiences = await session.execute(
        text("SELECT snapshot_id, members FROM segment_snapshot WHERE snapshot_id = ANY(:ids)"),
        {"ids": sorted({campaign.snapshot_id for campaign in campaigns})},
    )
    audience = {row[0]: int(row[1]) for row in audiences}
    rows = await session.execute(
        text(
            "SELECT campaign_id, grp, COALESCE(excluded_reason, ''), count(*) FROM campaign_member "
            "WHERE campaign_id = ANY(:ids) GROUP BY campaign_id, grp, excluded_reason"
        ),
        {"ids": [campaign.campaign_id for campaign in campaigns]},
    )
    excluded: dict[str, dict[str, int]] = {campaign.campaign_id: {} for campaign in campaigns}
    groups = {campaign.campaign_id: {"treatment": 0, "control": 0} for campaign in campaigns}
    for campaign_id, grp, reason, n in rows:
        if grp == "excluded":
            excluded[campaign_id][reason] = int(n)
        else:
            groups[campaign_id][grp] = int(n)
    return {
        campaign.campaign_id: Progress(
            audience.get(campaign.snapshot_id, 0),
            excluded[campaign.campaign_id],
            groups[campaign.campaign_id]["treatment"],
            groups[campaign.campaign_id]["control"],
            campaign.issued,
        )
        for campaign in campaigns
    }


async def list_campaigns(
    session: AsyncSession,
    *,
    store_id: str | None,
    status: CampaignStatus | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[StoredCampaign]:
    """Newest first; only one store's when ``store_id`` is given; before the previous page's last."""
    conditions = ["(CAST(:store_id AS text) IS NULL OR store_id = :store_id)"]
    conditions.append("(CAST(:status AS text) IS NULL OR status = :status)")
    params: dict[str, Any] = {"store_id": store_id, "status": None if status is None else status.value, "limit": limit}
    if before is not None:
        conditions.append("(created_at, campaign_id) < (:at, :id)")
        params |= {"at": before[0], "id": before[1]}
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM campaign WHERE {' AND '.join(conditions)} "
            "ORDER BY created_at DESC, campaign_id DESC LIMIT :limit"
        ),
        params,
    )
    return [_campaign(row) for row in rows]


async def end_due(session: AsyncSession, now: datetime) -> list[str]:
    """Mark every running campaign whose validity has passed as ended; their ids."""
    rows = await session.execute(
        text(
            "UPDATE campaign SET status = 'ended' WHERE status = 'running' AND valid_until <= :now "
            "RETURNING campaign_id"
        ),
        {"now": now},
    )
    return [row[0] for row in rows]
