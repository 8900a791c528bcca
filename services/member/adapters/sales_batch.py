"""PostgreSQL persistence of a batch of journal sales at once (the SALES consumer's set-based path).

The same rows :mod:`loyalty_store` writes and reads for one sale (:func:`~loyalty_store.keep_earning_sale`,
:func:`~loyalty_store.purchases_and_spend`), for many sales or members in one statement each, in the
caller's transaction, with the member rows locked and the sales guarded by the caller.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.member.domain.points import PointsChange


@dataclass(frozen=True)
class EarningSale:
    """One active member's sale for :func:`keep_earning_sales` (``earn``: planned with a new lot, or None)."""

    sale_id: str
    member_id: str
    store_id: str
    occurred_at: datetime
    amount_minor: int
    original_sale_id: str
    categories: Sequence[str]
    earn: PointsChange | None


async def keep_earning_sales(session: AsyncSession, sales: Sequence[EarningSale], *, recorded_at: datetime) -> int:
    """``loyalty_store.keep_earning_sale`` for many sales of distinct members in one statement (member rows
    locked and the sales guarded by the caller); returns how many sales were kept (the rest were kept before)."""
    if not sales:
        return 0
    lots = [sale.earn.new_lot if sale.earn is not None else None for sale in sales]
    row = (
        await session.execute(
            text(
                "WITH input AS MATERIALIZED (SELECT i.*, CASE WHEN i.points > 0 "
                " THEN nextval('points_lot_lot_id_seq') END AS lot_id "
                " FROM unnest(CAST(:sales AS text[]), CAST(:members AS text[]), CAST(:stores AS text[]), "
                " CAST(:ats AS timestamptz[]), CAST(:amounts AS bigint[]), CAST(:originals AS text[]), "
                " CAST(:categories AS text[]), CAST(:points AS bigint[]), CAST(:remaining AS bigint[]), "
                " CAST(:expires AS timestamptz[]), CAST(:debts AS bigint[])) WITH ORDINALITY "
                " AS i(sale_id, member_id, store_id, occurred_at, amount_minor, original_sale_id, categories, points, "
                " remaining, expires_at, debt_change, ord) ORDER BY i.ord), "
                "sale AS (INSERT INTO sale_fact (sale_id, kind, member_id, store_id, occurred_at, amount_minor, "
                " original_sale_id, categories, points, lot_id) "
                " SELECT sale_id, 'sale', member_id, store_id, occurred_at, amount_minor, original_sale_id, "
                " ARRAY(SELECT jsonb_array_elements_text(CAST(categories AS jsonb))), points, lot_id FROM input "
                " ORDER BY ord ON CONFLICT (sale_id) DO NOTHING RETURNING sale_id), "
                "entry AS (INSERT INTO points_entry (member_id, kind, points, sale_id, reference, reason, store_id, "
                " recorded_at) SELECT i.member_id, 'earn', i.points, i.sale_id, '', '', i.store_id, :recorded "
                " FROM input i JOIN sale USING (sale_id) WHERE i.points > 0 ORDER BY i.ord "
                " RETURNING entry_id, sale_id), "
                "lot AS (INSERT INTO points_lot (lot_id, member_id, entry_id, points, remaining, earned_at, "
                " expires_at, sale_id) SELECT i.lot_id, i.member_id, e.entry_id, i.remaining, i.remaining, "
                " i.occurred_at, i.expires_at, i.sale_id FROM input i JOIN entry e USING (sale_id)), "
                "balance AS (UPDATE member m SET points_balance = m.points_balance + i.points, "
                " points_debt = m.points_debt + i.debt_change, updated_at = now() "
                " FROM input i JOIN entry e USING (sale_id) WHERE m.member_id = i.member_id) "
                "SELECT count(*) AS kept FROM sale"
            ),
            {
                "sales": [sale.sale_id for sale in sales],
                "members": [sale.member_id for sale in sales],
                "stores": [sale.store_id for sale in sales],
                "ats": [sale.occurred_at for sale in sales],
                "amounts": [sale.amount_minor for sale in sales],
                "originals": [sale.original_sale_id for sale in sales],
                "categories": [json.dumps(sorted(set(sale.categories))) for sale in sales],
                "points": [sale.earn.delta if sale.earn is not None else 0 for sale in sales],
                "remaining": [lot.remaining if lot is not None else 0 for lot in lots],
                "expires": [lot.expires_at if lot is not None else None for lot in lots],
                "debts": [sale.earn.debt_change if sale.earn is not None else 0 for sale in sales],
                "recorded": recorded_at,
            },
        )
    ).one()
    return int(row.kept)


async def kept_and_waiting(session: AsyncSession, sale_ids: Sequence[str]) -> tuple[set[str], set[str]]:
    """Of ``sale_ids``: those kept before, and those a return waits for (reversal pending), in one read."""
    if not sale_ids:
        return set(), set()
    rows = await session.execute(
        text(
            "SELECT sale_id, false AS waiting FROM sale_fact WHERE sale_id = ANY (CAST(:ids AS text[])) "
            "UNION ALL SELECT DISTINCT original_sale_id, true FROM sale_fact WHERE kind = 'return' "
            "AND reversal_pending AND original_sale_id = ANY (CAST(:ids AS text[]))"
        ),
        {"ids": sorted(set(sale_ids))},
    )
    kept: set[str] = set()
    waiting: set[str] = set()
    for row in rows:
        (waiting if row.waiting else kept).add(row.sale_id)
    return kept, waiting


@dataclass(frozen=True)
class Standing:
    """What a member's tier and stage are decided from, at one moment."""

    tier_spend_minor: int  # net spend (sales − returns, not imported) in the tier window
    last_purchase_at: datetime | None  # the latest sale not returned in full, up to the moment
    purchases_in_window: int  # such sales in the lifecycle window


async def standings(
    session: AsyncSession, members: Sequence[tuple[str, datetime, datetime, datetime]]
) -> dict[str, Standing]:
    """(member, now, tier window start, lifecycle window start) → :class:`Standing`, in one statement.

    The figures ``loyalty_store.purchases_and_spend`` gives one member for ``tiers.rolling_spend``
    and ``lifecycle.purchase_facts``: spend in ``(tier start, now]``, and the
    sales whose amount net of every return of them is above zero, at or before ``now``.
    """
    rows = await session.execute(
        text(
            "SELECT m.member_id, "
            " (SELECT coalesce(sum(CASE WHEN s.kind = 'sale' THEN s.amount_minor ELSE -s.amount_minor END), 0) "
            "  FROM sale_fact s WHERE s.member_id = m.member_id AND s.occurred_at > m.tier_start "
            "  AND s.occurred_at <= m.now AND NOT s.imported) AS spend, "
            " p.last_purchase_at, coalesce(p.in_window, 0) AS in_window "
            "FROM unnest(CAST(:members AS text[]), CAST(:nows AS timestamptz[]), CAST(:tier_starts AS timestamptz[]), "
            " CAST(:life_starts AS timestamptz[])) AS m(member_id, now, tier_start, life_start) "
            "LEFT JOIN LATERAL (SELECT max(s.occurred_at) AS last_purchase_at, "
            " count(*) FILTER (WHERE s.occurred_at > m.life_start) AS in_window "
            " FROM sale_fact s WHERE s.member_id = m.member_id AND s.kind = 'sale' AND s.occurred_at <= m.now "
            " AND s.amount_minor > coalesce((SELECT sum(r.amount_minor) FROM sale_fact r WHERE r.kind = 'return' "
            " AND r.original_sale_id = s.sale_id), 0)) p ON true"
        ),
        {
            "members": [member for member, _, _, _ in members],
            "nows": [now for _, now, _, _ in members],
            "tier_starts": [start for _, _, start, _ in members],
            "life_starts": [start for _, _, _, start in members],
        },
    )
    return {row.member_id: Standing(int(row.spend), row.last_purchase_at, int(row.in_window)) for row in rows}
