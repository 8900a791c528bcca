"""The pricing service's one mapping between its domain and its protobuf contract (retail.pricing.v1).

Requests become commands and questions here (``map_<command>`` and the ``map_*`` of their
parts, raising ``InvalidArgument`` for what the contract cannot mean), and domain values become
messages (``map_<message>``). The servicer, the outbox events and the stored POS book entries
all use these functions, so a price reads the same on every path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import identifiers_pb2, money_pb2, paging_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb

from servicekit import protowire
from servicekit.errors import InvalidArgument
from servicekit.protowire import optional, timestamp, to_wire
from services.pricing.adapters.label_store import LabelRow
from services.pricing.adapters.pricing_store import ChangeRow, StoredItem, StoreRow
from services.pricing.domain.catalogue import Item
from services.pricing.domain.commands import (
    Actor,
    DecideMarkdown,
    PutItem,
    PutLabel,
    PutStore,
    Question,
    RuleDraft,
    ScheduleChange,
    SetPrices,
)
from services.pricing.domain.markdown import StoredMarkdown
from services.pricing.domain.money import parse_percent, validate_currency, validate_fen
from services.pricing.domain.price_book import BookEntry
from services.pricing.domain.promotions import FixedPrice, Mechanic, MultiBuy, PercentOff
from services.pricing.domain.rules import MEMBER_TIERS, Channel, EffectivePrice, PriceRule, RuleKind, Scope

DEFAULT_CURRENCY = "CNY"
RuleMessageT = TypeVar("RuleMessageT", pb.RegularPrice, pb.Promotion)

# -- contract → domain ---------------------------------------------------------------------------


def map_enum(enum_type: Any, prefix: str, number: int) -> str:
    """The domain value of a contract enum number (``""`` for the unspecified zero); a number the
    contract does not define is the caller's mistake (INVALID_ARGUMENT)."""
    try:
        return protowire.from_wire(enum_type, prefix, number)
    except ValueError:
        raise InvalidArgument(f"unknown {prefix.lower()} {number}", reason=f"invalid-{prefix.lower()}") from None


def map_channel(number: int) -> Channel | None:
    """The channel a contract number names (None for the unspecified zero: every channel)."""
    value = map_enum(pb.Channel, "CHANNEL", number)
    return Channel(value) if value else None


def map_moment(message: Any, field: str) -> datetime | None:
    """An optional timestamp field as an aware datetime (None when unset)."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def map_page_size(page: paging_pb2.PageRequest, default: int, maximum: int) -> int:
    """The page size asked for: the default when unset, never above ``maximum``."""
    if page.page_size < 0:
        raise InvalidArgument("page_size is never negative", reason="invalid-page-size")
    return min(page.page_size or default, maximum)


def map_actor(message: identifiers_pb2.Actor) -> Actor:
    """Who asks, as the gateway vouched for it."""
    return Actor(
        client_id=message.client_id[:200],
        store_id=message.store_id,
        headquarters=message.client_kind == identifiers_pb2.CLIENT_KIND_STAFF
        and message.staff_role == identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
    )


def map_fen(message: money_pb2.Money, field: str, currency: str | None = None) -> int:
    """An amount in fen; a currency other than ``currency`` is refused."""
    if currency is not None and message.currency_code and message.currency_code != currency:
        raise InvalidArgument(
            f"{field} is in {message.currency_code}, expected {currency}",
            reason="currency-mismatch",
            details={"field": field},
        )
    return validate_fen(message.minor_units, field=field)


def map_tier(value: str, field: str) -> str | None:
    """A member tier ('' for every buyer)."""
    if not value:
        return None
    if value not in MEMBER_TIERS:
        raise InvalidArgument(
            f"{field} must be one of {', '.join(MEMBER_TIERS)}", reason="invalid-member-tier", details={"field": field}
        )
    return value


def map_scope(message: pb.RuleScope, field: str) -> Scope:
    """Where and for whom a rule applies."""
    return Scope(
        store_id=message.store_id or None,
        store_group=message.store_group or None,
        channel=map_channel(message.channel),
        member_tier=map_tier(message.member_tier, f"{field}.member_tier"),
    )


def map_override(message: pb.RegularPrice, position: int, currency: str) -> RuleDraft:
    """An override of the base price, as asked for."""
    field = f"overrides[{position}]"
    return RuleDraft(
        scope=map_scope(message.scope, f"{field}.scope"),
        priority=message.priority,
        valid_from=map_moment(message, "valid_from"),
        valid_to=map_moment(message, "valid_to"),
        price_fen=map_fen(message.price, f"{field}.price", currency),
    )


def map_mechanic(message: pb.Promotion, field: str, currency: str) -> Mechanic:
    """What a promotion does: exactly one of fixed price, percent off or multi-buy."""
    which = message.WhichOneof("mechanic")
    if which == "fixed_price":
        return FixedPrice(map_fen(message.fixed_price, f"{field}.fixed_price", currency))
    if which == "percent_off":
        return PercentOff(parse_percent(message.percent_off.value, f"{field}.percent_off"))
    if which == "multi_buy":
        bundle = map_fen(message.multi_buy.bundle_price, f"{field}.multi_buy.bundle_price", currency)
        return MultiBuy(message.multi_buy.quantity, bundle)
    raise InvalidArgument(
        f"{field} needs a mechanic: fixed_price, percent_off or multi_buy",
        reason="promotion-mechanic-missing",
        details={"field": field},
    )


def map_promotion_draft(message: pb.Promotion, position: int, currency: str) -> RuleDraft:
    """A promotion as asked for; it is always time-bounded."""
    field = f"promotions[{position}]"
    valid_from, valid_to = map_moment(message, "valid_from"), map_moment(message, "valid_to")
    if valid_from is None or valid_to is None:
        raise InvalidArgument(
            f"{field} is time-bounded: valid_from and valid_to are required",
            reason="promotion-window-missing",
            details={"field": field},
        )
    return RuleDraft(
        scope=map_scope(message.scope, f"{field}.scope"),
        priority=message.priority,
        valid_from=valid_from,
        valid_to=valid_to,
        mechanic=map_mechanic(message, field, currency),
        name=message.name.strip()[:120],
    )


def map_quantity(message: money_pb2.Decimal, field: str) -> Decimal:
    """A line quantity: a plain decimal number (no exponent, no NaN)."""
    text = message.value
    try:
        quantity = Decimal(text)
    except InvalidOperation:
        raise InvalidArgument(
            f"{field} {text!r} is not a decimal number", reason="invalid-quantity", details={"field": field}
        ) from None
    if not text or not quantity.is_finite() or "e" in text.lower():
        raise InvalidArgument(
            f"{field} {text!r} is not a decimal number", reason="invalid-quantity", details={"field": field}
        )
    return quantity


def map_question(message: pb.PriceQuestion) -> Question:
    """Where, through which channel, for whom and when a price is asked for."""
    if not message.store_id:
        raise InvalidArgument("store_id is required", reason="store-missing", details={"field": "store_id"})
    return Question(
        store_id=message.store_id,
        channel=map_channel(message.channel) or Channel.STORE,
        member_tier=map_tier(message.member_tier, "member_tier"),
        at=map_moment(message, "at"),
    )


def map_basket(message: pb.PriceBasketRequest) -> list[tuple[str, Decimal]]:
    """A basket's (SKU, quantity) lines."""
    return [(line.sku, map_quantity(line.quantity, f"lines[{i}].quantity")) for i, line in enumerate(message.lines)]


def map_put_store(request: pb.PutStoreRequest) -> PutStore:
    """A store as registered (its book version is the service's)."""
    store = request.store
    return PutStore(
        store_id=store.store_id,
        name=store.name.strip(),
        price_groups=tuple(sorted(set(store.price_groups))),
        currency=store.currency_code or DEFAULT_CURRENCY,
        label_station_kind=store.label_station_kind,
        label_station_url=store.label_station_url.rstrip("/"),
    )


def map_put_item(request: pb.PutItemRequest) -> PutItem:
    """A catalogue item as given (its version and update time are the service's)."""
    item = request.item
    return PutItem(
        Item.create(
            sku=item.sku,
            name=item.name,
            category=item.category,
            barcode=item.barcode,
            unit=map_enum(pb.Unit, "UNIT", item.unit) or "",
            cost_fen=map_fen(item.cost, "cost"),
            supplier_id=item.supplier_id,
            store_ids=list(item.store_ids),
            active=item.active,
        )
    )


def map_put_label(request: pb.PutLabelRequest) -> PutLabel:
    """A label linked to a SKU of its store."""
    return PutLabel(store_id=request.store_id, label_id=request.label_id, sku=request.sku, template=request.template)


def map_decide_markdown(request: pb.DecideMarkdownRequest) -> DecideMarkdown:
    """A decision on a markdown suggestion (an approval without a moment takes effect at once)."""
    return DecideMarkdown(
        markdown_id=request.markdown_id, approve=request.approve, effective_at=map_moment(request, "effective_at")
    )


def map_set_prices(request: pb.SetPricesRequest) -> SetPrices:
    """The SKU's new rules: base price, overrides and promotions, all in one currency."""
    currency = validate_currency(request.currency_code or DEFAULT_CURRENCY, field="currency_code")
    if not request.HasField("base_price"):
        raise InvalidArgument("base_price is required", reason="base-price-missing", details={"field": "base_price"})
    return SetPrices(
        sku=request.sku,
        currency=currency,
        base_price_fen=map_fen(request.base_price, "base_price", currency),
        overrides=[map_override(o, i, currency) for i, o in enumerate(request.overrides)],
        promotions=[map_promotion_draft(p, i, currency) for i, p in enumerate(request.promotions)],
        override_reason=request.guard_rail_override.reason if request.HasField("guard_rail_override") else "",
    )


def map_schedule_change(request: pb.SchedulePriceChangeRequest) -> ScheduleChange:
    """A regular price for a future moment."""
    effective_at = map_moment(request, "effective_at")
    if effective_at is None:
        raise InvalidArgument(
            "effective_at is required", reason="effective-at-missing", details={"field": "effective_at"}
        )
    if not request.HasField("price"):
        raise InvalidArgument("price is required", reason="price-missing", details={"field": "price"})
    return ScheduleChange(
        sku=request.sku,
        price_fen=map_fen(request.price, "price"),
        effective_at=effective_at,
        store_ids=tuple(request.store_ids),
        channel=map_channel(request.channel),
        override_reason=request.guard_rail_override.reason if request.HasField("guard_rail_override") else "",
    )


# -- domain → contract ---------------------------------------------------------------------------


def map_money(fen: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, minor_units=fen)


def map_decimal(number: Decimal) -> money_pb2.Decimal:
    return money_pb2.Decimal(value=format(number.normalize(), "f"))


def map_unit(value: str) -> Any:
    return to_wire(pb.Unit, "UNIT", value)


def map_channel_number(channel: Channel | None) -> Any:
    return to_wire(pb.Channel, "CHANNEL", channel.value if channel else "")


def map_rule_scope(rule_scope: Scope) -> pb.RuleScope:
    return pb.RuleScope(
        store_id=rule_scope.store_id or "",
        store_group=rule_scope.store_group or "",
        channel=map_channel_number(rule_scope.channel),
        member_tier=rule_scope.member_tier or "",
    )


def _with_validity(message: RuleMessageT, rule: PriceRule) -> RuleMessageT:
    """The rule's validity window on its message (a bound left open stays unset)."""
    if rule.valid_from is not None:
        message.valid_from.CopyFrom(timestamp(rule.valid_from))
    if rule.valid_to is not None:
        message.valid_to.CopyFrom(timestamp(rule.valid_to))
    return message


def map_regular_price(rule: PriceRule) -> pb.RegularPrice:
    message = pb.RegularPrice(
        rule_id=rule.rule_id,
        scope=map_rule_scope(rule.scope),
        price=map_money(rule.price_fen or 0, rule.currency),
        priority=rule.priority,
    )
    return _with_validity(message, rule)


def map_promotion(rule: PriceRule) -> pb.Promotion:
    message = pb.Promotion(
        rule_id=rule.rule_id, scope=map_rule_scope(rule.scope), name=rule.name, priority=rule.priority
    )
    mechanic = rule.mechanic
    if isinstance(mechanic, FixedPrice):
        message.fixed_price.CopyFrom(map_money(mechanic.price_fen, rule.currency))
    elif isinstance(mechanic, PercentOff):
        message.percent_off.CopyFrom(map_decimal(mechanic.percent))
    elif isinstance(mechanic, MultiBuy):
        message.multi_buy.quantity = mechanic.quantity
        message.multi_buy.bundle_price.CopyFrom(map_money(mechanic.bundle_price_fen, rule.currency))
    if mechanic is not None:
        message.display_text = mechanic.display_text()
    return _with_validity(message, rule)


def map_store(store: StoreRow) -> pb.Store:
    return pb.Store(
        store_id=store.store_id,
        name=store.name,
        price_groups=list(store.price_groups),
        currency_code=store.currency,
        label_station_kind=store.label_station_kind,
        label_station_url=store.label_station_url,
        price_book_version=store.book_version,
    )


def map_item(stored: StoredItem) -> pb.Item:
    item = stored.item
    message = pb.Item(
        sku=item.sku,
        name=item.name,
        category=item.category,
        barcode=item.barcode,
        unit=map_unit(item.unit.value),
        cost=map_money(item.cost_fen, DEFAULT_CURRENCY),
        supplier_id=item.supplier_id,
        store_ids=sorted(item.store_ids),
        active=item.active,
        version=stored.version,
    )
    message.updated_at.CopyFrom(timestamp(stored.updated_at))
    return message


def map_prices(sku: str, rules: Sequence[PriceRule]) -> pb.SkuPrices:
    """A SKU's rules: the base price, overrides and promotions."""
    prices = pb.SkuPrices(sku=sku)
    for rule in rules:
        prices.currency_code = rule.currency
        if rule.kind is RuleKind.PROMOTION:
            prices.promotions.append(map_promotion(rule))
        elif rule.scope == Scope() and rule.valid_from is None and rule.valid_to is None and rule.priority == 0:
            prices.base_price.CopyFrom(map_money(rule.price_fen or 0, rule.currency))
        else:
            prices.overrides.append(map_regular_price(rule))
    return prices


def map_change(change: ChangeRow) -> pb.PriceChange:
    return pb.PriceChange(
        change_id=change.change_id,
        sku=change.sku,
        price=map_money(change.price_fen, change.currency),
        effective_at=timestamp(change.effective_at),
        store_ids=list(change.store_ids),
        channel=map_channel_number(Channel(change.channel) if change.channel else None),
        state=to_wire(pb.PriceChangeState, "PRICE_CHANGE_STATE", change.state),
        guard_rail_override_reason=change.override_reason,
        markdown_id=change.markdown_id or "",
        applied_at=optional(timestamp, change.applied_at),
    )


def map_effective_price(price: EffectivePrice, sku: str, message: pb.EffectivePrice | None = None) -> pb.EffectivePrice:
    """The line as a message (``message``: filled in place); each field set in place, since
    building each Money and copying it in cost twice as much."""
    message = pb.EffectivePrice() if message is None else message
    message.sku = sku
    currency = price.currency
    unit_price, regular_price, line_total = message.unit_price, message.regular_price, message.line_total
    unit_price.currency_code, unit_price.minor_units = currency, price.unit_price_fen
    regular_price.currency_code, regular_price.minor_units = currency, price.regular_price_fen
    message.regular_rule_id = price.regular_rule.rule_id
    if price.promotion is not None:
        message.promotion.CopyFrom(_kept(_promotion_messages, price.promotion, map_promotion))
    message.promotion_applied = price.promotion_applied
    message.quantity.value = _decimal_text(price.quantity)
    line_total.currency_code, line_total.minor_units = currency, price.line_total_fen
    message.explanation = explain(price)
    return message


def explain(price: EffectivePrice) -> str:
    """Which rules decided a price, in words."""
    text = _kept(_regular_texts, price.regular_rule, _describe_regular)
    if price.promotion is not None:
        verb = "applied" if price.promotion_applied else "not applied"
        text += f"; promotion {price.promotion.rule_id} {verb}"
        if price.promotion_note:
            text += f" ({price.promotion_note})"
    return text


def map_basket_prices(
    prices: Sequence[EffectivePrice],
    lines: Sequence[tuple[str, Decimal]],
    response: pb.PriceBasketResponse | None = None,
) -> pb.PriceBasketResponse:
    response = pb.PriceBasketResponse() if response is None else response  # or filled in place
    currency = prices[0].currency
    response.total.CopyFrom(map_money(sum(price.line_total_fen for price in prices), currency))
    response.regular_total.CopyFrom(map_money(sum(price.regular_line_total_fen for price in prices), currency))
    add = response.lines.add
    for price, (sku, _) in zip(prices, lines, strict=True):
        map_effective_price(price, sku, add())
    return response


# What a rule always maps to, kept per rule object: a basket's rules come from the read cache,
# the same objects again and again (the rule is kept with its answer, so its id is not reused).
_MEMO_SIZE = 50_000
_regular_texts: dict[int, tuple[PriceRule, str]] = {}
_promotion_messages: dict[int, tuple[PriceRule, pb.Promotion]] = {}
_decimal_texts: dict[Decimal, str] = {}
MemoT = TypeVar("MemoT")


def _kept(memo: dict[int, tuple[PriceRule, MemoT]], rule: PriceRule, make: Callable[[PriceRule], MemoT]) -> MemoT:
    kept = memo.get(id(rule))
    if kept is not None and kept[0] is rule:
        return kept[1]
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[id(rule)] = (rule, made := make(rule))
    return made


def _describe_regular(rule: PriceRule) -> str:
    return f"regular price from {rule.rule_id} ({rule.scope.describe()}, priority {rule.priority})"


def _decimal_text(number: Decimal) -> str:
    """``map_decimal``'s text; quantities repeat (1, 2, 0.5 kg…), so each is worked out once."""
    if (text := _decimal_texts.get(number)) is None:
        if len(_decimal_texts) >= _MEMO_SIZE:
            _decimal_texts.clear()
        text = _decimal_texts[number] = format(number.normalize(), "f")
    return text


def map_mismatch_reason(reason: str) -> Any:
    return to_wire(pb.MismatchReason, "MISMATCH_REASON", reason)


def map_label(label: LabelRow) -> pb.Label:
    currency = label.desired.currency if label.desired is not None else DEFAULT_CURRENCY
    return pb.Label(
        store_id=label.store_id,
        label_id=label.label_id,
        sku=label.sku,
        template=label.template,
        state=to_wire(pb.LabelSyncState, "LABEL_SYNC_STATE", label.state),
        attempts=label.attempts,
        last_error=label.last_error,
        online=label.online,
        battery_mv=label.battery_mv or 0,
        desired_price=None if label.desired_price_fen is None else map_money(label.desired_price_fen, currency),
        acknowledged_price=None if label.acked_price_fen is None else map_money(label.acked_price_fen, currency),
        acknowledged_at=optional(timestamp, label.acked_at),
        last_seen=optional(timestamp, label.last_seen),
        pending_since=optional(timestamp, label.pending_since),
    )


def map_markdown(row: StoredMarkdown) -> pb.MarkdownSuggestion:
    return pb.MarkdownSuggestion(
        markdown_id=row.markdown_id,
        store_id=row.store_id,
        sku=row.sku,
        current_price=map_money(row.current_price_fen, DEFAULT_CURRENCY),
        suggested_price=map_money(row.suggested_price_fen, DEFAULT_CURRENCY),
        floor_price=map_money(row.floor_price_fen, DEFAULT_CURRENCY),
        percent_off=map_decimal(row.percent_off),
        reason=row.reason,
        state=to_wire(pb.MarkdownState, "MARKDOWN_STATE", row.state),
        change_id=row.change_id or "",
        created_at=timestamp(row.created_at),
    )


def map_book_entry(entry: BookEntry) -> pb.PriceBookEntry:
    """A book entry without its version (the store's book stamps it)."""
    message = pb.PriceBookEntry(
        sku=entry.sku,
        name=entry.name,
        barcode=entry.barcode,
        unit=map_unit(entry.unit),
        regular_price=map_money(entry.regular_price_fen, entry.currency),
        unit_price=map_money(entry.unit_price_fen, entry.currency),
    )
    if entry.promotion is not None:
        message.promotion.CopyFrom(map_promotion(entry.promotion))
    for tier, fen in entry.member_prices:
        message.member_prices[tier].CopyFrom(map_money(fen, entry.currency))
    if entry.valid_until is not None:
        message.valid_until.FromDatetime(entry.valid_until)
    return message


def map_book_entry_of(message: pb.PriceBookEntry) -> BookEntry:
    """A stored or served book entry back as plain data (its promotion as its display text only)."""
    return BookEntry(
        sku=message.sku,
        name=message.name,
        barcode=message.barcode,
        unit=map_enum(pb.Unit, "UNIT", message.unit),
        currency=message.unit_price.currency_code,
        regular_price_fen=message.regular_price.minor_units,
        unit_price_fen=message.unit_price.minor_units,
        promotion_text=message.promotion.display_text if message.HasField("promotion") else "",
        member_prices=tuple((tier, money.minor_units) for tier, money in sorted(message.member_prices.items())),
        valid_until=message.valid_until.ToDatetime(tzinfo=UTC) if message.HasField("valid_until") else None,
    )


# -- answers of the mutating calls ---------------------------------------------------------------


def map_put_store_response(result: tuple[StoreRow, bool]) -> pb.PutStoreResponse:
    stored, created = result
    return pb.PutStoreResponse(store=map_store(stored), created=created)


def map_put_item_response(result: tuple[StoredItem, bool]) -> pb.PutItemResponse:
    stored, created = result
    return pb.PutItemResponse(item=map_item(stored), created=created)


def map_set_prices_response(sku: str) -> Callable[[list[PriceRule]], pb.SetPricesResponse]:
    """The answer to setting ``sku``'s rules: the rules as they now stand."""

    def answer(rules: list[PriceRule]) -> pb.SetPricesResponse:
        return pb.SetPricesResponse(prices=map_prices(sku, rules))

    return answer


def map_schedule_change_response(change: ChangeRow) -> pb.SchedulePriceChangeResponse:
    return pb.SchedulePriceChangeResponse(change=map_change(change))


def map_put_label_response(result: tuple[LabelRow, bool]) -> pb.PutLabelResponse:
    label, created = result
    return pb.PutLabelResponse(label=map_label(label), created=created)


def map_decide_markdown_response(result: tuple[StoredMarkdown, ChangeRow | None]) -> pb.DecideMarkdownResponse:
    suggestion, change = result
    return pb.DecideMarkdownResponse(suggestion=map_markdown(suggestion), change=optional(map_change, change))
