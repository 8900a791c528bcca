"""The pricing HTTP models: what a request carries and what an answer holds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from fastapi import Path
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from gateway.http.integer_types import Int32
from gateway.http.schemas import Strict

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


# ASCII digits only: `\d` would also take full-width or Arabic-Indic digits.
_PRICE = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"
_PERCENT = r"^[0-9]{1,3}(\.[0-9]{1,2})?$"
QUANTITY_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,3})?$"
_CURRENCY = r"^[A-Z]{3}$"
DEFAULT_CURRENCY = "CNY"
MAX_RULES = 200
MAX_STORES_PER_CHANGE = 1000
MAX_BASKET_LINES = 200
StoreId = Annotated[str, Path(pattern=ID_PATTERN, description="a store id, e.g. S001")]
Sku = Annotated[str, Path(pattern=ID_PATTERN, description="a SKU code, e.g. SKU00001")]
Price = Annotated[
    str, Field(pattern=_PRICE, description="yuan, at most 2 decimals, never negative", examples=["12.50"])
]
Currency = Annotated[str, Field(pattern=_CURRENCY, description="ISO 4217 code", examples=["CNY"])]
EntityId = Annotated[str, Field(pattern=ID_PATTERN)]
ChannelName = Literal["store", "online", "mini_program"]
TierName = Literal["basic", "silver", "gold", "platinum"]
UnitName = Literal["piece", "kg", "box"]


class StoreIn(Strict):
    """A store as pricing knows it: its price groups (zones), currency and shelf-label station."""

    name: str = Field(min_length=1, max_length=120, examples=["徐汇店"])
    price_groups: list[EntityId] = Field(default_factory=list, max_length=20, examples=[["east-china"]])
    currency: Currency = DEFAULT_CURRENCY
    label_station_kind: Literal["openepaperlink", "batch"] | None = None
    label_station_url: str | None = Field(default=None, max_length=500, examples=["http://10.1.20.5"])


class ItemIn(Strict):
    """A catalogue item; `store_ids` empty means listed in every store."""

    name: str = Field(min_length=1, max_length=200, examples=["伊利纯牛奶 250ml"])
    category: str = Field(pattern=ID_PATTERN, examples=["C0101"])
    barcode: str = Field(pattern=r"^[0-9]{8,14}$", description="EAN-13, EAN-8 or UPC-A", examples=["6907992100272"])
    unit: UnitName
    cost: Price
    currency: Currency = DEFAULT_CURRENCY
    supplier_id: str = Field(pattern=ID_PATTERN, examples=["SUP001"])
    store_ids: list[EntityId] = Field(default_factory=list, max_length=MAX_STORES_PER_CHANGE)
    active: bool = True


class RuleScopeIn(Strict):
    """Where and for whom a rule applies; a missing field means every store, channel or tier."""

    store_id: str | None = Field(default=None, pattern=ID_PATTERN, description="one store (not with store_group)")
    store_group: str | None = Field(default=None, pattern=ID_PATTERN, description="one price group (not with store_id)")
    channel: ChannelName | None = None
    member_tier: TierName | None = None

    @model_validator(mode="after")
    def _one_place(self) -> Self:
        if self.store_id and self.store_group:
            raise ValueError("give store_id or store_group, not both")
        return self


class OverrideIn(RuleScopeIn):
    """A regular price replacing the base price in its scope (and window)."""

    price: Price
    priority: Int32 = Field(default=0, ge=-1000, le=1000, description="higher wins among equally specific rules")
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = Field(default=None, description="exclusive")


class MultiBuyIn(Strict):
    quantity: Int32 = Field(ge=2, le=99, examples=[2])
    bundle_price: Price


class PromotionIn(RuleScopeIn):
    """A time-bounded offer with exactly one mechanic: fixed_price, percent_off or multi_buy."""

    name: str = Field(min_length=1, max_length=100, examples=["周末特惠"])
    priority: Int32 = Field(default=0, ge=-1000, le=1000)
    valid_from: AwareDatetime
    valid_to: AwareDatetime = Field(description="exclusive")
    fixed_price: Price | None = None
    percent_off: str | None = Field(default=None, pattern=_PERCENT, description="e.g. 20 or 12.5", examples=["20"])
    multi_buy: MultiBuyIn | None = None

    @model_validator(mode="after")
    def _one_mechanic(self) -> Self:
        given = [name for name in ("fixed_price", "percent_off", "multi_buy") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of fixed_price, percent_off or multi_buy (got {len(given)})")
        return self


class GuardRailOverrideIn(Strict):
    """Explicit, audited acceptance of a price below cost or below the minimum margin."""

    reason: str = Field(min_length=1, max_length=500)


class PricesIn(Strict):
    """A SKU's whole rule set, replacing the previous one."""

    currency: Currency = DEFAULT_CURRENCY
    base_price: Price
    overrides: list[OverrideIn] = Field(default_factory=list, max_length=MAX_RULES)
    promotions: list[PromotionIn] = Field(default_factory=list, max_length=MAX_RULES)
    guard_rail_override: GuardRailOverrideIn | None = None


class PriceChangeIn(Strict):
    """A regular price taking effect at a future moment; no `store_ids` means the chain-wide base price."""

    sku: str = Field(pattern=ID_PATTERN, examples=["SKU00001"])
    price: Price
    currency: Currency = DEFAULT_CURRENCY
    effective_at: AwareDatetime
    store_ids: list[EntityId] = Field(default_factory=list, max_length=MAX_STORES_PER_CHANGE)
    channel: ChannelName | None = None
    guard_rail_override: GuardRailOverrideIn | None = None


class BasketLineIn(Strict):
    sku: str = Field(pattern=ID_PATTERN, examples=["SKU00001"])
    quantity: str = Field(pattern=QUANTITY_PATTERN, description="units, or kg with up to 3 decimals", examples=["2"])


class BasketIn(Strict):
    """A basket priced in one context (a read: no Idempotency-Key)."""

    store_id: str | None = Field(default=None, pattern=ID_PATTERN, description="default: the caller's own store")
    channel: ChannelName | None = None
    tier: TierName | None = None
    at: AwareDatetime | None = Field(default=None, description="default: now")
    lines: list[BasketLineIn] = Field(min_length=1, max_length=MAX_BASKET_LINES)


class LabelIn(Strict):
    sku: str = Field(pattern=ID_PATTERN, examples=["SKU00001"])
    template: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", examples=["standard"])


class DecisionIn(Strict):
    approve: bool
    effective_at: AwareDatetime | None = Field(default=None, description="when an approved markdown takes effect")


class StoreOut(BaseModel):
    store_id: str
    name: str
    price_groups: list[str]
    currency: str
    label_station_kind: str | None
    label_station_url: str | None
    price_book_version: int


class ItemOut(BaseModel):
    sku: str
    name: str
    category: str
    barcode: str
    unit: str
    cost: str
    currency: str
    supplier_id: str
    store_ids: list[str] = Field(description="empty: listed in every store")
    active: bool
    version: int
    updated_at: datetime | None


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_page_token: str | None


class RuleScopeOut(BaseModel):
    store_id: str | None
    store_group: str | None
    channel: str | None
    member_tier: str | None


class RegularPriceOut(RuleScopeOut):
    rule_id: str
    price: str
    priority: int
    valid_from: datetime | None
    valid_to: datetime | None


class MultiBuyOut(BaseModel):
    quantity: int
    bundle_price: str


class PromotionOut(RuleScopeOut):
    rule_id: str
    name: str
    priority: int
    valid_from: datetime | None
    valid_to: datetime | None
    fixed_price: str | None
    percent_off: str | None
    multi_buy: MultiBuyOut | None
    display_text: str = Field(description="how a shelf label writes it, e.g. 8折")


class PricesOut(BaseModel):
    sku: str
    currency: str
    base_price: str
    overrides: list[RegularPriceOut]
    promotions: list[PromotionOut]


class PriceChangeOut(BaseModel):
    change_id: str
    sku: str
    price: str
    currency: str
    effective_at: datetime | None
    store_ids: list[str] = Field(description="empty: the chain-wide base price")
    channel: str | None = Field(description="null: every channel")
    state: str = Field(description="scheduled or applied")
    applied_at: datetime | None
    guard_rail_override_reason: str | None
    markdown_id: str | None


class PriceChangePage(BaseModel):
    changes: list[PriceChangeOut]
    next_page_token: str | None


class EffectivePriceOut(BaseModel):
    sku: str
    unit_price: str = Field(description="one unit now (a multi-buy does not lower a single unit)")
    regular_price: str
    currency: str
    regular_rule_id: str
    promotion: PromotionOut | None
    promotion_applied: bool
    quantity: str
    line_total: str
    explanation: str


class BasketOut(BaseModel):
    lines: list[EffectivePriceOut]
    total: str
    regular_total: str
    currency: str


class PriceBookEntryOut(BaseModel):
    sku: str
    version: int = Field(description="the book version this entry last changed in")
    removed: bool = Field(description="the SKU left the store's book; drop it")
    name: str
    barcode: str
    unit: str | None
    regular_price: str | None
    unit_price: str | None
    promotion: PromotionOut | None
    member_prices: dict[str, str] = Field(description="tier → unit price where it differs from unit_price")
    valid_until: datetime | None = Field(description="when a rule's window next changes this entry")


class PriceBookOut(BaseModel):
    store_id: str
    version: int
    delta: bool = Field(description="only entries changed after since_version (removed ones included)")
    entries: list[PriceBookEntryOut]
    next_page_token: str | None


class LabelOut(BaseModel):
    store_id: str
    label_id: str
    sku: str
    template: str
    state: str = Field(description="pending, sent, acknowledged, failed or given_up")
    desired_price: str | None
    acknowledged_price: str | None
    currency: str | None
    acknowledged_at: datetime | None
    attempts: int
    last_error: str | None
    online: bool
    battery_mv: int | None
    last_seen: datetime | None
    pending_since: datetime | None


class LabelPage(BaseModel):
    labels: list[LabelOut]
    next_page_token: str | None


class LabelMismatchOut(BaseModel):
    label: LabelOut
    reason: str = Field(description="price_differs or not_acknowledged")
    pos_price: str | None


class LabelAuditOut(BaseModel):
    store_id: str
    label_count: int
    mismatch_count: int
    mismatch_rate: str = Field(description="mismatch_count / label_count", examples=["0.0125"])
    deadline_seconds: int
    mismatches: list[LabelMismatchOut]
    next_page_token: str | None


class MarkdownOut(BaseModel):
    markdown_id: str
    store_id: str
    sku: str
    current_price: str
    suggested_price: str
    floor_price: str
    currency: str
    percent_off: str
    reason: str
    state: str = Field(description="open, approved, rejected or withdrawn")
    change_id: str | None
    created_at: datetime | None


class MarkdownPage(BaseModel):
    suggestions: list[MarkdownOut]
    next_page_token: str | None


class DecisionOut(BaseModel):
    suggestion: MarkdownOut
    change: PriceChangeOut | None
