"""Marketing's projections of other contexts' facts: items, members and their purchases.

Each write is idempotent (the consumer's inbox already drops a redelivered event; these
statements would change nothing the second time either) and never reads another service's
tables. A merge re-points the absorbed member's purchases and coupons to the survivor;
undoing it gives back exactly those whose buyer (``made_by``) or recipient (``issued_to``) is
the restored member or one merged into it earlier.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.marketing.domain.sales import JournalSale


async def upsert_item(
    session: AsyncSession, sku: str, category: str, cost_fen: int, version: int, at: datetime
) -> bool:
    """Keep the item as described, unless a newer version is already kept; whether it changed."""
    row = await session.execute(
        text(
            "INSERT INTO item (sku, category, cost_fen, version, updated_at) "
            "VALUES (:sku, :category, :cost, :version, :at) "
            "ON CONFLICT (sku) DO UPDATE SET category = excluded.category, cost_fen = excluded.cost_fen, "
            "version = excluded.version, updated_at = excluded.updated_at WHERE item.version < excluded.version "
            "RETURNING sku"
        ),
        {"sku": sku, "category": category, "cost": cost_fen, "version": version, "at": at},
    )
    return row.first() is not None


async def register_member(session: AsyncSession, member_id: str, home_store_id: str | None, at: datetime) -> None:
    await session.execute(
        text(
            "INSERT INTO member (member_id, home_store_id, registered_at, updated_at) VALUES (:id, :store, :at, :at) "
            "ON CONFLICT (member_id) DO NOTHING"
        ),
        {"id": member_id, "store": home_store_id, "at": at},
    )


async def ensure_member(session: AsyncSession, member_id: str, at: datetime) -> None:
    """A member known from another fact before their registration arrived."""
    await register_member(session, member_id, None, at)


async def set_member(session: AsyncSession, member_id: str, at: datetime, **columns: object) -> None:
    allowed = {"tier", "lifecycle_stage", "home_store_id", "consent", "erased"}
    if not set(columns) <= allowed:
        raise ValueError(f"not a member column: {sorted(set(columns) - allowed)}")
    await ensure_member(session, member_id, at)
    assignments = ", ".join(f"{column} = :{column}" for column in columns)
    await session.execute(
        text(f"UPDATE member SET {assignments}, updated_at = :at WHERE member_id = :id"),
        {"id": member_id, "at": at, **columns},
    )


async def set_consent(session: AsyncSession, member_id: str, channel: str, granted: bool, at: datetime) -> None:
    await ensure_member(session, member_id, at)
    await session.execute(
        text(
            "UPDATE member SET consent = CASE WHEN :granted "
            "THEN array(SELECT DISTINCT unnest(array_append(consent, CAST(:channel AS text))) ORDER BY 1) "
            "ELSE array_remove(consent, CAST(:channel AS text)) END, updated_at = :at WHERE member_id = :id"
        ),
        {"id": member_id, "channel": channel, "granted": granted, "at": at},
    )


async def erase_member(session: AsyncSession, member_id: str, at: datetime) -> int:
    """Mark the member erased and void their unused coupons; how many coupons were voided."""
    await set_member(session, member_id, at, erased=True)
    voided = await session.execute(
        text("UPDATE coupon SET state = 'void' WHERE member_id = :id AND state = 'active' AND used = 0 RETURNING code"),
        {"id": member_id},
    )
    return len(voided.all())


async def merge_members(session: AsyncSession, survivor: str, absorbed: str, at: datetime) -> None:
    await ensure_member(session, survivor, at)
    await ensure_member(session, absorbed, at)
    await session.execute(
        text("UPDATE member SET merged_into = :survivor, updated_at = :at WHERE member_id = :absorbed"),
        {"survivor": survivor, "absorbed": absorbed, "at": at},
    )
    for table in ("purchase", "coupon"):
        await session.execute(
            text(f"UPDATE {table} SET member_id = :survivor WHERE member_id = :absorbed"),
            {"survivor": survivor, "absorbed": absorbed},
        )


async def undo_merge(session: AsyncSession, survivor: str, restored: str, at: datetime) -> None:
    await session.execute(
        text("UPDATE member SET merged_into = NULL, updated_at = :at WHERE member_id = :restored"),
        {"restored": restored, "at": at},
    )
    # The restored member and everyone merged into it before (their merges were not undone).
    family = (
        "WITH RECURSIVE family(member_id) AS (SELECT CAST(:restored AS text) UNION "
        "SELECT m.member_id FROM member m JOIN family f ON m.merged_into = f.member_id) "
    )
    await session.execute(
        text(
            family + "UPDATE purchase SET member_id = :restored "
            "WHERE member_id = :survivor AND made_by IN (SELECT member_id FROM family)"
        ),
        {"restored": restored, "survivor": survivor},
    )
    await session.execute(
        text(
            family + "UPDATE coupon SET member_id = :restored "
            "WHERE member_id = :survivor AND issued_to IN (SELECT member_id FROM family)"
        ),
        {"restored": restored, "survivor": survivor},
    )


async def record_purchase(
    session: AsyncSession, sale: JournalSale, *, imported: bool = False, amount_fen: int | None = None
) -> bool:
    """Keep a member's sale with its lines (categories and costs from the item projection); whether it was new.

    ``amount_fen`` is what was paid when the lines do not say it (an imported purchase, whose lines may be unknown).
    """
    if sale.member_id is None or sale.is_return:
        raise ValueError("a purchase is a sale by a known member")
    inserted = await session.execute(
        text(
            "INSERT INTO purchase (sale_id, member_id, made_by, store_id, occurred_at, gross_fen, net_fen, cost_fen, "
            "imported) SELECT :sale_id, :member_id, :member_id, :store_id, :at, :gross, :net, "
            "COALESCE((SELECT sum(round(i.cost_fen * l.quantity)) FROM item i JOIN unnest(CAST(:skus AS text[]), "
            "CAST(:quantities AS numeric[])) AS l(sku, quantity) ON i.sku = l.sku), 0), :imported "
            "ON CONFLICT (sale_id) DO NOTHING RETURNING sale_id"
        ),
        {
            "sale_id": sale.sale_id,
            "member_id": sale.member_id,
            "store_id": sale.store_id,
            "at": sale.occurred_at,
            "gross": sum(max(line.gross_fen, 0) for line in sale.lines) if amount_fen is None else amount_fen,
            "net": sum(max(line.net_fen, 0) for line in sale.lines) if amount_fen is None else amount_fen,
            "skus": [line.sku for line in sale.lines],
            "quantities": [line.quantity for line in sale.lines],
            "imported": imported,
        },
    )
    if inserted.first() is None:
        return False
    if sale.lines:
        await session.execute(
            text(
                "INSERT INTO purchase_line (sale_id, line_number, sku, category, quantity, net_fen, cost_fen) "
                "SELECT :sale_id, l.line_number, l.sku, COALESCE(i.category, ''), l.quantity, l.net_fen, "
                "COALESCE(round(i.cost_fen * l.quantity), 0) FROM unnest(CAST(:numbers AS int[]), "
                "CAST(:skus AS text[]), CAST(:quantities AS numeric[]), CAST(:nets AS bigint[])) "
                "AS l(line_number, sku, quantity, net_fen) LEFT JOIN item i ON i.sku = l.sku"
            ),
            {
                "sale_id": sale.sale_id,
                "numbers": list(range(1, len(sale.lines) + 1)),
                "skus": [line.sku for line in sale.lines],
                "quantities": [line.quantity for line in sale.lines],
                "nets": [line.net_fen for line in sale.lines],
            },
        )
    return True


async def record_return(session: AsyncSession, original_sale_id: str, returned_fen: int) -> bool:
    """Take a return's amount off its sale (never below nothing); whether the sale is known here."""
    updated = await session.execute(
        text(
            "UPDATE purchase SET returned_fen = LEAST(net_fen, returned_fen + :returned) "
            "WHERE sale_id = :sale_id RETURNING sale_id"
        ),
        {"sale_id": original_sale_id, "returned": returned_fen},
    )
    return updated.first() is not None


async def import_purchases(session: AsyncSession, sales: Sequence[JournalSale]) -> int:
    """Keep many members' past sales at once, marked imported (as :func:`record_purchase` keeps one);
    sales already kept are left alone. How many were new."""
    if any(sale.member_id is None or sale.is_return for sale in sales):
        raise ValueError("a purchase is a sale by a known member")
    new = await session.execute(
        text(
            "INSERT INTO purchase (sale_id, member_id, made_by, store_id, occurred_at, gross_fen, net_fen, cost_fen, "
            "imported) SELECT id, member, member, store, at, gross, net, 0, true FROM unnest(CAST(:ids AS text[]), "
            "CAST(:members AS text[]), CAST(:stores AS text[]), CAST(:at AS timestamptz[]), "
            "CAST(:gross AS bigint[]), CAST(:net AS bigint[])) AS s(id, member, store, at, gross, net) "
            "ON CONFLICT (sale_id) DO NOTHING RETURNING sale_id"
        ),
        {
            "ids": [sale.sale_id for sale in sales],
            "members": [sale.member_id for sale in sales],
            "stores": [sale.store_id for sale in sales],
            "at": [sale.occurred_at for sale in sales],
            "gross": [sum(max(line.gross_fen, 0) for line in sale.lines) for sale in sales],
            "net": [sum(max(line.net_fen, 0) for line in sale.lines) for sale in sales],
        },
    )
    kept = {row[0] for row in new}
    lines = [
        (sale.sale_id, number, line)
        for sale in sales
        if sale.sale_id in kept
        for number, line in enumerate(sale.lines, 1)
    ]
    if lines:
        await session.execute(
            text(
                "INSERT INTO purchase_line (sale_id, line_number, sku, category, quantity, net_fen, cost_fen) "
                "SELECT l.sale_id, l.line_number, l.sku, COALESCE(i.category, ''), l.quantity, l.net_fen, "
                "COALESCE(round(i.cost_fen * l.quantity), 0) FROM unnest(CAST(:ids AS text[]), "
                "CAST(:numbers AS int[]), CAST(:skus AS text[]), CAST(:quantities AS numeric[]), "
                "CAST(:nets AS bigint[])) AS l(sale_id, line_number, sku, quantity, net_fen) "
                "LEFT JOIN item i ON i.sku = l.sku"
            ),
            {
                "ids": [sale_id for sale_id, _, _ in lines],
                "numbers": [number for _, number, _ in lines],
                "skus": [line.sku for _, _, line in lines],
                "quantities": [line.quantity for _, _, line in lines],
                "nets": [line.net_fen for _, _, line in lines],
            },
        )
        await session.execute(
            text(
                "UPDATE purchase p SET cost_fen = c.cost FROM (SELECT sale_id, sum(cost_fen) AS cost "
                "FROM purchase_line WHERE sale_id = ANY (CAST(:ids AS text[])) GROUP BY sale_id) c "
                "WHERE p.sale_id = c.sale_id"
            ),
            {"ids": sorted(kept)},
        )
    return len(kept)
