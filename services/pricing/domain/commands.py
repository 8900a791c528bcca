"""What the pricing service is asked to do, as plain data: the servicer maps each request to
one of these (see ``entrypoints/wire.py``) and the service layer acts on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.pricing.domain.catalogue import Item
from services.pricing.domain.promotions import Mechanic
from services.pricing.domain.rules import Channel, Scope


@dataclass(frozen=True)
class Actor:
    """Who asks: a client, the store its staff belong to, and whether it is headquarters staff."""

    client_id: str
    store_id: str = ""
    headquarters: bool = False


@dataclass(frozen=True)
class PutStore:
    """Register a store or change it: its price groups, currency and shelf-label station."""

    store_id: str
    name: str
    price_groups: tuple[str, ...]
    currency: str
    label_station_kind: str
    label_station_url: str


@dataclass(frozen=True)
class PutItem:
    """Create a catalogue item or change it."""

    item: Item


@dataclass(frozen=True)
class PutLabel:
    """Link a shelf label to a SKU of its store, shown with a template."""

    store_id: str
    label_id: str
    sku: str
    template: str


@dataclass(frozen=True)
class DecideMarkdown:
    """Approve a markdown suggestion (it becomes a scheduled price change) or reject it."""

    markdown_id: str
    approve: bool
    effective_at: datetime | None


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
