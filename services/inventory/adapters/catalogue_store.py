"""PostgreSQL projection of pricing's catalogue items (read-only for inventory, fed by ItemChanged).

Pricing owns the catalogue; this copy moves only to a higher item version, so events that
arrive late, out of order or more than once leave it as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    """A catalogue item as pricing last described it; ``unit`` is ``piece``, ``kg``, ``box`` or '' (unknown)."""

    sku: str
    name: str
    category: str
    barcode: str
    unit: str
    supplier_id: str
    active: bool
    version: int
    updated_at: datetime | None  # None: when pricing did not say (stored as the time it was applied)


async def apply_catalogue_item(session: AsyncSession, item: CatalogueItem) -> bool:
    """Store ``item`` unless a version at least as high is already stored; True when it was stored.

    The conditional upsert locks the row, so concurrent versions of one SKU end at the highest.
    """
    result = await session.execute(
        text(
            "INSERT INTO catalogue_item (sku, name, category, barcode, unit, supplier_id, active, version, updated_at) "
            "VALUES (:sku, :name, :category, :barcode, :unit, :supplier_id, :active, :version, "
            "coalesce(CAST(:updated_at AS timestamptz), now())) "
            "ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category, "
            "barcode = EXCLUDED.barcode, unit = EXCLUDED.unit, supplier_id = EXCLUDED.supplier_id, "
            "active = EXCLUDED.active, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at "
            "WHERE catalogue_item.version < EXCLUDED.version "
            "RETURNING 1"
        ),
        {
            "sku": item.sku,
            "name": item.name,
            "category": item.category,
            "barcode": item.barcode,
            "unit": item.unit,
            "supplier_id": item.supplier_id,
            "active": item.active,
            "version": item.version,
            "updated_at": item.updated_at,
        },
    )
    return result.first() is not None


async def catalogue_items(session: AsyncSession, skus: Iterable[str]) -> dict[str, CatalogueItem]:
    """The projected catalogue items of ``skus`` by SKU; SKUs pricing has not described yet are absent."""
    rows = await session.execute(
        text(
            "SELECT sku, name, category, barcode, unit, supplier_id, active, version, updated_at "
            "FROM catalogue_item WHERE sku = ANY (CAST(:skus AS text[]))"
        ),
        {"skus": sorted(set(skus))},
    )
    return {
        row.sku: CatalogueItem(
            sku=row.sku,
            name=row.name,
            category=row.category,
            barcode=row.barcode,
            unit=row.unit,
            supplier_id=row.supplier_id,
            active=row.active,
            version=row.version,
            updated_at=row.updated_at,
        )
        for row in rows
    }
