"""PostgreSQL persistence of the points ledger (entries, lots, draws), tiers and sale facts.

A :class:`~services.member.domain.points.PointsChange` is written in the steps the domain
prescribes, in the caller's transaction, with the member row already locked: one ledger
entry, the draws on lots, the new lot, then balance and debt on the member row. So the
balance is always the sum of the ledger, and a lot's remaining its points minus its draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.member.domain.kpis import SaleFact, SaleKind
from services.member.domain.lifecycle import PurchaseRecord
from services.member.domain.points import PointsChange, PointsLot


@dataclass(frozen=True)
class LedgerEntry:
    entry_id: int
    kind: str
    points: int
    sale_id: str
    reference: str
    reason: str
    recorded_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class LedgerCheck:
    balance: int
    debt: int
    ledger_total: int
    lots_remaining: int
    lots_drawn_mismatch: int  # lots whose remaining is not their points minus their draws


@dataclass(frozen=True)
class SaleFactRow:
    sale_id: str
    kind: str
    member_id: str | None
    store_id: str
    occurred_at: datetime
    amount_minor: int
    original_sale_id: str
    points: int
    lot_id: int | None
    reversal_pending: bool


# ---- points -------------------------------------------------------------------------------------


async def next_lot_id(session: AsyncSession) -> str:
    return str((await session.execute(text("SELECT nextval('points_lot_lot_id_seq')"))).scalar_one())


async def open_lots(session: AsyncSession, member_id: str, *, including: str | None = None) -> list[PointsLot]:
    """A member's lots with points left (and the lot ``including``, for a reversal's own lot)."""
    rows = await session.execute(
        text(
            "SELECT lot_id, earned_at, expires_at, remaining FROM points_lot WHERE member_id = :member "
            "AND (remaining > 0 OR lot_id = CAST(:including AS bigint)) ORDER BY expires_at, lot_id"
        ),
        {"member": member_id, "including": int(including) if including else None},
    )
    return [PointsLot(str(row.lot_id), row.earned_at, row.expires_at, row.remaining) for row in rows]


async def apply_change(
    session: AsyncSession,
    member_id: str,
    change: PointsChange,
    *,
    recorded_at: datetime,
    sale_id: str = "",
    reference: str = "",
    store_id: str = "",
) -> int:
    """Book one planned change; returns the ledger entry's id."""
    entry_id = int(
        (
            await session.execute(
                text(
                    "INSERT INTO points_entry (member_id, kind, points, sale_id, reference, reason, store_id, "
                    "recorded_at) VALUES (:member, :kind, :points, :sale, :reference, :reason, :store, :at) "
                    "RETURNING entry_id"
                ),
                {
                    "member": member_id,
                    "kind": change.kind.value,
                    "points": change.delta,
                    "sale": sale_id,
                    "reference": reference,
                    "reason": change.reason,
                    "store": store_id,
                    "at": recorded_at,
                },
            )
        ).scalar_one()
    )
    if change.draws:
        lot_ids = [int(draw.lot_id) for draw in change.draws]
        points = [draw.points for draw in change.draws]
        await session.execute(
            text(
                "UPDATE points_lot l SET remaining = l.remaining - d.points FROM unnest(CAST(:lots AS bigint[]), "
                "CAST(:points AS bigint[])) AS d(lot_id, points) WHERE l.lot_id = d.lot_id"
            ),
            {"lots": lot_ids, "points": points},
        )
        await session.execute(
            text(
                "INSERT INTO points_draw (entry_id, lot_id, points) SELECT :entry, lot_id, points "
                "FROM unnest(CAST(:lots AS bigint[]), CAST(:points AS bigint[])) AS d(lot_id, points)"
            ),
            {"entry": entry_id, "lots": lot_ids, "points": points},
        )
    if change.new_lot is not None:
        lot = change.new_lot
        await session.execute(
            text(
                "INSERT INTO points_lot (lot_id, member_id, entry_id, points, remaining, earned_at, expires_at, "
                "sale_id) "
                "VALUES (:lot, :member, :entry, :points, :points, :earned, :expires, :sale)"
            ),
            {
                "lot": int(lot.lot_id),
                "member": member_id,
                "entry": entry_id,
                "points": lot.remaining,
                "earned": lot.earned_at,
                "expires": lot.expires_at,
                "sale": sale_id,
            },
        )
    await session.execute(
        text(
            "UPDATE member SET points_balance = points_balance + :delta, points_debt = points_debt + :debt, "
            "updated_at = now() WHERE member_id = :member"
        ),
        {"member": member_id, "delta": change.delta, "debt": change.debt_change},
    )
    return entry_id


async def ledger_page(
    session: AsyncSession, member_id: str, *, before_entry_id: int | None, limit: int
) -> list[LedgerEntry]:
    rows = await session.execute(
        text(
            "SELECT e.entry_id, e.kind, e.points, e.sale_id, e.reference, e.reason, e.recorded_at, l.expires_at "
            "FROM points_entry e LEFT JOIN points_lot l ON l.entry_id = e.entry_id WHERE e.member_id = :member "
            "AND (CAST(:before AS bigint) IS NULL OR e.entry_id < :before) ORDER BY e.entry_id DESC LIMIT :limit"
        ),
        {"member": member_id, "before": before_entry_id, "limit": limit},
    )
    return [
        LedgerEntry(
            row.entry_id, row.kind, row.points, row.sale_id, row.reference, row.reason, row.recorded_at, row.expires_at
        )
        for row in rows
    ]


async def expiring(session: AsyncSession, member_id: str, limit: int = 12) -> list[tuple[datetime, int]]:
    rows = await session.execute(
        text(
            "SELECT expires_at, sum(remaining) AS points FROM points_lot WHERE member_id = :member AND remaining > 0 "
            "GROUP BY expires_at ORDER BY expires_at LIMIT :limit"
        ),
        {"member": member_id, "limit": limit},
    )
    return [(row.expires_at, int(row.points)) for row in rows]


async def check_ledger(session: AsyncSession, member_id: str) -> LedgerCheck | None:
    row = (
        await session.execute(
            text(
                "SELECT m.points_balance, m.points_debt, "
                "(SELECT coalesce(sum(points), 0) FROM points_entry WHERE member_id = m.member_id) AS ledger, "
                "(SELECT coalesce(sum(remaining), 0) FROM points_lot WHERE member_id = m.member_id) AS lots, "
                "(SELECT count(*) FROM points_lot l WHERE l.member_id = m.member_id AND l.remaining <> l.points - "
                " (SELECT coalesce(sum(d.points), 0) FROM points_draw d WHERE d.lot_id = l.lot_id)) AS mismatched "
                "FROM member m WHERE m.member_id = :member"
            ),
            {"member": member_id},
        )
    ).first()
    if row is None:
        return None
    return LedgerCheck(row.points_balance, row.points_debt, int(row.ledger), int(row.lots), int(row.mismatched))


async def members_with_due_points(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    rows = await session.execute(
        text(
            "SELECT DISTINCT member_id FROM (SELECT member_id FROM points_lot "
            "WHERE remaining > 0 AND expires_at <= :now "
            "ORDER BY expires_at LIMIT :scan) due ORDER BY member_id LIMIT :limit"
        ),
        {"now": now, "scan": limit * 20, "limit": limit},
    )
    return [row.member_id for row in rows]


# ---- sale facts ---------------------------------------------------------------------------------


async def record_sale_fact(
    session: AsyncSession,
    *,
    sale_id: str,
    kind: str,
    member_id: str | None,
    store_id: str,
    occurred_at: datetime,
    amount_minor: int,
    original_sale_id: str,
    categories: Sequence[str],
) -> bool:
    """Keep one journal entry; False when it was already kept (a redelivery or replay)."""
    inserted = await session.execute(
        text(
            "INSERT INTO sale_fact (sale_id, kind, member_id, store_id, occurred_at, amount_minor, original_sale_id, "
            "categories) VALUES (:sale, :kind, :member, :store, :at, :amount, :original, CAST(:categories AS text[])) "
            "ON CONFLICT (sale_id) DO NOTHING RETURNING 1"
        ),
        {
            "sale": sale_id,
            "kind": kind,
            "member": member_id,
            "store": store_id,
            "at": occurred_at,
            "amount": amount_minor,
            "original": original_sale_id,
            "categories": sorted(set(categories)),
        },
    )
    return inserted.first() is not None


@dataclass(frozen=True)
class KeptSale:
    kept: bool  # False: the sale was kept before (a redelivery or a replay), nothing was written
    returns_waiting: bool  # a return of this sale arrived first and waits to be reversed


async def keep_earning_sale(
    session: AsyncSession,
    *,
    sale_id: str,
    member_id: str,
    store_id: str,
    occurred_at: datetime,
    amount_minor: int,
    original_sale_id: str,
    categories: Sequence[str],
    earn: PointsChange | None,
    recorded_at: datetime,
) -> KeptSale:
    """Keep a member's sale and book what it earned, in one statement (member row locked by the caller).

    The same rows :func:`record_sale_fact`, :func:`next_lot_id`, :func:`apply_change` and
    :func:`set_sale_points` write for an earn (``earn``: a planned earn with a new lot, ``None``
    when the sale earns nothing), written only when the sale was not kept before; the new lot's
    id is drawn from the lot sequence here. Also says whether a return of the sale waits for it.
    """
    lot = earn.new_lot if earn is not None else None
    row = (
        await session.execute(
            text(
                "WITH lot_id AS MATERIALIZED (SELECT CASE WHEN CAST(:earns AS boolean) "
                " THEN nextval('points_lot_lot_id_seq') END AS id), "
                "sale AS (INSERT INTO sale_fact (sale_id, kind, member_id, store_id, occurred_at, amount_minor, "
                " original_sale_id, categories, points, lot_id) "
                " SELECT :sale, 'sale', :member, :store, :at, :amount, :original, CAST(:categories AS text[]), "
                " :points, lot_id.id FROM lot_id ON CONFLICT (sale_id) DO NOTHING RETURNING sale_id, lot_id), "
                "entry AS (INSERT INTO points_entry (member_id, kind, points, sale_id, reference, reason, store_id, "
                " recorded_at) SELECT :member, :kind, :points, sale_id, '', :reason, :store, :recorded FROM sale "
                " WHERE CAST(:earns AS boolean) RETURNING entry_id), "
                "lot AS (INSERT INTO points_lot (lot_id, member_id, entry_id, points, remaining, earned_at, "
                " expires_at, sale_id) SELECT sale.lot_id, :member, entry.entry_id, :remaining, :remaining, :earned, "
                " :expires, :sale FROM sale, entry), "
                "balance AS (UPDATE member SET points_balance = points_balance + :points, "
                " points_debt = points_debt + :debt, updated_at = now() "
                " WHERE member_id = :member AND EXISTS (SELECT 1 FROM entry)) "
                "SELECT EXISTS (SELECT 1 FROM sale) AS kept, EXISTS (SELECT 1 FROM sale_fact WHERE kind = 'return' "
                " AND original_sale_id = :sale AND reversal_pending) AS returns_waiting"
            ),
            {
                "earns": earn is not None,
                "sale": sale_id,
                "member": member_id,
                "store": store_id,
                "at": occurred_at,
                "amount": amount_minor,
                "original": original_sale_id,
                "categories": sorted(set(categories)),
                "points": earn.delta if earn is not None else 0,
                "kind": earn.kind.value if earn is not None else "earn",
                "reason": earn.reason if earn is not None else "",
                "recorded": recorded_at,
                "remaining": lot.remaining if lot is not None else 0,
                "earned": lot.earned_at if lot is not None else None,
                "expires": lot.expires_at if lot is not None else None,
                "debt": earn.debt_change if earn is not None else 0,
            },
        )
    ).one()
    return KeptSale(bool(row.kept), bool(row.returns_waiting))


async def read_sale_fact(session: AsyncSession, sale_id: str, *, lock: bool = False) -> SaleFactRow | None:
    row = (
        await session.execute(
            text(
                "SELECT sale_id, kind, member_id, store_id, occurred_at, amount_minor, original_sale_id, points, "
                "lot_id, "
                "reversal_pending FROM sale_fact WHERE sale_id = :sale" + (" FOR UPDATE" if lock else "")
            ),
            {"sale": sale_id},
        )
    ).first()
    return _sale_fact(row) if row is not None else None


async def pending_returns_of(session: AsyncSession, original_sale_id: str) -> list[SaleFactRow]:
    rows = await session.execute(
        text(
            "SELECT sale_id, kind, member_id, store_id, occurred_at, amount_minor, original_sale_id, points, lot_id, "
            "reversal_pending FROM sale_fact WHERE kind = 'return' AND original_sale_id = :sale AND reversal_pending "
            "ORDER BY occurred_at, sale_id FOR UPDATE"
        ),
        {"sale": original_sale_id},
    )
    return [_sale_fact(row) for row in rows]


async def reversed_so_far(session: AsyncSession, original_sale_id: str) -> int:
    return int(
        (
            await session.execute(
                text(
                    "SELECT coalesce(sum(points), 0) FROM sale_fact WHERE kind = 'return' AND original_sale_id = :sale"
                ),
                {"sale": original_sale_id},
            )
        ).scalar_one()
    )


async def set_sale_points(
    session: AsyncSession,
    sale_id: str,
    *,
    points: int,
    lot_id: str | None = None,
    member_id: str | None = None,
    reversal_pending: bool = False,
) -> None:
    await session.execute(
        text(
            "UPDATE sale_fact SET points = :points, lot_id = coalesce(CAST(:lot AS bigint), lot_id), "
            "member_id = coalesce(:member, member_id), reversal_pending = :pending WHERE sale_id = :sale"
        ),
        {
            "sale": sale_id,
            "points": points,
            "lot": int(lot_id) if lot_id else None,
            "member": member_id,
            "pending": reversal_pending,
        },
    )


async def member_purchases(session: AsyncSession, member_id: str) -> list[PurchaseRecord]:
    """The member's sales, each net of its returns (fully returned ones included, at zero)."""
    rows = await session.execute(
        text(
            "SELECT s.sale_id, s.occurred_at, s.store_id, s.amount_minor - coalesce(r.returned, 0) AS net, "
            "s.categories "
            "FROM sale_fact s LEFT JOIN LATERAL (SELECT sum(amount_minor) AS returned FROM sale_fact r "
            "WHERE r.kind = 'return' AND r.original_sale_id = s.sale_id) r ON true "
            "WHERE s.member_id = :member AND s.kind = 'sale' ORDER BY s.occurred_at, s.sale_id"
        ),
        {"member": member_id},
    )
    return [
        PurchaseRecord(row.sale_id, row.occurred_at, row.store_id, int(row.net), tuple(row.categories or ()))
        for row in rows
    ]


async def purchases_and_spend(
    session: AsyncSession, member_id: str, spend_start: datetime
) -> tuple[list[PurchaseRecord], list[tuple[datetime, int]]]:
    """:func:`member_purchases` and :func:`spend_since` of one member, read in one statement."""
    rows = await session.execute(
        text(
            "SELECT s.kind, s.sale_id, s.occurred_at, s.store_id, s.amount_minor, s.imported, s.categories, "
            "CASE WHEN s.kind = 'sale' THEN (SELECT sum(r.amount_minor) FROM sale_fact r "
            "WHERE r.kind = 'return' AND r.original_sale_id = s.sale_id) END AS returned "
            "FROM sale_fact s WHERE s.member_id = :member ORDER BY s.occurred_at, s.sale_id"
        ),
        {"member": member_id},
    )
    purchases: list[PurchaseRecord] = []
    spend: list[tuple[datetime, int]] = []
    for row in rows:
        amount = int(row.amount_minor)
        if row.kind == "sale":
            net = amount - int(row.returned or 0)
            purchases.append(
                PurchaseRecord(row.sale_id, row.occurred_at, row.store_id, net, tuple(row.categories or ()))
            )
        if row.occurred_at > spend_start and not row.imported:
            spend.append((row.occurred_at, amount if row.kind == "sale" else -amount))
    return purchases, spend


async def spend_since(session: AsyncSession, member_id: str, start: datetime) -> list[tuple[datetime, int]]:
    """(occurred_at, signed amount) of the member's sales and returns after ``start`` (imported history never
    qualifies for a tier: the legacy CRM's tiers are not this chain's)."""
    rows = await session.execute(
        text(
            "SELECT occurred_at, CASE WHEN kind = 'sale' THEN amount_minor ELSE -amount_minor END AS amount "
            "FROM sale_fact WHERE member_id = :member AND occurred_at > :start AND NOT imported"
        ),
        {"member": member_id, "start": start},
    )
    return [(row.occurred_at, int(row.amount)) for row in rows]


async def sale_facts(session: AsyncSession, start: datetime, end: datetime, store_id: str | None) -> list[SaleFact]:
    rows = await session.execute(
        text(
            "SELECT sale_id, member_id, store_id, occurred_at, amount_minor, kind FROM sale_fact "
            "WHERE occurred_at >= :start AND occurred_at < :end AND (CAST(:store AS text) IS NULL OR store_id = :store)"
        ),
        {"start": start, "end": end, "store": store_id},
    )
    return [
        SaleFact(row.sale_id, row.member_id, row.store_id, row.occurred_at, int(row.amount_minor), SaleKind(row.kind))
        for row in rows
    ]


def _sale_fact(row: Any) -> SaleFactRow:
    return SaleFactRow(
        row.sale_id,
        row.kind,
        row.member_id,
        row.store_id,
        row.occurred_at,
        int(row.amount_minor),
        row.original_sale_id,
        int(row.points),
        row.lot_id,
        row.reversal_pending,
    )


async def item_categories(session: AsyncSession, skus: Sequence[str]) -> dict[str, tuple[str, str]]:
    """SKU → (category, department) for the SKUs the projection knows."""
    if not skus:
        return {}
    rows = await session.execute(
        text("SELECT sku, category_id, department_id FROM item_category WHERE sku = ANY (CAST(:skus AS text[]))"),
        {"skus": sorted(set(skus))},
    )
    return {row.sku: (row.category_id, row.department_id) for row in rows}


# ---- tiers and lifecycle --------------------------------------------------------------------------


async def set_tier(session: AsyncSession, member_id: str, tier: str, since: datetime) -> None:
    await session.execute(
        text("UPDATE member SET tier = :tier, tier_since = :since, updated_at = now() WHERE member_id = :member"),
        {"member": member_id, "tier": tier, "since": since},
    )


async def record_tier_change(
    session: AsyncSession, member_id: str, *, from_tier: str, to_tier: str, reason: str, spend_minor: int, at: datetime
) -> int:
    return int(
        (
            await session.execute(
                text(
                    "INSERT INTO tier_change (member_id, from_tier, to_tier, reason, qualifying_spend_minor, "
                    "changed_at) "
                    "VALUES (:member, :from, :to, :reason, :spend, :at) RETURNING id"
                ),
                {
                    "member": member_id,
                    "from": from_tier,
                    "to": to_tier,
                    "reason": reason,
                    "spend": spend_minor,
                    "at": at,
                },
            )
        ).scalar_one()
    )


async def tier_changes(session: AsyncSession, member_id: str, *, before_id: int | None, limit: int) -> list[Any]:
    rows = await session.execute(
        text(
            "SELECT id, from_tier, to_tier, reason, qualifying_spend_minor, changed_at FROM tier_change "
            "WHERE member_id = :member AND (CAST(:before AS bigint) IS NULL OR id < :before) "
            "ORDER BY id DESC LIMIT :limit"
        ),
        {"member": member_id, "before": before_id, "limit": limit},
    )
    return list(rows)


async def set_lifecycle_stage(session: AsyncSession, member_id: str, stage: str) -> None:
    await session.execute(
        text("UPDATE member SET lifecycle_stage = :stage WHERE member_id = :member"),
        {"member": member_id, "stage": stage},
    )
