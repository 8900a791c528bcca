"""PostgreSQL persistence of markdown suggestions (one open suggestion per store and SKU)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.pricing.domain.markdown import MarkdownSuggestion, StoredMarkdown

_COLUMNS = (
    "markdown_id, store_id, sku, current_price_fen, suggested_price_fen, floor_price_fen, percent_off, reason, state, "
    "change_id, created_at"
)


def _row(row: Any) -> StoredMarkdown:
    return StoredMarkdown(*(getattr(row, column.strip()) for column in _COLUMNS.split(",")))


async def withdraw_open(session: AsyncSession, store_id: str, sku: str, now: datetime) -> None:
    """Withdraw the store's open suggestion for the SKU, if any (a new alert replaces it)."""
    await session.execute(
        text(
            "UPDATE markdown SET state = 'withdrawn', decided_at = :now WHERE store_id = :store AND sku = :sku "
            "AND state = 'open'"
        ),
        {"now": now, "store": store_id, "sku": sku},
    )


async def insert(
    session: AsyncSession, markdown_id: str, suggestion: MarkdownSuggestion, *, current_price_fen: int, now: datetime
) -> StoredMarkdown:
    """Keep a new open suggestion."""
    row = (
        await session.execute(
            text(f"""
                INSERT INTO markdown (markdown_id, store_id, sku, current_price_fen, suggested_price_fen,
                                      floor_price_fen, percent_off, reason, created_at)
                VALUES (:id, :store, :sku, :current, :suggested, :floor, :percent, :reason, :now)
                RETURNING {_COLUMNS}
            """),
            {
                "id": markdown_id,
                "store": suggestion.store_id,
                "sku": suggestion.sku,
                "current": current_price_fen,
                "suggested": suggestion.suggested_price_fen,
                "floor": suggestion.floor_price_fen,
                "percent": suggestion.percent,
                "reason": suggestion.reason,
                "now": now,
            },
        )
    ).one()
    return _row(row)


async def list_of_store(
    session: AsyncSession, store_id: str, state: str, after_sku: str, limit: int
) -> list[StoredMarkdown]:
    """A page of a store's suggestions in one state, by SKU."""
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM markdown WHERE store_id = :store AND state = :state AND sku > :after "
            "ORDER BY sku, created_at DESC LIMIT :limit"
        ),
        {"store": store_id, "state": state, "after": after_sku, "limit": limit},
    )
    return [_row(row) for row in rows]


async def lock(session: AsyncSession, markdown_id: str) -> StoredMarkdown | None:
    """The suggestion, locked until the transaction ends (None when unknown)."""
    row = (
        await session.execute(
            text(f"SELECT {_COLUMNS} FROM markdown WHERE markdown_id = :id FOR UPDATE"), {"id": markdown_id}
        )
    ).one_or_none()
    return None if row is None else _row(row)


async def record_decision(
    session: AsyncSession, markdown_id: str, *, state: str, change_id: str | None, decided_by: str, now: datetime
) -> StoredMarkdown:
    """Record an approval (with the change it scheduled) or a rejection."""
    row = (
        await session.execute(
            text(
                f"UPDATE markdown SET state = :state, change_id = :change, decided_at = :now, decided_by = :by "
                f"WHERE markdown_id = :id RETURNING {_COLUMNS}"
            ),
            {"state": state, "change": change_id, "now": now, "by": decided_by, "id": markdown_id},
        )
    ).one()
    return _row(row)
