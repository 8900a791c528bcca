"""PostgreSQL persistence of each store's POS price book entries, and their stored form: the
contract's ``PriceBookEntry`` bytes, serialized deterministically, so that an unchanged entry
compares equal byte for byte and the tills get the stored bytes as they are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from retail.pricing.v1 import pricing_service_pb2 as pb
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, TEXT
from sqlalchemy.ext.asyncio import AsyncSession

from services.pricing.domain.price_book import BookEntry
from services.pricing.entrypoints.wire import map_book_entry, map_book_entry_of


def encode(entry: BookEntry | None) -> bytes:
    """The stored bytes of an entry (empty for a SKU that left the book)."""
    return b"" if entry is None else map_book_entry(entry).SerializeToString(deterministic=True)


def decode(stored: bytes) -> BookEntry:
    """A stored entry back as plain data (its promotion as its display text only)."""
    return map_book_entry_of(pb.PriceBookEntry.FromString(stored))


class BookRow(NamedTuple):
    """A stored entry (a tuple: a refresh reads and writes one per store and SKU, tens of thousands
    after a chain-wide change)."""

    store_id: str
    sku: str
    version: int
    removed: bool
    unit_price_fen: int | None
    entry: bytes


async def book_rows(
    session: AsyncSession, skus: Sequence[str], store_ids: Sequence[str]
) -> dict[tuple[str, str], BookRow]:
    rows = await session.execute(
        text(
            "SELECT store_id, sku, version, removed, unit_price_fen, entry FROM book_entry "
            "WHERE sku = ANY(:skus) AND store_id = ANY(:stores)"
        ),
        {"skus": list(skus), "stores": list(store_ids)},
    )
    return {(row[0], row[1]): BookRow(row[0], row[1], row[2], row[3], row[4], bytes(row[5])) for row in rows}


_UPSERT_ENTRIES = text("""
    INSERT INTO book_entry (store_id, sku, version, removed, unit_price_fen, entry)
    SELECT * FROM unnest(CAST(:stores AS text[]), CAST(:skus AS text[]), CAST(:versions AS bigint[]),
                         CAST(:removed AS boolean[]), CAST(:prices AS bigint[]), CAST(:entries AS bytea[]))
    ON CONFLICT (store_id, sku) DO UPDATE SET version = EXCLUDED.version, removed = EXCLUDED.removed,
        unit_price_fen = EXCLUDED.unit_price_fen, entry = EXCLUDED.entry
""").bindparams(
    bindparam("stores", type_=ARRAY(TEXT)),
    bindparam("skus", type_=ARRAY(TEXT)),
    bindparam("entries", type_=ARRAY(BYTEA)),
)


async def upsert_book_rows(session: AsyncSession, rows: Sequence[BookRow]) -> None:
    if not rows:
        return
    await session.execute(
        _UPSERT_ENTRIES,
        {
            "stores": [row.store_id for row in rows],
            "skus": [row.sku for row in rows],
            "versions": [row.version for row in rows],
            "removed": [row.removed for row in rows],
            "prices": [row.unit_price_fen for row in rows],
            "entries": [row.entry for row in rows],
        },
    )


async def book_page(
    session: AsyncSession, store_id: str, since_version: int, after_sku: str, limit: int
) -> list[BookRow]:
    """Entries of a store by SKU: all present ones (since 0), or every one changed after a version."""
    condition = "version > :since" if since_version else "NOT removed"
    rows = await session.execute(
        text(
            f"SELECT store_id, sku, version, removed, unit_price_fen, entry FROM book_entry "
            f"WHERE store_id = :store AND {condition} AND sku > :after ORDER BY sku LIMIT :limit"
        ),
        {"store": store_id, "since": since_version, "after": after_sku, "limit": limit},
    )
    return [
        BookRow(row.store_id, row.sku, row.version, row.removed, row.unit_price_fen, bytes(row.entry)) for row in rows
    ]
