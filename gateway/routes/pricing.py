"""Pricing: the catalogue, price rules, scheduled price changes, effective prices, the POS
price book, shelf labels and markdown suggestions.

Every route checks its scope and the caller's ownership of what it touches: terminals and
store staff act on their own store only, a supplier user sees its own supplier's items
only, and chain-wide writes (items, price rules, stores) are headquarters'. Money travels
as decimal strings ("12.50") beside a `currency` (default CNY) and becomes whole minor
units (fen) through Decimal, never float; moments must carry a UTC offset. Writes take an
``Idempotency-Key`` that reaches the pricing service as the gRPC ``request_id``.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from retail.common.v1 import money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb

from gateway.domain.clients import ClientKind, StaffRole
from gateway.domain.scopes import (
    CATALOGUE_READ,
    CATALOGUE_WRITE,
    LABELS_READ,
    LABELS_WRITE,
    MARKDOWNS_DECIDE,
    MARKDOWNS_READ,
    POS_PRICE_BOOK_READ,
    PRICE_CHANGES_WRITE,
    PRICES_READ,
    PRICES_WRITE,
    STORES_WRITE,
)
from gateway.http import problems
from gateway.http.integer_types import Int32, Int64
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.schemas import Strict
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.routes.members import actor_of
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from servicekit.protowire import from_wire, optional_moment, timestamp, to_wire

router = APIRouter(prefix="/v1", tags=["pricing"])

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_MARKDOWN_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# ASCII digits only: `\d` would also take full-width or Arabic-Indic digits.
_PRICE = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"
_PERCENT = r"^[0-9]{1,3}(\.[0-9]{1,2})?$"
_QUANTITY = r"^[0-9]{1,6}(\.[0-9]{1,3})?$"
_CURRENCY = r"^[A-Z]{3}$"
DEFAULT_CURRENCY = "CNY"
MAX_RULES = 200
MAX_STORES_PER_CHANGE = 1000
MAX_BASKET_LINES = 200

StoreId = Annotated[str, Path(pattern=_ID, description="a store id, e.g. S001")]
Sku = Annotated[str, Path(pattern=_ID, description="a SKU code, e.g. SKU00001")]
Price = Annotated[
    str, Field(pattern=_PRICE, description="yuan, at most 2 decimals, never negative", examples=["12.50"])
]
Currency = Annotated[str, Field(pattern=_CURRENCY, description="ISO 4217 code", examples=["CNY"])]
EntityId = Annotated[str, Field(pattern=_ID)]
ChannelName = Literal["store", "online", "mini_program"]
TierName = Literal["basic", "silver", "gold", "platinum"]
UnitName = Literal["piece", "kg", "box"]
LabelStateName = Literal["pending", "sent", "acknowledged", "failed", "given_up"]
MarkdownStateName = Literal["open", "approved", "rejected", "withdrawn"]


# ---- requests -------------------------------------------------------------------------------------


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
    category: str = Field(pattern=_ID, examples=["C0101"])
    barcode: str = Field(pattern=r"^[0-9]{8,14}$", description="EAN-13, EAN-8 or UPC-A", examples=["6907992100272"])
    unit: UnitName
    cost: Price
    currency: Currency = DEFAULT_CURRENCY
    supplier_id: str = Field(pattern=_ID, examples=["SUP001"])
    store_ids: list[EntityId] = Field(default_factory=list, max_length=MAX_STORES_PER_CHANGE)
    active: bool = True


class RuleScopeIn(Strict):
    """Where and for whom a rule applies; a missing field means every store, channel or tier."""

    store_id: str | None = Field(default=None, pattern=_ID, description="one store (not with store_group)")
    store_group: str | None = Field(default=None, pattern=_ID, description="one price group (not with store_id)")
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

    sku: str = Field(pattern=_ID, examples=["SKU00001"])
    price: Price
    currency: Currency = DEFAULT_CURRENCY
    effective_at: AwareDatetime
    store_ids: list[EntityId] = Field(default_factory=list, max_length=MAX_STORES_PER_CHANGE)
    channel: ChannelName | None = None
    guard_rail_override: GuardRailOverrideIn | None = None


class BasketLineIn(Strict):
    sku: str = Field(pattern=_ID, examples=["SKU00001"])
    quantity: str = Field(pattern=_QUANTITY, description="units, or kg with up to 3 decimals", examples=["2"])


class BasketIn(Strict):
    """A basket priced in one context (a read: no Idempotency-Key)."""

    store_id: str | None = Field(default=None, pattern=_ID, description="default: the caller's own store")
    channel: ChannelName | None = None
    tier: TierName | None = None
    at: AwareDatetime | None = Field(default=None, description="default: now")
    lines: list[BasketLineIn] = Field(min_length=1, max_length=MAX_BASKET_LINES)


class LabelIn(Strict):
    sku: str = Field(pattern=_ID, examples=["SKU00001"])
    template: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", examples=["standard"])


class DecisionIn(Strict):
    approve: bool
    effective_at: AwareDatetime | None = Field(default=None, description="when an approved markdown takes effect")


# ---- answers --------------------------------------------------------------------------------------


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


# ---- mapping --------------------------------------------------------------------------------------


def money(amount: str, currency: str) -> money_pb2.Money:
    """A validated decimal amount as whole minor units; exact, since it has at most two decimals."""
    return money_pb2.Money(currency_code=currency, minor_units=int(Decimal(amount).scaleb(2)))


def amount(value: money_pb2.Money) -> str:
    return str(Decimal(value.minor_units).scaleb(-2))


def _optional_amount(message: Any, field: str) -> str | None:
    return amount(getattr(message, field)) if message.HasField(field) else None


def _name(enum_type: Any, prefix: str, number: int) -> str | None:
    """An enum number as its lower-case name; None for the unspecified zero."""
    return from_wire(enum_type, prefix, number) or None


def _number(enum_type: Any, prefix: str, name: str | None) -> Any:
    return to_wire(enum_type, prefix, name or "")


def _override(guard_rail: GuardRailOverrideIn | None) -> pb.GuardRailOverride | None:
    return pb.GuardRailOverride(reason=guard_rail.reason) if guard_rail else None


def rule_scope(rule: RuleScopeIn) -> pb.RuleScope:
    return pb.RuleScope(
        store_id=rule.store_id or "",
        store_group=rule.store_group or "",
        channel=_number(pb.Channel, "CHANNEL", rule.channel),
        member_tier=rule.member_tier or "",
    )


def regular_price_message(rule: OverrideIn, currency: str) -> pb.RegularPrice:
    message = pb.RegularPrice(scope=rule_scope(rule), price=money(rule.price, currency), priority=rule.priority)
    if rule.valid_from is not None:
        message.valid_from.CopyFrom(timestamp(rule.valid_from))
    if rule.valid_to is not None:
        message.valid_to.CopyFrom(timestamp(rule.valid_to))
    return message


def promotion_message(rule: PromotionIn, currency: str) -> pb.Promotion:
    message = pb.Promotion(
        scope=rule_scope(rule),
        name=rule.name,
        priority=rule.priority,
        valid_from=timestamp(rule.valid_from),
        valid_to=timestamp(rule.valid_to),
    )
    if rule.fixed_price is not None:
        message.fixed_price.CopyFrom(money(rule.fixed_price, currency))
    elif rule.percent_off is not None:
        message.percent_off.value = rule.percent_off
    elif rule.multi_buy is not None:
        message.multi_buy.quantity = rule.multi_buy.quantity
        message.multi_buy.bundle_price.CopyFrom(money(rule.multi_buy.bundle_price, currency))
    return message


def _scope_out(scope: pb.RuleScope) -> dict[str, Any]:
    return {
        "store_id": scope.store_id or None,
        "store_group": scope.store_group or None,
        "channel": _name(pb.Channel, "CHANNEL", scope.channel),
        "member_tier": scope.member_tier or None,
    }


def map_store(store: pb.Store) -> StoreOut:
    return StoreOut(
        store_id=store.store_id,
        name=store.name,
        price_groups=list(store.price_groups),
        currency=store.currency_code,
        label_station_kind=store.label_station_kind or None,
        label_station_url=store.label_station_url or None,
        price_book_version=store.price_book_version,
    )


def map_item(item: pb.Item) -> ItemOut:
    return ItemOut(
        sku=item.sku,
        name=item.name,
        category=item.category,
        barcode=item.barcode,
        unit=_name(pb.Unit, "UNIT", item.unit) or "unspecified",
        cost=amount(item.cost),
        currency=item.cost.currency_code or DEFAULT_CURRENCY,
        supplier_id=item.supplier_id,
        store_ids=list(item.store_ids),
        active=item.active,
        version=item.version,
        updated_at=optional_moment(item, "updated_at"),
    )


def map_regular_price(rule: pb.RegularPrice) -> RegularPriceOut:
    return RegularPriceOut(
        **_scope_out(rule.scope),
        rule_id=rule.rule_id,
        price=amount(rule.price),
        priority=rule.priority,
        valid_from=optional_moment(rule, "valid_from"),
        valid_to=optional_moment(rule, "valid_to"),
    )


def map_promotion(promotion: pb.Promotion) -> PromotionOut:
    mechanic = promotion.WhichOneof("mechanic")
    multi_buy = None
    if mechanic == "multi_buy":
        multi_buy = MultiBuyOut(
            quantity=promotion.multi_buy.quantity, bundle_price=amount(promotion.multi_buy.bundle_price)
        )
    return PromotionOut(
        **_scope_out(promotion.scope),
        rule_id=promotion.rule_id,
        name=promotion.name,
        priority=promotion.priority,
        valid_from=optional_moment(promotion, "valid_from"),
        valid_to=optional_moment(promotion, "valid_to"),
        fixed_price=amount(promotion.fixed_price) if mechanic == "fixed_price" else None,
        percent_off=promotion.percent_off.value if mechanic == "percent_off" else None,
        multi_buy=multi_buy,
        display_text=promotion.display_text,
    )


def map_prices(prices: pb.SkuPrices) -> PricesOut:
    return PricesOut(
        sku=prices.sku,
        currency=prices.currency_code or prices.base_price.currency_code or DEFAULT_CURRENCY,
        base_price=amount(prices.base_price),
        overrides=[map_regular_price(rule) for rule in prices.overrides],
        promotions=[map_promotion(promotion) for promotion in prices.promotions],
    )


def map_change(change: pb.PriceChange) -> PriceChangeOut:
    return PriceChangeOut(
        change_id=change.change_id,
        sku=change.sku,
        price=amount(change.price),
        currency=change.price.currency_code or DEFAULT_CURRENCY,
        effective_at=optional_moment(change, "effective_at"),
        store_ids=list(change.store_ids),
        channel=_name(pb.Channel, "CHANNEL", change.channel),
        state=_name(pb.PriceChangeState, "PRICE_CHANGE_STATE", change.state) or "unspecified",
        applied_at=optional_moment(change, "applied_at"),
        guard_rail_override_reason=change.guard_rail_override_reason or None,
        markdown_id=change.markdown_id or None,
    )


def map_effective_price(price: pb.EffectivePrice) -> EffectivePriceOut:
    return EffectivePriceOut(
        sku=price.sku,
        unit_price=amount(price.unit_price),
        regular_price=amount(price.regular_price),
        currency=price.unit_price.currency_code or DEFAULT_CURRENCY,
        regular_rule_id=price.regular_rule_id,
        promotion=map_promotion(price.promotion) if price.HasField("promotion") else None,
        promotion_applied=price.promotion_applied,
        quantity=price.quantity.value,
        line_total=amount(price.line_total),
        explanation=price.explanation,
    )


def map_book_entry(entry: pb.PriceBookEntry) -> PriceBookEntryOut:
    return PriceBookEntryOut(
        sku=entry.sku,
        version=entry.version,
        removed=entry.removed,
        name=entry.name,
        barcode=entry.barcode,
        unit=_name(pb.Unit, "UNIT", entry.unit),
        regular_price=_optional_amount(entry, "regular_price"),
        unit_price=_optional_amount(entry, "unit_price"),
        promotion=map_promotion(entry.promotion) if entry.HasField("promotion") else None,
        member_prices={tier: amount(price) for tier, price in sorted(entry.member_prices.items())},
        valid_until=optional_moment(entry, "valid_until"),
    )


def map_label(label: pb.Label) -> LabelOut:
    priced = label.desired_price if label.HasField("desired_price") else label.acknowledged_price
    return LabelOut(
        store_id=label.store_id,
        label_id=label.label_id,
        sku=label.sku,
        template=label.template,
        state=_name(pb.LabelSyncState, "LABEL_SYNC_STATE", label.state) or "unspecified",
        desired_price=_optional_amount(label, "desired_price"),
        acknowledged_price=_optional_amount(label, "acknowledged_price"),
        currency=priced.currency_code or None,
        acknowledged_at=optional_moment(label, "acknowledged_at"),
        attempts=label.attempts,
        last_error=label.last_error or None,
        online=label.online,
        battery_mv=label.battery_mv or None,
        last_seen=optional_moment(label, "last_seen"),
        pending_since=optional_moment(label, "pending_since"),
    )


def map_markdown(suggestion: pb.MarkdownSuggestion) -> MarkdownOut:
    return MarkdownOut(
        markdown_id=suggestion.markdown_id,
        store_id=suggestion.store_id,
        sku=suggestion.sku,
        current_price=amount(suggestion.current_price),
        suggested_price=amount(suggestion.suggested_price),
        floor_price=amount(suggestion.floor_price),
        currency=suggestion.suggested_price.currency_code or DEFAULT_CURRENCY,
        percent_off=suggestion.percent_off.value,
        reason=suggestion.reason,
        state=_name(pb.MarkdownState, "MARKDOWN_STATE", suggestion.state) or "unspecified",
        change_id=suggestion.change_id or None,
        created_at=optional_moment(suggestion, "created_at"),
    )


def created_or_changed(model: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a PUT: `201` with the object when it was created (`200` when changed), and its problems."""
    responses = problems.problem_responses(*statuses)
    responses[201] = {"model": model, "description": "Created"}
    return responses


# ---- ownership ------------------------------------------------------------------------------------


def forbidden(detail: str) -> problems.ProblemError:
    return problems.ProblemError(problems.FORBIDDEN, detail)


def ensure_store_staff(principal: Principal, store_id: str, *, managers_only: bool) -> None:
    """403 unless headquarters, or staff of ``store_id`` (its manager when ``managers_only``)."""
    if principal.is_headquarters:
        return
    if principal.kind is not ClientKind.STAFF or principal.store_id is None:
        raise forbidden(f"only headquarters and the staff of store {store_id} may do this")
    principal.ensure_store(store_id)
    if managers_only and principal.staff_role is not StaffRole.STORE_MANAGER:
        raise forbidden(f"only headquarters and the manager of store {store_id} may do this")


def price_question_store(principal: Principal, store_id: str | None, location: str) -> str:
    """The store a price is asked for: a store-bound client's own by default, and never another."""
    if principal.kind is ClientKind.SUPPLIER_USER:
        raise forbidden("supplier users do not ask for selling prices")
    chosen = store_id or principal.store_id
    if not chosen:
        error = {"location": location, "message": "a store is required", "type": "missing"}
        raise problems.ProblemError(
            problems.VALIDATION_ERROR, "name the store the price is asked for", extensions={"errors": [error]}
        )
    principal.ensure_store(chosen)
    return chosen


def price_question(
    principal: Principal, store_id: str, channel: ChannelName | None, tier: TierName | None, at: datetime | None
) -> pb.PriceQuestion:
    question = pb.PriceQuestion(
        store_id=store_id, channel=_number(pb.Channel, "CHANNEL", channel), member_tier=tier or ""
    )
    if at is not None:
        question.at.CopyFrom(timestamp(at))
    return question


# ---- stores and the catalogue -----------------------------------------------------------------------


@router.put("/stores/{store_id}", responses=created_or_changed(StoreOut, 401, 403, 409, 422))
async def put_store(
    store_id: StoreId,
    body: StoreIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(STORES_WRITE))],
) -> StoreOut:
    """Register a store (`201`) or change it (`200`): name, price groups, currency and shelf-label
    station (`openepaperlink` or `batch` with its URL).

    Scope `stores:write`, headquarters only; `Idempotency-Key` required.
    """
    call.principal.ensure_headquarters()
    message = pb.PutStoreRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        store=pb.Store(
            store_id=store_id,
            name=body.name,
            price_groups=body.price_groups,
            currency_code=body.currency,
            label_station_kind=body.label_station_kind or "",
            label_station_url=body.label_station_url or "",
        ),
    )

    async def effect() -> tuple[int, Any]:
        answer = await resources.pricing_service.PutStore(message)
        return (201 if answer.created else 200), map_store(answer.store).model_dump(mode="json")

    return await call.run(effect)  # type: ignore[return-value]


@router.put("/items/{sku}", responses=created_or_changed(ItemOut, 401, 403, 404, 409, 422))
async def put_item(
    sku: Sku,
    body: ItemIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(CATALOGUE_WRITE))],
) -> ItemOut:
    """Create (`201`) or change (`200`) a catalogue item; its `version` advances on every change.

    Scope `catalogue:write`, headquarters only; `Idempotency-Key` required. A barcode with a
    wrong check digit or an unknown store is refused by the pricing service.
    """
    call.principal.ensure_headquarters()
    message = pb.PutItemRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        item=pb.Item(
            sku=sku,
            name=body.name,
            category=body.category,
            barcode=body.barcode,
            unit=_number(pb.Unit, "UNIT", body.unit),
            cost=money(body.cost, body.currency),
            supplier_id=body.supplier_id,
            store_ids=body.store_ids,
            active=body.active,
        ),
    )

    async def effect() -> tuple[int, Any]:
        answer = await resources.pricing_service.PutItem(message)
        return (201 if answer.created else 200), map_item(answer.item).model_dump(mode="json")

    return await call.run(effect)  # type: ignore[return-value]


@router.get("/items", responses=problems.problem_responses(401, 403, 422))
async def list_items(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(CATALOGUE_READ))],
    page: Paging,
    store_id: Annotated[str | None, Query(pattern=_ID, description="only items listed in this store")] = None,
    supplier_id: Annotated[str | None, Query(pattern=_ID, description="only this supplier's items")] = None,
    since_version: Annotated[Int64, Query(ge=0, description="only items changed after this item version")] = 0,
) -> ItemPage:
    """A page of the catalogue, by SKU.

    Scope `catalogue:read`. Terminals and store staff see their own store's listing (another
    store is `403`); a supplier user sees its own supplier's items (another supplier is `403`).
    """
    if principal.kind is ClientKind.SUPPLIER_USER:
        if not principal.supplier_id:
            raise forbidden("this supplier user is not bound to a supplier")
        if supplier_id and supplier_id != principal.supplier_id:
            raise forbidden(f"a supplier user sees its own supplier's items only, not {supplier_id}'s")
        supplier_id = principal.supplier_id
    elif principal.store_id is not None:
        if store_id and store_id != principal.store_id:
            raise forbidden(f"this client sees the listing of store {principal.store_id} only")
        store_id = principal.store_id
    answer = await resources.pricing_service.ListItems(
        pb.ListItemsRequest(
            page=page.request(), store_id=store_id or "", supplier_id=supplier_id or "", since_version=since_version
        ),
    )
    return ItemPage(
        items=[map_item(item) for item in answer.items], next_page_token=page.next_token(answer.page.next_page_token)
    )


# ---- price rules and scheduled changes -------------------------------------------------------------


@router.get("/prices/effective", responses=problems.problem_responses(401, 403, 404, 409, 422))
async def effective_price(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(PRICES_READ))],
    sku: Annotated[str, Query(pattern=_ID, description="the SKU")],
    store_id: Annotated[str | None, Query(pattern=_ID, description="default: the caller's own store")] = None,
    channel: Annotated[ChannelName | None, Query(description="default: store")] = None,
    tier: Annotated[TierName | None, Query(description="the buyer's member tier; none for a non-member")] = None,
    at: Annotated[AwareDatetime | None, Query(description="RFC 3339 with an offset; default now")] = None,
    quantity: Annotated[str, Query(pattern=_QUANTITY, description="units, or kg with 3 decimals")] = "1",
) -> EffectivePriceOut:
    """The price to charge for one SKU in one store, channel, member tier and moment, with the
    winning rule and promotion and why they won.

    Scope `prices:read`. Terminals and store staff ask about their own store only.
    """
    chosen = price_question_store(principal, store_id, "query.store_id")
    answer = await resources.pricing_service.GetEffectivePrice(
        pb.GetEffectivePriceRequest(sku=sku, question=price_question(principal, chosen, channel, tier, at)),
    )
    # The question carries no quantity: the line total of more than one unit is the basket's.
    if quantity == "1":
        return map_effective_price(answer.price)
    basket = await resources.pricing_service.PriceBasket(
        pb.PriceBasketRequest(
            question=price_question(principal, chosen, channel, tier, at),
            lines=[pb.BasketLine(sku=sku, quantity=money_pb2.Decimal(value=quantity))],
        ),
    )
    return map_effective_price(basket.lines[0])


@router.post("/prices/effective/basket", responses=problems.problem_responses(401, 403, 404, 409, 422))
async def price_basket(
    body: BasketIn, resources: Resources, principal: Annotated[Principal, Depends(require(PRICES_READ))]
) -> BasketOut:
    """Every line of a basket priced in one context (multi-buys count across the quantity), with
    the total and what it would cost at regular prices.

    Scope `prices:read`; a read, so no `Idempotency-Key`. Terminals and store staff price in
    their own store only.
    """
    chosen = price_question_store(principal, body.store_id, "body.store_id")
    answer = await resources.pricing_service.PriceBasket(
        pb.PriceBasketRequest(
            question=price_question(principal, chosen, body.channel, body.tier, body.at),
            lines=[pb.BasketLine(sku=line.sku, quantity=money_pb2.Decimal(value=line.quantity)) for line in body.lines],
        ),
    )
    return BasketOut(
        lines=[map_effective_price(line) for line in answer.lines],
        total=amount(answer.total),
        regular_total=amount(answer.regular_total),
        currency=answer.total.currency_code or DEFAULT_CURRENCY,
    )


@router.put("/prices/{sku}", responses=problems.problem_responses(401, 403, 404, 409, 422))
async def set_prices(
    sku: Sku,
    body: PricesIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PRICES_WRITE))],
) -> PricesOut:
    """Replace a SKU's base price, overrides and promotions as one set; the answer carries each
    rule's `rule_id` and each promotion's `display_text`.

    Scope `prices:write`, headquarters only; `Idempotency-Key` required. Overlapping rules of
    the same scope and priority are `422` (`overlapping-rules`); a regular price below cost or
    the minimum margin needs `guard_rail_override` with a reason (audited).
    """
    call.principal.ensure_headquarters()
    message = pb.SetPricesRequest(
        request_id=call.request_id,
        sku=sku,
        currency_code=body.currency,
        base_price=money(body.base_price, body.currency),
        overrides=[regular_price_message(rule, body.currency) for rule in body.overrides],
        promotions=[promotion_message(rule, body.currency) for rule in body.promotions],
        guard_rail_override=_override(body.guard_rail_override),
        actor=actor_of(call.principal),
    )

    async def effect() -> tuple[int, Any]:
        answer = await resources.pricing_service.SetPrices(message)
        return 200, map_prices(answer.prices).model_dump(mode="json")

    return await call.run(effect)  # type: ignore[return-value]


@router.get("/prices/{sku}", responses=problems.problem_responses(401, 403, 404, 422))
async def get_prices(
    sku: Sku, resources: Resources, principal: Annotated[Principal, Depends(require(PRICES_READ))]
) -> PricesOut:
    """A SKU's current rules: base price, overrides and promotions. Scope `prices:read`."""
    answer = await resources.pricing_service.GetPrices(pb.GetPricesRequest(sku=sku))
    return map_prices(answer.prices)


@router.post("/price-changes", status_code=201, responses=problems.problem_responses(401, 403, 404, 409, 422))
async def schedule_price_change(
    body: PriceChangeIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PRICE_CHANGES_WRITE))],
) -> PriceChangeOut:
    """Schedule a regular price to take effect at `effective_at` (not in the past); at that moment
    the store price books advance and the shelf labels follow.

    Scope `price-changes:write`; `Idempotency-Key` required. Headquarters for any stores (no
    `store_ids`: the chain-wide base price); a store manager only with `store_ids` = [their
    own store], anything else is `403`.
    """
    principal = call.principal
    if not principal.is_headquarters:
        if principal.staff_role is not StaffRole.STORE_MANAGER or principal.store_id is None:
            raise forbidden("only headquarters and store managers schedule price changes")
        if body.store_ids != [principal.store_id]:
            raise forbidden(
                f"a store manager schedules changes for store {principal.store_id} only: "
                f'give "store_ids": ["{principal.store_id}"]'
            )
    message = pb.SchedulePriceChangeRequest(
        request_id=call.request_id,
        sku=body.sku,
        price=money(body.price, body.currency),
        effective_at=timestamp(body.effective_at),
        store_ids=body.store_ids,
        channel=_number(pb.Channel, "CHANNEL", body.channel),
        guard_rail_override=_override(body.guard_rail_override),
        actor=actor_of(principal),
    )

    async def effect() -> tuple[int, Any]:
        answer = await resources.pricing_service.SchedulePriceChange(message)
        return 201, map_change(answer.change).model_dump(mode="json")

    return await call.run(effect)  # type: ignore[return-value]


@router.get("/price-changes", responses=problems.problem_responses(401, 403, 422))
async def list_price_changes(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(PRICES_READ))],
    page: Paging,
    sku: Annotated[str | None, Query(pattern=_ID, description="only this SKU's changes")] = None,
) -> PriceChangePage:
    """Scheduled and applied price changes, newest effective first.

    Scope `prices:read`, staff only; store staff see chain-wide changes and their own store's.
    """
    if principal.kind is not ClientKind.STAFF:
        raise forbidden("price changes are listed for staff only")
    answer = await resources.pricing_service.ListPriceChanges(
        pb.ListPriceChangesRequest(sku=sku or "", page=page.request())
    )
    own = principal.store_id
    changes = [change for change in answer.changes if own is None or not change.store_ids or own in change.store_ids]
    return PriceChangePage(
        changes=[map_change(change) for change in changes], next_page_token=page.next_token(answer.page.next_page_token)
    )


# ---- the POS price book ----------------------------------------------------------------------------

_BOOK_ETAG = re.compile(r'(?:W/)?"pb-(.+)-([0-9]{1,18})"')


_BOOK_RESPONSES = problems.problem_responses(401, 403, 404, 422)
_BOOK_RESPONSES[304] = {"description": "Not modified: the book of the ETag sent is current (no body)"}


def book_etag(store_id: str, version: int) -> str:
    return f'"pb-{store_id}-{version}"'


def held_versions(if_none_match: str, store_id: str) -> tuple[bool, set[int]]:
    """Whether `*` was sent, and the versions of this store's book named in ``If-None-Match``
    (compared weakly, as RFC 9110 asks of If-None-Match)."""
    any_version, versions = False, set[int]()
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*":
            any_version = True
        elif (match := _BOOK_ETAG.fullmatch(tag)) and match.group(1) == store_id:
            versions.add(int(match.group(2)))
    return any_version, versions


@router.get("/pos/price-book", responses=_BOOK_RESPONSES)
async def pos_price_book(
    response: Response,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(POS_PRICE_BOOK_READ))],
    page: Paging,
    since_version: Annotated[Int64, Query(ge=0, description="0: the whole book; N: what changed after N")] = 0,
    store_id: Annotated[str | None, Query(pattern=_ID, description="the terminal's own store (the default)")] = None,
    if_none_match: Annotated[
        str | None, Header(alias="If-None-Match", max_length=2000, description='the ETag held, e.g. "pb-S001-42"')
    ] = None,
) -> PriceBookOut:
    """The terminal's store price book: whole, or what changed after `since_version` (removed
    SKUs included, flagged `removed`), paged by SKU.

    Scope `pos:price-book:read`, POS terminals only, always their own store. The answer has
    `ETag: "pb-<store>-<version>"`; sending it back in `If-None-Match` answers `304` with no
    body while the book is unchanged.
    """
    if principal.kind is not ClientKind.POS_TERMINAL or principal.store_id is None:
        raise forbidden("the POS price book is for POS terminals of a store")
    if store_id is not None and store_id != principal.store_id:
        raise forbidden(f"a terminal reads the price book of its own store {principal.store_id} only")
    store_id = principal.store_id
    # Conditions apply to a book's first page; later pages continue a download already begun. Of
    # several tags sent, the newest version is the one that can still be current.
    any_version, versions = False, set[int]()
    if if_none_match and not page.cursor:
        any_version, versions = held_versions(if_none_match, store_id)
    answer = await resources.pricing_service.GetPriceBook(
        pb.GetPriceBookRequest(
            store_id=store_id,
            since_version=since_version,
            known_version=max(versions, default=0),
            page=page.request(size=1 if any_version else None),
        ),
    )
    headers = {"ETag": book_etag(answer.store_id or store_id, answer.version), "Cache-Control": "no-cache"}
    if answer.not_modified or any_version:
        return Response(status_code=304, headers=headers)  # type: ignore[return-value]
    response.headers.update(headers)
    return PriceBookOut(
        store_id=answer.store_id or store_id,
        version=answer.version,
        delta=answer.delta,
        entries=[map_book_entry(entry) for entry in answer.entries],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


# ---- shelf labels ----------------------------------------------------------------------------------


@router.put("/stores/{store_id}/labels/{label_id}", responses=created_or_changed(LabelOut, 401, 403, 404, 409, 422))
async def put_label(
    store_id: StoreId,
    label_id: Annotated[str, Path(pattern=_ID, description="the label id (an OpenEPaperLink tag's MAC)")],
    body: LabelIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(LABELS_WRITE))],
) -> LabelOut:
    """Link a shelf label to a SKU listed in the store (`201` new, `200` changed); its price is
    pushed to the label and its acknowledgement tracked.

    Scope `labels:write`: the store's manager or headquarters; `Idempotency-Key` required.
    """
    ensure_store_staff(call.principal, store_id, managers_only=True)
    message = pb.PutLabelRequest(
        request_id=call.request_id,
        store_id=store_id,
        label_id=label_id,
        sku=body.sku,
        template=body.template or "",
        actor=actor_of(call.principal),
    )

    async def effect() -> tuple[int, Any]:
        answer = await resources.pricing_service.PutLabel(message)
        return (201 if answer.created else 200), map_label(answer.label).model_dump(mode="json")

    return await call.run(effect)  # type: ignore[return-value]


@router.get("/stores/{store_id}/labels", responses=problems.problem_responses(401, 403, 404, 422))
async def list_labels(
    store_id: StoreId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(LABELS_READ))],
    page: Paging,
    state: Annotated[LabelStateName | None, Query(description="only labels in this sync state")] = None,
) -> LabelPage:
    """A page of a store's shelf labels with their sync state. Scope `labels:read`: the store's staff, headquarters."""
    ensure_store_staff(principal, store_id, managers_only=False)
    answer = await resources.pricing_service.ListLabels(
        pb.ListLabelsRequest(
            store_id=store_id, state=_number(pb.LabelSyncState, "LABEL_SYNC_STATE", state), page=page.request()
        ),
    )
    return LabelPage(
        labels=[map_label(label) for label in answer.labels],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.get("/stores/{store_id}/label-mismatches", responses=problems.problem_responses(401, 403, 404, 422))
async def label_mismatches(
    store_id: StoreId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(LABELS_READ))],
    page: Paging,
) -> LabelAuditOut:
    """The parity audit of a store: labels showing a price other than the POS charges now, and
    labels that have not acknowledged their content within the deadline, with the mismatch rate.

    Scope `labels:read`: the store's staff, headquarters.
    """
    ensure_store_staff(principal, store_id, managers_only=False)
    answer = await resources.pricing_service.ListLabelMismatches(
        pb.ListLabelMismatchesRequest(store_id=store_id, page=page.request()),
    )
    return LabelAuditOut(
        store_id=store_id,
        label_count=answer.label_count,
        mismatch_count=answer.mismatch_count,
        mismatch_rate=answer.mismatch_rate.value or "0",
        deadline_seconds=answer.deadline_seconds,
        mismatches=[
            LabelMismatchOut(
                label=map_label(m.label),
                pos_price=_optional_amount(m, "pos_price"),
                reason=_name(pb.MismatchReason, "MISMATCH_REASON", m.reason) or "unspecified",
            )
            for m in answer.mismatches
        ],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


# ---- markdowns -------------------------------------------------------------------------------------


@router.get("/stores/{store_id}/markdown-suggestions", responses=problems.problem_responses(401, 403, 404, 422))
async def list_markdowns(
    store_id: StoreId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MARKDOWNS_READ))],
    page: Paging,
    state: Annotated[MarkdownStateName | None, Query(description="default: open")] = None,
) -> MarkdownPage:
    """A store's markdown suggestions for slow movers and overstock, by SKU.

    Scope `markdowns:read`: the store's manager, headquarters.
    """
    ensure_store_staff(principal, store_id, managers_only=True)
    answer = await resources.pricing_service.ListMarkdownSuggestions(
        pb.ListMarkdownSuggestionsRequest(
            store_id=store_id, page=page.request(), state=_number(pb.MarkdownState, "MARKDOWN_STATE", state)
        ),
    )
    return MarkdownPage(
        suggestions=[map_markdown(suggestion) for suggestion in answer.suggestions],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.post(
    "/markdown-suggestions/{markdown_id}:decide", responses=problems.problem_responses(401, 403, 404, 409, 422)
)
async def decide_markdown(
    markdown_id: Annotated[str, Path(pattern=_MARKDOWN_ID)],
    body: DecisionIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MARKDOWNS_DECIDE))],
) -> DecisionOut:
    """Approve a markdown suggestion (it becomes a scheduled price change, at `effective_at` or as
    soon as possible) or reject it.

    Scope `markdowns:decide`: headquarters, or the manager of the suggestion's store (the
    pricing service refuses another store's manager); `Idempotency-Key` required.
    """
    principal = call.principal
    if not principal.is_headquarters and (
        principal.staff_role is not StaffRole.STORE_MANAGER or principal.store_id is None
    ):
        raise forbidden("only headquarters and store managers decide markdowns")
    message = pb.DecideMarkdownRequest(
        request_id=call.request_id, markdown_id=markdown_id, approve=body.approve, actor=actor_of(principal)
    )
    if body.effective_at is not None:
        message.effective_at.CopyFrom(timestamp(body.effective_at))

    async def effect() -> tuple[int, Any]:
        answer = await resources.pricing_service.DecideMarkdown(message)
        change = map_change(answer.change) if answer.HasField("change") else None
        return 200, DecisionOut(suggestion=map_markdown(answer.suggestion), change=change).model_dump(mode="json")

    return await call.run(effect)  # type: ignore[return-value]
