"""What the pricing service is asked to do, as plain data: the servicer maps each request to
one of these (see ``entrypoints/wire.py``) and the service layer acts on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.pricing.domain.promotions import Mechanic
from services.pricing.domain.rules import Channel, Scope


@dataclass(frozen=True)
class Actor:
    """Who asks: a client, the store its staff belong to, and whether it is headquarters staff."""

    client_id: str
    store_id: str = ""
    headquarters: bool = False


@dataclass(frozen=True)
class RuleDraft:
    """A regular price or promotion as asked for (ids and sequence are the service's)."""

    scope: Scope
    priority: int
    valid_from: datetime | None
    valid_to: datetime | None
    price_fen: int | None = None
    mechanic: Mechanic | None = None
    name: str = ""


@dataclass(frozen=True)
class SetPrices:
    """Replace a SKU's rules: its base price, overrides and promotions."""

    sku: str
    currency: str
    base_price_fen: int
    overrides: Sequence[RuleDraft]
    promotions: Sequence[RuleDraft]
    override_reason: str = ""


@dataclass(frozen=True)
class ScheduleChange:
    """Make ``price_fen`` the regular price of the scope from ``effective_at`` on."""

    sku: str
    price_fen: int
    effective_at: datetime
    store_ids: tuple[str, ...]
    channel: Channel | None
    override_reason: str = ""
    markdown_id: str | None = None


@dataclass(frozen=True)
class Question:
    """Where, through which channel, for whom and when a price is asked for."""

    store_id: str
    channel: Channel
    member_tier: str | None
    at: datetime | None
