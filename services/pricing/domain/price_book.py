"""One entry of a store's POS price book, as plain data.

It is stored and served in the contract's ``PriceBookEntry`` form (``adapters/book_entries.py``
encodes it), so that the tills receive the stored bytes as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.pricing.domain.rules import PriceRule


@dataclass(frozen=True)
class BookEntry:
    """What a store's tills charge for a SKU now, and what its shelf labels show.

    ``promotion`` is the running promotion's rule when the entry is computed; an entry read back
    from its stored form keeps only the promotion's ``promotion_text`` (all a label needs).
    """

    sku: str
    name: str
    barcode: str
    unit: str
    currency: str
    regular_price_fen: int
    unit_price_fen: int
    promotion: PriceRule | None = None
    promotion_text: str = ""
    member_prices: tuple[tuple[str, int], ...] = ()  # (tier, unit price) where it differs
    valid_until: datetime | None = None
