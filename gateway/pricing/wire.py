"""HTTP ↔ protobuf for the pricing routes: the messages a request becomes and the ``map_*`` answers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from retail.common.v1 import money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb

from gateway.http.json_body import json_bytes
from gateway.http.money import yuan_text
from gateway.pricing.schemas import (
    DEFAULT_CURRENCY,
    ChannelName,
    DecisionOut,
    EffectivePriceOut,
    GuardRailOverrideIn,
    ItemOut,
    LabelOut,
    MarkdownOut,
    MultiBuyOut,
    OverrideIn,
    PriceBookEntryOut,
    PriceChangeOut,
    PricesOut,
    PromotionIn,
    PromotionOut,
    RegularPriceOut,
    RuleScopeIn,
    StoreOut,
    TierName,
)
from gateway.security.authentication import Principal
from servicekit.protowire import from_wire, optional, optional_moment, timestamp, to_wire


def money(amount: str, currency: str) -> money_pb2.Money:
    """A validated decimal amount as whole minor units; exact, since it has at most two decimals."""
    return money_pb2.Money(currency_code=currency, minor_units=int(Decimal(amount).scaleb(2)))


def amount(value: money_pb2.Money) -> str:
    return yuan_text(value.minor_units)


def optional_amount(message: Any, field: str) -> str | None:
    return amount(getattr(message, field)) if message.HasField(field) else None


def enum_name(enum_type: Any, prefix: str, number: int) -> str | None:
    """An enum number as its lower-case name; None for the unspecified zero."""
    return from_wire(enum_type, prefix, number) or None


def enum_number(enum_type: Any, prefix: str, name: str | None) -> Any:
    return to_wire(enum_type, prefix, name or "")


def guard_rail_override_message(guard_rail: GuardRailOverrideIn | None) -> pb.GuardRailOverride | None:
    return pb.GuardRailOverride(reason=guard_rail.reason) if guard_rail else None


def rule_scope(rule: RuleScopeIn) -> pb.RuleScope:
    return pb.RuleScope(
        store_id=rule.store_id or "",
        store_group=rule.store_group or "",
        channel=enum_number(pb.Channel, "CHANNEL", rule.channel),
        member_tier=rule.member_tier or "",
    )


def regular_price_message(rule: OverrideIn, currency: str) -> pb.RegularPrice:
    return pb.RegularPrice(
        scope=rule_scope(rule),
        price=money(rule.price, currency),
        priority=rule.priority,
        valid_from=optional(timestamp, rule.valid_from),
        valid_to=optional(timestamp, rule.valid_to),
    )


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
        "channel": enum_name(pb.Channel, "CHANNEL", scope.channel),
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
        unit=enum_name(pb.Unit, "UNIT", item.unit) or "unspecified",
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
        channel=enum_name(pb.Channel, "CHANNEL", change.channel),
        state=enum_name(pb.PriceChangeState, "PRICE_CHANGE_STATE", change.state) or "unspecified",
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


def basket_request(question: pb.PriceQuestion, lines: Iterable[tuple[str, str]]) -> pb.PriceBasketRequest:
    """A basket's request from its (SKU, quantity) lines, each added in place: a line built as its
    own message (and its quantity as another) is copied into the request, which took three times as long."""
    request = pb.PriceBasketRequest(question=question)
    add = request.lines.add
    for sku, quantity in lines:
        add(sku=sku).quantity.value = quantity
    return request


def basket_json(answer: pb.PriceBasketResponse) -> bytes:
    """The :class:`BasketOut` of a basket as JSON, byte for byte what the model would serialise to,
    built straight from the trusted answer: no model per line to validate and dump (for 20 lines
    that was a fifth of the gateway's CPU per basket). A promotion, rarer and holding moments,
    still goes through :class:`PromotionOut`."""
    return json_bytes(
        {
            "lines": [_effective_price_json(line) for line in answer.lines],
            "total": amount(answer.total),
            "regular_total": amount(answer.regular_total),
            "currency": answer.total.currency_code or DEFAULT_CURRENCY,
        }
    )


def _effective_price_json(price: pb.EffectivePrice) -> dict[str, Any]:
    return {
        "sku": price.sku,
        "unit_price": amount(price.unit_price),
        "regular_price": amount(price.regular_price),
        "currency": price.unit_price.currency_code or DEFAULT_CURRENCY,
        "regular_rule_id": price.regular_rule_id,
        "promotion": map_promotion(price.promotion).model_dump(mode="json") if price.HasField("promotion") else None,
        "promotion_applied": price.promotion_applied,
        "quantity": price.quantity.value,
        "line_total": amount(price.line_total),
        "explanation": price.explanation,
    }


def map_book_entry(entry: pb.PriceBookEntry) -> PriceBookEntryOut:
    return PriceBookEntryOut(
        sku=entry.sku,
        version=entry.version,
        removed=entry.removed,
        name=entry.name,
        barcode=entry.barcode,
        unit=enum_name(pb.Unit, "UNIT", entry.unit),
        regular_price=optional_amount(entry, "regular_price"),
        unit_price=optional_amount(entry, "unit_price"),
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
        state=enum_name(pb.LabelSyncState, "LABEL_SYNC_STATE", label.state) or "unspecified",
        desired_price=optional_amount(label, "desired_price"),
        acknowledged_price=optional_amount(label, "acknowledged_price"),
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
        state=enum_name(pb.MarkdownState, "MARKDOWN_STATE", suggestion.state) or "unspecified",
        change_id=suggestion.change_id or None,
        created_at=optional_moment(suggestion, "created_at"),
    )


def price_question(
    principal: Principal, store_id: str, channel: ChannelName | None, tier: TierName | None, at: datetime | None
) -> pb.PriceQuestion:
    return pb.PriceQuestion(
        store_id=store_id,
        channel=enum_number(pb.Channel, "CHANNEL", channel),
        member_tier=tier or "",
        at=optional(timestamp, at),
    )


def book_etag(store_id: str, version: int) -> str:
    return f'"pb-{store_id}-{version}"'


def map_decision(answer: pb.DecideMarkdownResponse) -> DecisionOut:
    change = map_change(answer.change) if answer.HasField("change") else None
    return DecisionOut(suggestion=map_markdown(answer.suggestion), change=change)
