"""gRPC face of the pricing service: maps the contract to commands and answers, nothing more."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from retail.common.v1 import identifiers_pb2, money_pb2, paging_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.idempotency import run_request_once
from services.pricing.adapters import wire
from services.pricing.adapters.label_store import LabelRow
from services.pricing.adapters.pricing_store import ChangeRow, StoreRow
from services.pricing.domain.catalogue import Item
from services.pricing.domain.money import parse_percent, validate_currency, validate_fen
from services.pricing.domain.promotions import FixedPrice, Mechanic, MultiBuy, PercentOff
from services.pricing.domain.rules import MEMBER_TIERS, Channel, EffectivePrice, PriceRule, RuleKind, Scope
from services.pricing.service_layer.labels import LabelSync
from services.pricing.service_layer.markdowns import Markdowns, wire_markdown
from services.pricing.service_layer.pricing import (
    Actor,
    Pricing,
    Question,
    RuleDraft,
    ScheduleChange,
    SetPrices,
    wire_item,
)

ResponseT = TypeVar("ResponseT", bound=Message)
Clock = Callable[[], datetime]


def _page_size(page: paging_pb2.PageRequest, default: int, maximum: int) -> int:
    if page.page_size < 0:
        raise InvalidArgument("page_size is never negative", reason="invalid-page-size")
    return min(page.page_size or default, maximum)


def decode_token(token: str) -> str:
    """The key a page token continues after ('' for the first page)."""
    if not token:
        return ""
    try:
        key = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidArgument("page_token is not one this service gave out", reason="invalid-page-token") from None
    if not key.startswith("k:"):
        raise InvalidArgument("page_token is not one this service gave out", reason="invalid-page-token")
    return key[2:]


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(f"k:{key}".encode()).decode().rstrip("=") if key else ""


def map_actor(message: identifiers_pb2.Actor) -> Actor:
    return Actor(
        client_id=message.client_id[:200],
        store_id=message.store_id,
        headquarters=message.client_kind == identifiers_pb2.CLIENT_KIND_STAFF
        and message.staff_role == identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
    )


def map_money(message: money_pb2.Money, field: str, currency: str | None = None) -> int:
    if currency is not None and message.currency_code and message.currency_code != currency:
        raise InvalidArgument(
            f"{field} is in {message.currency_code}, expected {currency}",
            reason="currency-mismatch",
            details={"field": field},
        )
    return validate_fen(message.minor_units, field=field)


def map_tier(value: str, field: str) -> str | None:
    if not value:
        return None
    if value not in MEMBER_TIERS:
        raise InvalidArgument(
            f"{field} must be one of {', '.join(MEMBER_TIERS)}", reason="invalid-member-tier", details={"field": field}
        )
    return value


def map_scope(message: pb.RuleScope, field: str) -> Scope:
    return Scope(
        store_id=message.store_id or None,
        store_group=message.store_group or None,
        channel=wire.channel_of(message.channel),
        member_tier=map_tier(message.member_tier, f"{field}.member_tier"),
    )


def map_override(message: pb.RegularPrice, position: int, currency: str) -> RuleDraft:
    field = f"overrides[{position}]"
    return RuleDraft(
        scope=map_scope(message.scope, f"{field}.scope"),
        priority=message.priority,
        valid_from=wire.moment_of(message, "valid_from"),
        valid_to=wire.moment_of(message, "valid_to"),
        price_fen=map_money(message.price, f"{field}.price", currency),
    )


def map_mechanic(message: pb.Promotion, field: str, currency: str) -> Mechanic:
    which = message.WhichOneof("mechanic")
    if which == "fixed_price":
        return FixedPrice(map_money(message.fixed_price, f"{field}.fixed_price", currency))
    if which == "percent_off":
        return PercentOff(parse_percent(message.percent_off.value, f"{field}.percent_off"))
    if which == "multi_buy":
        bundle = map_money(message.multi_buy.bundle_price, f"{field}.multi_buy.bundle_price", currency)
        return MultiBuy(message.multi_buy.quantity, bundle)
    raise InvalidArgument(
        f"{field} needs a mechanic: fixed_price, percent_off or multi_buy",
        reason="promotion-mechanic-missing",
        details={"field": field},
    )


def map_promotion(message: pb.Promotion, position: int, currency: str) -> RuleDraft:
    field = f"promotions[{position}]"
    valid_from, valid_to = wire.moment_of(message, "valid_from"), wire.moment_of(message, "valid_to")
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


def map_quantity(message: Any, field: str) -> Decimal:
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
    if not message.store_id:
        raise InvalidArgument("store_id is required", reason="store-missing", details={"field": "store_id"})
    return Question(
        store_id=message.store_id,
        channel=wire.channel_of(message.channel) or Channel.STORE,
        member_tier=map_tier(message.member_tier, "member_tier"),
        at=wire.moment_of(message, "at"),
    )


def wire_store(store: StoreRow) -> pb.Store:
    return pb.Store(
        store_id=store.store_id,
        name=store.name,
        price_groups=list(store.price_groups),
        currency_code=store.currency,
        label_station_kind=store.label_station_kind,
        label_station_url=store.label_station_url,
        price_book_version=store.book_version,
    )


def wire_prices(sku: str, rules: Sequence[PriceRule]) -> pb.SkuPrices:
    prices = pb.SkuPrices(sku=sku)
    for rule in rules:
        prices.currency_code = rule.currency
        if rule.kind is RuleKind.PROMOTION:
            prices.promotions.append(wire.promotion(rule))
        elif rule.scope == Scope() and rule.valid_from is None and rule.valid_to is None and rule.priority == 0:
            prices.base_price.CopyFrom(wire.money(rule.price_fen or 0, rule.currency))
        else:
            prices.overrides.append(wire.regular_price(rule))
    return prices


def wire_change(change: ChangeRow) -> pb.PriceChange:
    message = pb.PriceChange(
        change_id=change.change_id,
        sku=change.sku,
        price=wire.money(change.price_fen, change.currency),
        effective_at=wire.timestamp(change.effective_at),
        store_ids=list(change.store_ids),
        channel=wire.channel_number(Channel(change.channel) if change.channel else None),
        state=wire.to_wire(pb.PriceChangeState, "PRICE_CHANGE_STATE", change.state),
        guard_rail_override_reason=change.override_reason,
        markdown_id=change.markdown_id or "",
    )
    if change.applied_at is not None:
        message.applied_at.CopyFrom(wire.timestamp(change.applied_at))
    return message


def wire_effective(price: EffectivePrice, sku: str) -> pb.EffectivePrice:
    message = pb.EffectivePrice(
        sku=sku,
        unit_price=wire.money(price.unit_price_fen, price.currency),
        regular_price=wire.money(price.regular_price_fen, price.currency),
        regular_rule_id=price.regular_rule.rule_id,
        promotion_applied=price.promotion_applied,
        line_total=wire.money(price.line_total_fen, price.currency),
        explanation=explain(price),
    )
    message.quantity.value = format(price.quantity.normalize(), "f")
    if price.promotion is not None:
        message.promotion.CopyFrom(wire.promotion(price.promotion))
    return message


def explain(price: EffectivePrice) -> str:
    rule = price.regular_rule
    text = f"regular price from {rule.rule_id} ({rule.scope.describe()}, priority {rule.priority})"
    if price.promotion is not None:
        verb = "applied" if price.promotion_applied else "not applied"
        text += f"; promotion {price.promotion.rule_id} {verb}"
        if price.promotion_note:
            text += f" ({price.promotion_note})"
    return text


def wire_label(label: LabelRow) -> pb.Label:
    message = pb.Label(
        store_id=label.store_id,
        label_id=label.label_id,
        sku=label.sku,
        template=label.template,
        state=wire.to_wire(pb.LabelSyncState, "LABEL_SYNC_STATE", label.state),
        attempts=label.attempts,
        last_error=label.last_error,
        online=label.online,
        battery_mv=label.battery_mv or 0,
    )
    currency = label.desired.currency if label.desired is not None else "CNY"
    if label.desired_price_fen is not None:
        message.desired_price.CopyFrom(wire.money(label.desired_price_fen, currency))
    if label.acked_price_fen is not None:
        message.acknowledged_price.CopyFrom(wire.money(label.acked_price_fen, currency))
    for field, moment in (
        ("acknowledged_at", label.acked_at),
        ("last_seen", label.last_seen),
        ("pending_since", label.pending_since),
    ):
        if moment is not None:
            getattr(message, field).CopyFrom(wire.timestamp(moment))
    return message


class PricingServicer(pb_grpc.PricingServiceServicer):
    """gRPC face of the pricing service."""

    def __init__(
        self,
        pricing: Pricing,
        labels: LabelSync,
        markdowns: Markdowns,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._pricing = pricing
        self._labels = labels
        self._markdowns = markdowns
        self._uow = unit_of_work
        self._clock = clock

    async def _once(
        self, request: Any, response_type: type[ResponseT], effect: Callable[[UnitOfWork], Awaitable[ResponseT]]
    ) -> ResponseT:
        if not request.request_id or len(request.request_id) > 200:
            raise InvalidArgument("request_id is required (at most 200 characters)", reason="request-id-missing")
        return await run_request_once(self._uow(), request, response_type, effect)

    async def PutStore(self, request: pb.PutStoreRequest, context: Any) -> pb.PutStoreResponse:
        """Register or change a store."""
        given = request.store
        store = StoreRow(
            store_id=given.store_id,
            name=given.name.strip(),
            price_groups=tuple(sorted(set(given.price_groups))),
            currency=given.currency_code or "CNY",
            label_station_kind=given.label_station_kind,
            label_station_url=given.label_station_url.rstrip("/"),
            book_version=0,
        )
        _check_actor_headquarters(request.actor)

        async def effect(uow: UnitOfWork) -> pb.PutStoreResponse:
            stored, created = await self._pricing.put_store(uow, store)
            return pb.PutStoreResponse(store=wire_store(stored), created=created)

        return await self._once(request, pb.PutStoreResponse, effect)

    async def PutItem(self, request: pb.PutItemRequest, context: Any) -> pb.PutItemResponse:
        """Create or change a catalogue item."""
        given = request.item
        item = Item.create(
            sku=given.sku,
            name=given.name,
            category=given.category,
            barcode=given.barcode,
            unit=wire.from_wire(pb.Unit, "UNIT", given.unit) or "",
            cost_fen=map_money(given.cost, "cost"),
            supplier_id=given.supplier_id,
            store_ids=list(given.store_ids),
            active=given.active,
        )
        _check_actor_headquarters(request.actor)

        async def effect(uow: UnitOfWork) -> pb.PutItemResponse:
            stored, created = await self._pricing.put_item(uow, item)
            return pb.PutItemResponse(item=wire_item(stored), created=created)

        return await self._once(request, pb.PutItemResponse, effect)

    async def ListItems(self, request: pb.ListItemsRequest, context: Any) -> pb.ListItemsResponse:
        """A page of the catalogue."""
        limit = _page_size(request.page, 100, 1000)
        if request.since_version < 0:
            raise InvalidArgument("since_version is never negative", details={"field": "since_version"})
        items = await self._pricing.list_items(
            after_sku=decode_token(request.page.page_token),
            limit=limit + 1,
            store_id=request.store_id,
            supplier_id=request.supplier_id,
            since_version=request.since_version,
        )
        token = encode_token(items[limit - 1].item.sku) if len(items) > limit else ""
        return pb.ListItemsResponse(
            items=[wire_item(item) for item in items[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def SetPrices(self, request: pb.SetPricesRequest, context: Any) -> pb.SetPricesResponse:
        """Replace a SKU's rules."""
        currency = validate_currency(request.currency_code or "CNY", field="currency_code")
        if not request.HasField("base_price"):
            raise InvalidArgument(
                "base_price is required", reason="base-price-missing", details={"field": "base_price"}
            )
        command = SetPrices(
            sku=request.sku,
            currency=currency,
            base_price_fen=map_money(request.base_price, "base_price", currency),
            overrides=[map_override(o, i, currency) for i, o in enumerate(request.overrides)],
            promotions=[map_promotion(p, i, currency) for i, p in enumerate(request.promotions)],
            override_reason=request.guard_rail_override.reason if request.HasField("guard_rail_override") else "",
        )
        _check_actor_headquarters(request.actor)
        actor = map_actor(request.actor)

        async def effect(uow: UnitOfWork) -> pb.SetPricesResponse:
            rules = await self._pricing.set_prices(uow, command, actor)
            return pb.SetPricesResponse(prices=wire_prices(command.sku, rules))

        return await self._once(request, pb.SetPricesResponse, effect)

    async def GetPrices(self, request: pb.GetPricesRequest, context: Any) -> pb.GetPricesResponse:
        """A SKU's rules."""
        return pb.GetPricesResponse(prices=wire_prices(request.sku, await self._pricing.get_prices(request.sku)))

    async def SchedulePriceChange(
        self, request: pb.SchedulePriceChangeRequest, context: Any
    ) -> pb.SchedulePriceChangeResponse:
        """Schedule a regular price for a future moment."""
        effective_at = wire.moment_of(request, "effective_at")
        if effective_at is None:
            raise InvalidArgument(
                "effective_at is required", reason="effective-at-missing", details={"field": "effective_at"}
            )
        if not request.HasField("price"):
            raise InvalidArgument("price is required", reason="price-missing", details={"field": "price"})
        command = ScheduleChange(
            sku=request.sku,
            price_fen=map_money(request.price, "price"),
            effective_at=effective_at,
            store_ids=tuple(request.store_ids),
            channel=wire.channel_of(request.channel),
            override_reason=request.guard_rail_override.reason if request.HasField("guard_rail_override") else "",
        )
        actor = map_actor(request.actor)

        async def effect(uow: UnitOfWork) -> pb.SchedulePriceChangeResponse:
            change = await self._pricing.schedule_change(uow, command, actor)
            return pb.SchedulePriceChangeResponse(change=wire_change(change))

        return await self._once(request, pb.SchedulePriceChangeResponse, effect)

    async def ListPriceChanges(self, request: pb.ListPriceChangesRequest, context: Any) -> pb.ListPriceChangesResponse:
        """Changes, newest effective first."""
        limit = _page_size(request.page, 100, 500)
        offset_text = decode_token(request.page.page_token)
        offset = int(offset_text) if offset_text.isdigit() else 0
        changes = await self._pricing.list_changes(request.sku, offset, limit + 1)
        token = encode_token(str(offset + limit)) if len(changes) > limit else ""
        return pb.ListPriceChangesResponse(
            changes=[wire_change(change) for change in changes[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def GetEffectivePrice(
        self, request: pb.GetEffectivePriceRequest, context: Any
    ) -> pb.GetEffectivePriceResponse:
        """One SKU's price in one context."""
        [price] = await self._pricing.effective_prices(map_question(request.question), [(request.sku, Decimal(1))])
        return pb.GetEffectivePriceResponse(price=wire_effective(price, request.sku))

    async def PriceBasket(self, request: pb.PriceBasketRequest, context: Any) -> pb.PriceBasketResponse:
        """Every line of a basket."""
        lines = [
            (line.sku, map_quantity(line.quantity, f"lines[{i}].quantity")) for i, line in enumerate(request.lines)
        ]
        prices = await self._pricing.effective_prices(map_question(request.question), lines)
        currency = prices[0].currency
        return pb.PriceBasketResponse(
            lines=[wire_effective(price, sku) for price, (sku, _) in zip(prices, lines, strict=True)],
            total=wire.money(sum(price.line_total_fen for price in prices), currency),
            regular_total=wire.money(sum(price.regular_line_total_fen for price in prices), currency),
        )

    async def GetPriceBook(self, request: pb.GetPriceBookRequest, context: Any) -> pb.GetPriceBookResponse:
        """A store's book, or what changed in it since a version."""
        limit = _page_size(request.page, 1000, 5000)
        page = await self._pricing.price_book(
            request.store_id,
            since_version=request.since_version,
            known_version=request.known_version,
            after_sku=decode_token(request.page.page_token),
            limit=limit,
        )
        response = pb.GetPriceBookResponse(
            store_id=page.store_id,
            version=page.version,
            not_modified=page.not_modified,
            delta=page.delta,
            page=paging_pb2.PageInfo(next_page_token=encode_token(page.next_sku)),
        )
        for row in page.rows:
            entry = response.entries.add()
            if row.removed:
                entry.sku = row.sku
                entry.removed = True
            else:
                entry.MergeFromString(row.entry)
            entry.version = row.version
        return response

    async def GetStoreVersions(self, request: pb.GetStoreVersionsRequest, context: Any) -> pb.GetStoreVersionsResponse:
        """The versions of a store's price book and catalogue, for its terminals' start-up check."""
        versions = await self._pricing.store_versions(request.store_id)
        return pb.GetStoreVersionsResponse(
            store_id=versions.store_id,
            price_book_version=versions.price_book_version,
            catalogue_version=versions.catalogue_version,
        )

    async def PutLabel(self, request: pb.PutLabelRequest, context: Any) -> pb.PutLabelResponse:
        """Link a label to a SKU of its store."""
        _check_store_actor(request.actor, request.store_id)

        async def effect(uow: UnitOfWork) -> pb.PutLabelResponse:
            label, created = await self._labels.put_label(
                uow, request.store_id, request.label_id, request.sku, request.template
            )
            return pb.PutLabelResponse(label=wire_label(label), created=created)

        return await self._once(request, pb.PutLabelResponse, effect)

    async def ListLabels(self, request: pb.ListLabelsRequest, context: Any) -> pb.ListLabelsResponse:
        """A page of a store's labels."""
        limit = _page_size(request.page, 100, 1000)
        state = wire.from_wire(pb.LabelSyncState, "LABEL_SYNC_STATE", request.state)
        labels = await self._labels.list_labels(
            request.store_id, state, decode_token(request.page.page_token), limit + 1
        )
        token = encode_token(labels[limit - 1].label_id) if len(labels) > limit else ""
        return pb.ListLabelsResponse(
            labels=[wire_label(label) for label in labels[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def ListLabelMismatches(
        self, request: pb.ListLabelMismatchesRequest, context: Any
    ) -> pb.ListLabelMismatchesResponse:
        """The parity audit of a store."""
        limit = _page_size(request.page, 100, 1000)
        audit = await self._labels.audit(request.store_id, decode_token(request.page.page_token), limit)
        response = pb.ListLabelMismatchesResponse(
            label_count=audit.label_count,
            mismatch_count=audit.mismatch_count,
            deadline_seconds=audit.deadline_seconds,
            page=paging_pb2.PageInfo(next_page_token=encode_token(audit.next_label)),
        )
        response.mismatch_rate.value = format(audit.mismatch_rate.normalize(), "f")
        for mismatch in audit.mismatches:
            item = response.mismatches.add(
                label=wire_label(mismatch.label),
                reason=wire.to_wire(pb.MismatchReason, "MISMATCH_REASON", mismatch.reason),
            )
            if mismatch.pos_price_fen is not None:
                currency = mismatch.label.desired.currency if mismatch.label.desired else "CNY"
                item.pos_price.CopyFrom(wire.money(mismatch.pos_price_fen, currency))
        return response

    async def ListMarkdownSuggestions(
        self, request: pb.ListMarkdownSuggestionsRequest, context: Any
    ) -> pb.ListMarkdownSuggestionsResponse:
        """A page of a store's markdown suggestions."""
        limit = _page_size(request.page, 100, 500)
        state = wire.from_wire(pb.MarkdownState, "MARKDOWN_STATE", request.state) or "open"
        rows = await self._markdowns.list(request.store_id, state, decode_token(request.page.page_token), limit + 1)
        token = encode_token(rows[limit - 1].sku) if len(rows) > limit else ""
        return pb.ListMarkdownSuggestionsResponse(
            suggestions=[wire_markdown(row) for row in rows[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def DecideMarkdown(self, request: pb.DecideMarkdownRequest, context: Any) -> pb.DecideMarkdownResponse:
        """Approve (schedule) or reject a markdown."""
        actor = map_actor(request.actor)
        effective_at = wire.moment_of(request, "effective_at")

        async def effect(uow: UnitOfWork) -> pb.DecideMarkdownResponse:
            row, change = await self._markdowns.decide(uow, request.markdown_id, request.approve, effective_at, actor)
            response = pb.DecideMarkdownResponse(suggestion=wire_markdown(row))
            if change is not None:
                response.change.CopyFrom(wire_change(change))
            return response

        return await self._once(request, pb.DecideMarkdownResponse, effect)


def _check_actor_headquarters(actor: identifiers_pb2.Actor) -> None:
    if not map_actor(actor).headquarters:
        raise PermissionDenied("only headquarters staff change stores, the catalogue and price rules")


def _check_store_actor(actor: identifiers_pb2.Actor, store_id: str) -> None:
    mapped = map_actor(actor)
    if not mapped.headquarters and mapped.store_id != store_id:
        raise PermissionDenied(f"staff of another store may not change labels of store {store_id}")


def register(servicer: PricingServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_PricingServiceServicer_to_server(servicer, server)

    return add
