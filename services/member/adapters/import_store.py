"""What a legacy import keeps: which member each external id became, and the imported sale facts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def guard_external_id(session: AsyncSession, external_id: str) -> None:
    """Serialise every transaction importing this external id (until it ends)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"member-import:{external_id}"}
    )


async def imported_member(session: AsyncSession, external_id: str) -> str | None:
    """The member an external id was imported as, None when it never was."""
    row = (
        await session.execute(text("SELECT member_id FROM member_import WHERE external_id = :id"), {"id": external_id})
    ).first()
    return row.member_id if row is not None else None


async def record_import(
    session: AsyncSession, *, external_id: str, member_id: str, created: bool, at: datetime, by: str
) -> None:
    await session.execute(
        text(
            "INSERT INTO member_import (external_id, member_id, created, imported_at, imported_by) "
            "VALUES (:id, :member, :created, :at, :by)"
        ),
        {"id": external_id, "member": member_id, "created": created, "at": at, "by": by},
    )


async def record_imported_sale(
    session: AsyncSession,
    *,
    sale_id: str,
    member_id: str,
    store_id: str,
    occurred_at: datetime,
    amount_minor: int,
    categories: Sequence[str],
) -> bool:
    """Keep one imported purchase as a sale fact (no points, no lot); False when it was kept before."""
    inserted = await session.execute(
        text(
            "INSERT INTO sale_fact (sale_id, kind, member_id, store_id, occurred_at, amount_minor, categories, "
            "imported) VALUES (:sale, 'sale', :member, :store, :at, :amount, CAST(:categories AS text[]), true) "
            "ON CONFLICT (sale_id) DO NOTHING RETURNING 1"
        ),
        {
            "sale": sale_id,
            "member": member_id,
            "store": store_id,
            "at": occurred_at,
            "amount": amount_minor,
            "categories": sorted(set(categories)),
        },
    )
    return inserted.first() is not None
