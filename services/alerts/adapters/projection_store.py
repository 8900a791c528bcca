"""The alerts service's projections of other contexts' facts, in PostgreSQL.

Each is written by one consumer and read when a finding is ranked: SKU → category (pricing's
items, the higher version wins), till-price history per store and SKU (with whether the
promotion started or ended), stock-out spells per location and SKU, shelf labels given up,
campaigns and when they end, and the SALES journal's last entry per terminal and per store with
the store's silences.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.domain.causes import (
    CampaignEnd,
    GivenUpLabel,
    JournalSilence,
    PriceChange,
    StockOut,
)
from services.alerts.domain.terminals import TerminalSeen


async def item_changed(session: AsyncSession, sku: str, category: str, version: int) -> None:
    await session.execute(
        text(
            "INSERT INTO sku_category (sku, category, version) VALUES (:sku, :category, :version) "
            "ON CONFLICT (sku) DO UPDATE SET category = EXCLUDED.category, version = EXCLUDED.version "
            "WHERE sku_category.version < EXCLUDED.version"
        ),
        {"sku": sku, "category": category, "version": version},
    )


async def category_skus(session: AsyncSession, category: str) -> frozenset[str]:
    rows = await session.execute(text("SELECT sku FROM sku_category WHERE category = :c"), {"c": category})
    return frozenset(row.sku for row in rows)


async def price_changed(
    session: AsyncSession,
    *,
    store_id: str,
    sku: str,
    book_version: int,
    old_fen: int | None,
    new_fen: int | None,
    promoted: bool,
    change_id: str,
    effective_at: datetime,
) -> None:
    """Record one till-price change; whether the promotion started or ended is against the state before."""
    before = (
        await session.execute(
            text("SELECT promoted, book_version FROM price_state WHERE store_id = :store AND sku = :sku FOR UPDATE"),
            {"store": store_id, "sku": sku},
        )
    ).first()
    was_promoted = bool(before.promoted) if before is not None else False
    if before is not None and before.book_version >= book_version:
        return  # an older change arriving late: the history already moved past it
    await session.execute(
        text(
            "INSERT INTO price_change (store_id, sku, book_version, old_unit_price_fen, new_unit_price_fen, "
            "promotion_started, promotion_ended, promoted, change_id, effective_at) VALUES (:store, :sku, :version, "
            ":old, :new, :started, :ended, :promoted, :change, :at) ON CONFLICT DO NOTHING"
        ),
        {
            "store": store_id,
            "sku": sku,
            "version": book_version,
            "old": old_fen,
            "new": new_fen,
            "started": promoted and not was_promoted,
            "ended": was_promoted and not promoted,
            "promoted": promoted,
            "change": change_id,
            "at": effective_at,
        },
    )
    await session.execute(
        text(
            "INSERT INTO price_state (store_id, sku, promoted, unit_price_fen, book_version) "
            "VALUES (:store, :sku, :promoted, :new, :version) ON CONFLICT (store_id, sku) DO UPDATE SET "
            "promoted = EXCLUDED.promoted, unit_price_fen = EXCLUDED.unit_price_fen, "
            "book_version = EXCLUDED.book_version"
        ),
        {"store": store_id, "sku": sku, "promoted": promoted, "new": new_fen, "version": book_version},
    )


async def price_changes(
    session: AsyncSession, store_id: str, skus: frozenset[str], start: datetime, end: datetime
) -> list[PriceChange]:
    rows = await session.execute(
        text(
            "SELECT sku, old_unit_price_fen, new_unit_price_fen, promotion_started, promotion_ended, promoted, "
            "change_id, effective_at FROM price_change WHERE store_id = :store AND sku = ANY(:skus) "
            "AND effective_at >= :start AND effective_at < :end ORDER BY effective_at, book_version"
        ),
        {"store": store_id, "skus": sorted(skus), "start": start, "end": end},
    )
    return [
        PriceChange(
            store_id,
            row.sku,
            row.old_unit_price_fen,
            row.new_unit_price_fen,
            promotion_before=(row.promoted and not row.promotion_started) or row.promotion_ended,
            promotion_after=row.promoted,
            effective_at=row.effective_at,
            change_id=row.change_id,
        )
        for row in rows
    ]


async def stock_level(session: AsyncSession, location_id: str, sku: str, out: bool, at: datetime) -> None:
    """Open a stock-out spell when the SKU ran out, close it when it came back."""
    if out:
        await session.execute(
            text("INSERT INTO stock_out (location_id, sku, since) VALUES (:loc, :sku, :at) ON CONFLICT DO NOTHING"),
            {"loc": location_id, "sku": sku, "at": at},
        )
    else:
        await session.execute(
            text(
                "UPDATE stock_out SET until = greatest(since, :at) "
                "WHERE location_id = :loc AND sku = :sku AND until IS NULL"
            ),
            {"loc": location_id, "sku": sku, "at": at},
        )


async def stock_outs(
    session: AsyncSession, location_id: str, skus: frozenset[str], start: datetime, end: datetime
) -> list[StockOut]:
    rows = await session.execute(
        text(
            "SELECT sku, since, until FROM stock_out WHERE location_id = :loc AND sku = ANY(:skus) "
            "AND since < :end AND (until IS NULL OR until > :start)"
        ),
        {"loc": location_id, "skus": sorted(skus), "start": start, "end": end},
    )
    return [StockOut(location_id, row.sku, row.since, row.until) for row in rows]


async def current_stock_out(session: AsyncSession, location_id: str, sku: str) -> datetime | None:
    row = (
        await session.execute(
            text("SELECT since FROM stock_out WHERE location_id = :loc AND sku = :sku AND until IS NULL"),
            {"loc": location_id, "sku": sku},
        )
    ).first()
    return None if row is None else row.since


async def label_given_up(
    session: AsyncSession, store_id: str, label_id: str, sku: str, attempts: int, last_error: str, at: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO label_given_up (store_id, label_id, sku, attempts, last_error, given_up_at) "
            "VALUES (:store, :label, :sku, :attempts, :error, :at) ON CONFLICT (store_id, label_id) DO UPDATE SET "
            "sku = EXCLUDED.sku, attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error, "
            "given_up_at = EXCLUDED.given_up_at WHERE label_given_up.given_up_at <= EXCLUDED.given_up_at"
        ),
        {"store": store_id, "label": label_id, "sku": sku, "attempts": attempts, "error": last_error, "at": at},
    )


async def given_up_labels(
    session: AsyncSession, store_id: str, skus: frozenset[str], start: datetime, end: datetime
) -> list[GivenUpLabel]:
    rows = await session.execute(
        text(
            "SELECT label_id, sku, given_up_at FROM label_given_up WHERE store_id = :store AND sku = ANY(:skus) "
            "AND given_up_at >= :start AND given_up_at < :end"
        ),
        {"store": store_id, "skus": sorted(skus), "start": start, "end": end},
    )
    return [GivenUpLabel(store_id, row.label_id, row.sku, row.given_up_at) for row in rows]


async def campaign_launched(
    session: AsyncSession, campaign_id: str, name: str, store_id: str, ends_at: datetime | None, at: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO campaign (campaign_id, name, store_id, ends_at, launched_at) "
            "VALUES (:id, :name, :store, :ends, :at) ON CONFLICT (campaign_id) DO UPDATE SET name = EXCLUDED.name, "
            "store_id = EXCLUDED.store_id, ends_at = EXCLUDED.ends_at"
        ),
        {"id": campaign_id, "name": name, "store": store_id, "ends": ends_at, "at": at},
    )


async def campaigns_ended(session: AsyncSession, store_id: str, start: datetime, end: datetime) -> list[CampaignEnd]:
    rows = await session.execute(
        text(
            "SELECT campaign_id, name, store_id, ends_at FROM campaign WHERE store_id IN ('', :store) "
            "AND ends_at >= :start AND ends_at < :end"
        ),
        {"store": store_id, "start": start, "end": end},
    )
    return [CampaignEnd(row.campaign_id, row.name, row.store_id, row.ends_at) for row in rows]


async def journal_entry(
    session: AsyncSession, store_id: str, terminal_id: str, sale_id: str, at: datetime
) -> datetime | None:
    """Note a journal entry; returns when the store's journal had last been heard of before (None: never)."""
    if terminal_id:
        await session.execute(
            text(
                "INSERT INTO terminal_seen (store_id, terminal_id, last_entry_at, last_sale_id) "
                "VALUES (:store, :terminal, :at, :sale) ON CONFLICT (store_id, terminal_id) DO UPDATE SET "
                "last_entry_at = EXCLUDED.last_entry_at, last_sale_id = EXCLUDED.last_sale_id "
                "WHERE terminal_seen.last_entry_at < EXCLUDED.last_entry_at"
            ),
            {"store": store_id, "terminal": terminal_id, "at": at, "sale": sale_id},
        )
    before = (
        await session.execute(
            text("SELECT last_entry_at FROM store_journal WHERE store_id = :store FOR UPDATE"), {"store": store_id}
        )
    ).first()
    await session.execute(
        text(
            "INSERT INTO store_journal (store_id, last_entry_at) VALUES (:store, :at) ON CONFLICT (store_id) "
            "DO UPDATE SET last_entry_at = greatest(store_journal.last_entry_at, EXCLUDED.last_entry_at)"
        ),
        {"store": store_id, "at": at},
    )
    return None if before is None else before.last_entry_at


async def add_silence(session: AsyncSession, store_id: str, since: datetime, until: datetime) -> None:
    await session.execute(
        text(
            "INSERT INTO journal_silence (store_id, since, until) VALUES (:store, :since, :until) "
            "ON CONFLICT DO NOTHING"
        ),
        {"store": store_id, "since": since, "until": until},
    )


async def silences(
    session: AsyncSession, store_id: str, start: datetime, end: datetime, now: datetime, min_gap_seconds: float
) -> list[JournalSilence]:
    """The store's silences overlapping [start, end), with the one still running (from its last entry)."""
    rows = await session.execute(
        text("SELECT since, until FROM journal_silence WHERE store_id = :store AND since < :end AND until > :start"),
        {"store": store_id, "start": start, "end": end},
    )
    found = [JournalSilence(store_id, row.since, row.until) for row in rows]
    last = (
        await session.execute(text("SELECT last_entry_at FROM store_journal WHERE store_id = :s"), {"s": store_id})
    ).first()
    if last is not None and (now - last.last_entry_at).total_seconds() >= min_gap_seconds:
        found.append(JournalSilence(store_id, last.last_entry_at, None))
    return found


async def terminals_seen(session: AsyncSession) -> list[TerminalSeen]:
    rows = await session.execute(text("SELECT store_id, terminal_id, last_entry_at FROM terminal_seen"))
    return [TerminalSeen(row.store_id, row.terminal_id, row.last_entry_at) for row in rows]
