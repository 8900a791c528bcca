"""The stored form of a POS price book entry: the contract's ``PriceBookEntry`` bytes, serialized
deterministically, so that an unchanged entry compares equal byte for byte and the tills get
the stored bytes as they are."""

from __future__ import annotations

from retail.pricing.v1 import pricing_service_pb2 as pb

from services.pricing.domain.price_book import BookEntry
from services.pricing.entrypoints.wire import map_book_entry, map_book_entry_of


def encode(entry: BookEntry | None) -> bytes:
    """The stored bytes of an entry (empty for a SKU that left the book)."""
    return b"" if entry is None else map_book_entry(entry).SerializeToString(deterministic=True)


def decode(stored: bytes) -> BookEntry:
    """A stored entry back as plain data (its promotion as its display text only)."""
    return map_book_entry_of(pb.PriceBookEntry.FromString(stored))
