"""Supply's projection of pricing's catalogue: whose SKU it is (newest version wins)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def upsert_item(
    session: AsyncSession, *, sku: str, supplier_id: str | None, category: str, name: str, version: int, at: datetime
) -> bool:
    """Keep the item as described unless a newer version is already kept; whether it changed."""
    row = await session.execute(
        text(
            "INSERT INTO catalogue_item (sku, supplier_id, category, name, version, updated_at) "
            "VALUES (:sku, :supplier, :category, :name, :version, :at) "
            "ON CONFLICT (sku) DO UPDATE SET supplier_id = excluded.supplier_id, category = excluded.category, "
            "name = excluded.name, version = excluded.version, updated_at = excluded.updated_at "
            "WHERE catalogue_item.version < excluded.version RETURNING sku"
        ),
        {"sku": sku, "supplier": supplier_id, "category": category, "name": name, "version": version, "at": at},
    )
    return row.first() is not None


async def supplier_of(session: AsyncSession, sku: str) -> str | None:
    row = (await session.execute(text("SELECT supplier_id FROM catalogue_item WHERE sku = :sku"), {"sku": sku})).first()
    return None if row is None else row.supplier_id
