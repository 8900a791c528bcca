"""PostgreSQL persistence of coupons, holds, redemptions, conflicts and the counters limits are checked on.

Every change of a use takes its row locks in one order — the coupon, then the member's use
counter for the campaign, then the campaign's budget row — so holds, redemptions from the
journal, releases and lapses never deadlock one another. The campaign row is the hot one (a
storm of holds on one campaign): it is changed by one conditional ``UPDATE … RETURNING`` at the
end of the transaction, held for as short a time as the transaction allows, and the CHECK
constraints of the schema refuse any change that would overspend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.marketing.adapters.offer_json import offer_from_json, terms_from_json
from services.marketing.domain.coupons import Budget, CouponState, CouponUse
from services.marketing.domain.offers import CouponTerms, Offer


@dataclass(frozen=True)
class CampaignOffer:
    campaign_id: str
    status: str
    offer: Offer
    terms: CouponTerms
    budget: Budget


@dataclass(frozen=True)
class CouponRow:
    code: str
    campaign_id: str
    use: CouponUse


@dataclass(frozen=True)
class HoldRow:
    hold_id: str
    code: str
    campaign_id: str
    member_id: str
    client_id: str
    store_id: str | None
    channel: str
    discount_fen: int
    line_discounts_fen: list[int]
    status: str
    expires_at: datetime


_HOLD_COLUMNS = (
    "hold_id, code, campaign_id, member_id, client_id, store_id, channel, discount_fen, line_discounts_fen, "
    "status, expires_at"
)


def _hold(row: Any) -> HoldRow:
    return HoldRow(
        hold_id=row[0],
        code=row[1],
        campaign_id=row[2],
        member_id=row[3],
        client_id=row[4],
        store_id=row[5],
        channel=row[6],
        discount_fen=row[7],
        line_discounts_fen=list(row[8]),
        status=row[9],
        expires_at=row[10],
    )


async def lock_coupon(session: AsyncSession, code: str, *, lock: bool = True) -> CouponRow | None:
    """The coupon, its row locked (``lock``) or only read (a hold checks first and claims its use last)."""
    row = (
        await session.execute(
            text(
                "SELECT code, campaign_id, member_id, use_limit, used, held, state FROM coupon "
                f"WHERE code = :code{' FOR UPDATE' if lock else ''}"
            ),
            {"code": code},
        )
    ).first()
    if row is None:
        return None
    return CouponRow(row[0], row[1], CouponUse(row[2], row[3], row[4], row[5], CouponState(row[6])))


async def claim_use(session: AsyncSession, code: str) -> bool:
    """Hold one more use of the coupon if one is left (locks its row until commit); False when none is."""
    row = await session.execute(
        text(
            "UPDATE coupon SET held = held + 1 WHERE code = :code AND state = 'active' AND used + held < use_limit "
            "RETURNING code"
        ),
        {"code": code},
    )
    return row.first() is not None


async def claim_member_use(session: AsyncSession, campaign_id: str, member_id: str, limit: int) -> bool:
    """Hold one more of the member's uses of the campaign's offer if within ``limit``; False when not."""
    row = await session.execute(
        text(
            "INSERT INTO member_coupon_use AS u (campaign_id, member_id, held) VALUES (:campaign_id, :member_id, 1) "
            "ON CONFLICT (campaign_id, member_id) DO UPDATE SET held = u.held + 1 WHERE u.used + u.held < :limit "
            "RETURNING u.member_id"
        ),
        {"campaign_id": campaign_id, "member_id": member_id, "limit": limit},
    )
    return row.first() is not None


async def member_uses(session: AsyncSession, campaign_id: str, member_id: str) -> int:
    """How often the member has used or holds the campaign's offer (read, not locked)."""
    row = (
        await session.execute(
            text(
                "SELECT used + held FROM member_coupon_use WHERE campaign_id = :campaign_id AND member_id = :member_id"
            ),
            {"campaign_id": campaign_id, "member_id": member_id},
        )
    ).first()
    return 0 if row is None else int(row[0])


async def campaign_offers(session: AsyncSession, campaign_ids: Sequence[str]) -> dict[str, CampaignOffer]:
    rows = await session.execute(
        text(
            "SELECT campaign_id, status, offer, terms, max_coupons, max_discount_fen, issued, spent_fen, held_fen "
            "FROM campaign WHERE campaign_id = ANY(:ids)"
        ),
        {"ids": list(campaign_ids)},
    )
    return {
        row[0]: CampaignOffer(
            row[0], row[1], offer_from_json(row[2]), terms_from_json(row[3]), Budget(row[4], row[5], *row[6:9])
        )
        for row in rows
    }


async def coupon_campaigns(session: AsyncSession, codes: Sequence[str]) -> dict[str, str]:
    rows = await session.execute(
        text("SELECT code, campaign_id FROM coupon WHERE code = ANY(:codes)"), {"codes": list(codes)}
    )
    return {row[0]: row[1] for row in rows}


async def lock_member_use(session: AsyncSession, campaign_id: str, member_id: str) -> tuple[int, int]:
    """The member's (used, held) for the campaign, with its row locked (created at zero when new)."""
    await session.execute(
        text(
            "INSERT INTO member_coupon_use (campaign_id, member_id) VALUES (:campaign_id, :member_id) "
            "ON CONFLICT DO NOTHING"
        ),
        {"campaign_id": campaign_id, "member_id": member_id},
    )
    row = (
        await session.execute(
            text(
                "SELECT used, held FROM member_coupon_use WHERE campaign_id = :campaign_id AND member_id = :member_id "
                "FOR UPDATE"
            ),
            {"campaign_id": campaign_id, "member_id": member_id},
        )
    ).one()
    return int(row[0]), int(row[1])


async def categories(session: AsyncSession, skus: Sequence[str]) -> dict[str, str]:
    rows = await session.execute(text("SELECT sku, category FROM item WHERE sku = ANY(:skus)"), {"skus": list(skus)})
    return {row[0]: row[1] for row in rows}


async def move_budget(
    session: AsyncSession, campaign_id: str, *, held_fen: int = 0, spent_fen: int = 0, redemptions: int = 0
) -> bool:
    """Add to the campaign's held and spent discount; False (nothing changed) when that would overspend."""
    row = (
        await session.execute(
            text(
                "UPDATE campaign SET held_fen = held_fen + :held, spent_fen = spent_fen + :spent, "
                "redemptions = redemptions + :redemptions "
                "WHERE campaign_id = :campaign_id "
                "AND (max_discount_fen IS NULL OR spent_fen + :spent + held_fen + :held <= max_discount_fen) "
                "RETURNING campaign_id"
            ),
            {"campaign_id": campaign_id, "held": held_fen, "spent": spent_fen, "redemptions": redemptions},
        )
    ).first()
    return row is not None


async def move_use(
    session: AsyncSession, code: str, campaign_id: str, member_id: str | None, *, used: int, held: int
) -> None:
    """Add to the coupon's and the member's used and held counts (rows already locked by the caller)."""
    await session.execute(
        text("UPDATE coupon SET used = used + :used, held = held + :held WHERE code = :code"),
        {"code": code, "used": used, "held": held},
    )
    if member_id is not None:
        await session.execute(
            text(
                "UPDATE member_coupon_use SET used = used + :used, held = held + :held "
                "WHERE campaign_id = :campaign_id AND member_id = :member_id"
            ),
            {"campaign_id": campaign_id, "member_id": member_id, "used": used, "held": held},
        )


async def insert_hold(session: AsyncSession, hold: HoldRow, now: datetime) -> None:
    await session.execute(
        text(
            "INSERT INTO coupon_hold (hold_id, code, campaign_id, member_id, client_id, store_id, channel, "
            "discount_fen, line_discounts_fen, status, expires_at, created_at) VALUES (:hold_id, :code, "
            ":campaign_id, :member_id, :client_id, :store_id, :channel, :discount_fen, :line_discounts_fen, :status, "
            ":expires_at, :now)"
        ),
        {**asdict(hold), "now": now},
    )


async def hold_code(session: AsyncSession, hold_id: str) -> str | None:
    """The code a hold is of (to lock the coupon first, in the one lock order)."""
    row = (
        await session.execute(text("SELECT code FROM coupon_hold WHERE hold_id = :hold_id"), {"hold_id": hold_id})
    ).first()
    return None if row is None else str(row[0])


async def lock_hold(session: AsyncSession, hold_id: str) -> HoldRow | None:
    row = (
        await session.execute(
            text(f"SELECT {_HOLD_COLUMNS} FROM coupon_hold WHERE hold_id = :hold_id FOR UPDATE"), {"hold_id": hold_id}
        )
    ).first()
    return None if row is None else _hold(row)


async def open_hold_for(session: AsyncSession, code: str, member_id: str | None) -> HoldRow | None:
    """The member's oldest open hold of the code (the coupon row is locked, so it cannot change meanwhile)."""
    row = (
        await session.execute(
            text(
                f"SELECT {_HOLD_COLUMNS} FROM coupon_hold WHERE code = :code AND status = 'held' "
                "AND (CAST(:member_id AS text) IS NULL OR member_id = :member_id) ORDER BY created_at, hold_id LIMIT 1"
            ),
            {"code": code, "member_id": member_id},
        )
    ).first()
    return None if row is None else _hold(row)


async def end_hold(session: AsyncSession, hold_id: str, status: str, now: datetime, sale_id: str | None = None) -> None:
    await session.execute(
        text("UPDATE coupon_hold SET status = :status, ended_at = :now, sale_id = :sale_id WHERE hold_id = :hold_id"),
        {"hold_id": hold_id, "status": status, "now": now, "sale_id": sale_id},
    )


async def due_holds(session: AsyncSession, now: datetime, limit: int) -> list[tuple[str, str]]:
    """(hold_id, code) of open holds past their time, oldest first, skipping any another worker has."""
    rows = await session.execute(
        text(
            "SELECT hold_id, code FROM coupon_hold WHERE status = 'held' AND expires_at <= :now "
            "ORDER BY expires_at LIMIT :limit"
        ),
        {"now": now, "limit": limit},
    )
    return [(row[0], row[1]) for row in rows]


@dataclass(frozen=True)
class RedemptionRow:
    code: str
    sale_id: str
    campaign_id: str
    member_id: str | None
    store_id: str
    channel: str
    discount_fen: int
    hold_id: str | None
    sale_gross_fen: int
    occurred_at: datetime
    returned_fen: int = 0


async def redemption_exists(session: AsyncSession, code: str, sale_id: str) -> bool:
    row = await session.execute(
        text("SELECT 1 FROM redemption WHERE code = :code AND sale_id = :sale_id"), {"code": code, "sale_id": sale_id}
    )
    return row.first() is not None


async def conflict_exists(session: AsyncSession, code: str, sale_id: str) -> bool:
    row = await session.execute(
        text("SELECT 1 FROM redemption_conflict WHERE code = :code AND sale_id = :sale_id"),
        {"code": code, "sale_id": sale_id},
    )
    return row.first() is not None


async def insert_redemption(session: AsyncSession, redemption: RedemptionRow, now: datetime) -> None:
    await session.execute(
        text(
            "INSERT INTO redemption (code, sale_id, campaign_id, member_id, store_id, channel, discount_fen, hold_id, "
            "sale_gross_fen, occurred_at, recorded_at) VALUES (:code, :sale_id, :campaign_id, :member_id, :store_id, "
            ":channel, :discount_fen, :hold_id, :sale_gross_fen, :occurred_at, :now)"
        ),
        {**asdict(redemption), "now": now},
    )


async def first_redemption(session: AsyncSession, code: str) -> str | None:
    row = (
        await session.execute(
            text(
                "SELECT sale_id FROM redemption WHERE code = :code AND given_back_at IS NULL "
                "ORDER BY recorded_at, sale_id LIMIT 1"
            ),
            {"code": code},
        )
    ).first()
    return None if row is None else str(row[0])


@dataclass(frozen=True)
class ConflictRow:
    code: str
    sale_id: str
    reason: str
    campaign_id: str | None
    store_id: str
    member_id: str | None
    discount_fen: int
    redeemed_by_sale_id: str | None
    occurred_at: datetime


async def insert_conflict(session: AsyncSession, conflict: ConflictRow, now: datetime) -> None:
    await session.execute(
        text(
            "INSERT INTO redemption_conflict (code, sale_id, reason, campaign_id, store_id, member_id, discount_fen, "
            "redeemed_by_sale_id, occurred_at, recorded_at) VALUES (:code, :sale_id, :reason, :campaign_id, "
            ":store_id, :member_id, :discount_fen, :redeemed_by_sale_id, :occurred_at, :now) ON CONFLICT DO NOTHING"
        ),
        {**asdict(conflict), "now": now},
    )


async def redemptions_of_sale(session: AsyncSession, sale_id: str) -> list[RedemptionRow]:
    rows = await session.execute(
        text(
            "SELECT code, sale_id, campaign_id, member_id, store_id, channel, discount_fen, hold_id, sale_gross_fen, "
            "occurred_at, returned_fen FROM redemption WHERE sale_id = :sale_id AND given_back_at IS NULL "
            "ORDER BY code"
        ),
        {"sale_id": sale_id},
    )
    return [RedemptionRow(*row) for row in rows]


async def add_returned(session: AsyncSession, code: str, sale_id: str, returned_fen: int) -> int | None:
    """Add a return's amount to a redemption not given back yet; the total returned so far (None: given back)."""
    row = (
        await session.execute(
            text(
                "UPDATE redemption SET returned_fen = returned_fen + :returned "
                "WHERE code = :code AND sale_id = :sale_id AND given_back_at IS NULL RETURNING returned_fen"
            ),
            {"code": code, "sale_id": sale_id, "returned": returned_fen},
        )
    ).first()
    return None if row is None else int(row[0])


async def give_back(session: AsyncSession, code: str, sale_id: str, by: str, now: datetime) -> None:
    await session.execute(
        text(
            "UPDATE redemption SET given_back_at = :now, given_back_by = :by WHERE code = :code AND sale_id = :sale_id"
        ),
        {"code": code, "sale_id": sale_id, "by": by, "now": now},
    )


@dataclass(frozen=True)
class CouponView:
    code: str
    campaign_id: str
    member_id: str | None
    use_limit: int
    used: int
    held: int
    state: str
    issued_at: datetime
    offer: Offer
    terms: CouponTerms


async def member_coupons(
    session: AsyncSession, member_id: str, *, include_inactive: bool, now: datetime, after: str, limit: int
) -> list[CouponView]:
    """A member's coupons, soonest to expire first (then by code), after the page key ``after``."""
    active = (
        "" if include_inactive else "AND c.state = 'active' AND c.used + c.held < c.use_limit AND k.valid_until > :now "
    )
    rows = await session.execute(
        text(
            "SELECT c.code, c.campaign_id, c.member_id, c.use_limit, c.used, c.held, c.state, c.issued_at, k.offer, "
            "k.terms, to_char(k.valid_until AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') || ':' || c.code AS page_key "
            "FROM coupon c JOIN campaign k ON k.campaign_id = c.campaign_id "
            f"WHERE c.member_id = :member_id {active}"
            "AND to_char(k.valid_until AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') || ':' || c.code > :after "
            "ORDER BY page_key LIMIT :limit"
        ),
        {"member_id": member_id, "now": now, "after": after, "limit": limit},
    )
    return [
        CouponView(
            code=row[0],
            campaign_id=row[1],
            member_id=row[2],
            use_limit=row[3],
            used=row[4],
            held=row[5],
            state=row[6],
            issued_at=row[7],
            offer=offer_from_json(row[8]),
            terms=terms_from_json(row[9]),
        )
        for row in rows
    ]


def page_key(coupon: CouponView) -> str:
    """The key of a coupon in :func:`member_coupons`' order (what a page token continues after)."""
    return coupon.terms.valid_until.astimezone(UTC).strftime("%Y%m%d%H%M%S%f") + ":" + coupon.code


async def insert_generic_code(
    session: AsyncSession, code: str, campaign_id: str, use_limit: int, now: datetime
) -> bool:
    inserted = await session.execute(
        text(
            "INSERT INTO coupon (code, campaign_id, use_limit, issued_at) VALUES (:code, :campaign_id, :limit, :now) "
            "ON CONFLICT (code) DO NOTHING RETURNING code"
        ),
        {"code": code, "campaign_id": campaign_id, "limit": use_limit, "now": now},
    )
    return inserted.first() is not None


async def conflicts(
    session: AsyncSession,
    *,
    campaign_id: str | None,
    store_id: str | None,
    before: tuple[datetime, str, str] | None,
    limit: int,
) -> list[ConflictRow]:
    """Redemption conflicts, newest first, optionally of one campaign or store, before a page key."""
    conditions = ["(CAST(:campaign_id AS text) IS NULL OR campaign_id = :campaign_id)"]
    conditions.append("(CAST(:store_id AS text) IS NULL OR store_id = :store_id)")
    params: dict[str, Any] = {"campaign_id": campaign_id, "store_id": store_id, "limit": limit}
    if before is not None:
        conditions.append("(occurred_at, sale_id, code) < (:at, :sale_id, :code)")
        params |= {"at": before[0], "sale_id": before[1], "code": before[2]}
    rows = await session.execute(
        text(
            "SELECT code, sale_id, reason, campaign_id, store_id, member_id, discount_fen, redeemed_by_sale_id, "
            f"occurred_at FROM redemption_conflict WHERE {' AND '.join(conditions)} "
            "ORDER BY occurred_at DESC, sale_id DESC, code DESC LIMIT :limit"
        ),
        params,
    )
    return [ConflictRow(*row) for row in rows]
