"""A SALES journal entry as marketing reads it: who bought what, where, when, with which coupons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.marketing.domain.offers import Channel


@dataclass(frozen=True, slots=True)
class SaleLine:
    sku: str
    quantity: Decimal
    gross_fen: int  # quantity × unit price: before line discounts (promotions and coupon shares)
    net_fen: int  # what the customer paid for the line


@dataclass(frozen=True, slots=True)
class JournalSale:
    sale_id: str
    is_return: bool
    store_id: str
    channel: Channel
    member_id: str | None  # resolved from the journal's member reference; None: not a known member
    occurred_at: datetime
    lines: tuple[SaleLine, ...]
    coupon_codes: tuple[str, ...] = ()
    original_sale_id: str = ""  # a return: the sale it reverses

    @property
    def gross_fen(self) -> int:
        """What the sale cost before discounts (a line a till sent negative counts as nothing)."""
        return sum(max(line.gross_fen, 0) for line in self.lines)


@dataclass(frozen=True, slots=True)
class ImportedPurchase:
    """A purchase of a member's legacy history (from the member context's import): the sale as the
    journal would carry it, and what was paid for it (its lines, when known, need not add up to it)."""

    sale: JournalSale
    amount_fen: int
