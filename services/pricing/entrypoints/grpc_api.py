"""gRPC face of the pricing service: maps the contract to commands and answers, nothing more."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from retail.common.v1 import identifiers_pb2, paging_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.idempotency import run_request_once
from services.pricing.entrypoints.wire import (
    map_actor,
    map_basket,
    map_basket_prices,
    map_change,
    map_decimal,
    map_effective_price,
    map_enum,
    map_item,
    map_item_of,
    map_label,
    map_markdown,
    map_mismatch_reason,
    map_moment,
    map_money,
    map_page_size,
    map_prices,
    map_question,
    map_schedule_change,
    map_set_prices,
    map_store,
    map_store_row,
)
from services.pricing.service_layer.labels import LabelSync
from services.pricing.service_layer.markdowns import Markdowns
from services.pricing.service_layer.pricing import Pricing

ResponseT = TypeVar("ResponseT", bound=Message)
Clock = Callable[[], datetime]


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
        store = map_store_row(request.store)
        _check_actor_headquarters(request.actor)

        async def effect(uow: UnitOfWork) -> pb.PutStoreResponse:
            stored, created = await self._pricing.put_store(uow, store)
            return pb.PutStoreResponse(store=map_store(stored), created=created)

        return await self._once(request, pb.PutStoreResponse, effect)

    async def PutItem(self, request: pb.PutItemRequest, context: Any) -> pb.PutItemResponse:
        """Create or change a catalogue item."""
        item = map_item_of(request.item)
        _check_actor_headquarters(request.actor)

        async def effect(uow: UnitOfWork) -> pb.PutItemResponse:
            stored, created = await self._pricing.put_item(uow, item)
            return pb.PutItemResponse(item=map_item(stored), created=created)

        return await self._once(request, pb.PutItemResponse, effect)

    async def ListItems(self, request: pb.ListItemsRequest, context: Any) -> pb.ListItemsResponse:
        """A page of the catalogue."""
        limit = map_page_size(request.page, 100, 1000)
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
            items=[map_item(item) for item in items[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def SetPrices(self, request: pb.SetPricesRequest, context: Any) -> pb.SetPricesResponse:
        """Replace a SKU's rules."""
        command = map_set_prices(request)
        _check_actor_headquarters(request.actor)
        actor = map_actor(request.actor)

        async def effect(uow: UnitOfWork) -> pb.SetPricesResponse:
            rules = await self._pricing.set_prices(uow, command, actor)
            return pb.SetPricesResponse(prices=map_prices(command.sku, rules))

        return await self._once(request, pb.SetPricesResponse, effect)

    async def GetPrices(self, request: pb.GetPricesRequest, context: Any) -> pb.GetPricesResponse:
        """A SKU's rules."""
        return pb.GetPricesResponse(prices=map_prices(request.sku, await self._pricing.get_prices(request.sku)))

    async def SchedulePriceChange(
        self, request: pb.SchedulePriceChangeRequest, context: Any
    ) -> pb.SchedulePriceChangeResponse:
        """Schedule a regular price for a future moment."""
        command = map_schedule_change(request)
        actor = map_actor(request.actor)

        async def effect(uow: UnitOfWork) -> pb.SchedulePriceChangeResponse:
            change = await self._pricing.schedule_change(uow, command, actor)
            return pb.SchedulePriceChangeResponse(change=map_change(change))

        return await self._once(request, pb.SchedulePriceChangeResponse, effect)

    async def ListPriceChanges(self, request: pb.ListPriceChangesRequest, context: Any) -> pb.ListPriceChangesResponse:
        """Changes, newest effective first."""
        limit = map_page_size(request.page, 100, 500)
        offset_text = decode_token(request.page.page_token)
        offset = int(offset_text) if offset_text.isdigit() else 0
        changes = await self._pricing.list_changes(request.sku, offset, limit + 1)
        token = encode_token(str(offset + limit)) if len(changes) > limit else ""
        return pb.ListPriceChangesResponse(
            changes=[map_change(change) for change in changes[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def GetEffectivePrice(
        self, request: pb.GetEffectivePriceRequest, context: Any
    ) -> pb.GetEffectivePriceResponse:
        """One SKU's price in one context."""
        [price] = await self._pricing.effective_prices(map_question(request.question), [(request.sku, Decimal(1))])
        return pb.GetEffectivePriceResponse(price=map_effective_price(price, request.sku))

    async def PriceBasket(self, request: pb.PriceBasketRequest, context: Any) -> pb.PriceBasketResponse:
        """Every line of a basket."""
        lines = map_basket(request)
        prices = await self._pricing.effective_prices(map_question(request.question), lines)
        return map_basket_prices(prices, lines)

    async def GetPriceBook(self, request: pb.GetPriceBookRequest, context: Any) -> pb.GetPriceBookResponse:
        """A store's book, or what changed in it since a version."""
        limit = map_page_size(request.page, 1000, 5000)
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
            return pb.PutLabelResponse(label=map_label(label), created=created)

        return await self._once(request, pb.PutLabelResponse, effect)

    async def ListLabels(self, request: pb.ListLabelsRequest, context: Any) -> pb.ListLabelsResponse:
        """A page of a store's labels."""
        limit = map_page_size(request.page, 100, 1000)
        state = map_enum(pb.LabelSyncState, "LABEL_SYNC_STATE", request.state)
        labels = await self._labels.list_labels(
            request.store_id, state, decode_token(request.page.page_token), limit + 1
        )
        token = encode_token(labels[limit - 1].label_id) if len(labels) > limit else ""
        return pb.ListLabelsResponse(
            labels=[map_label(label) for label in labels[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def ListLabelMismatches(
        self, request: pb.ListLabelMismatchesRequest, context: Any
    ) -> pb.ListLabelMismatchesResponse:
        """The parity audit of a store."""
        limit = map_page_size(request.page, 100, 1000)
        audit = await self._labels.audit(request.store_id, decode_token(request.page.page_token), limit)
        response = pb.ListLabelMismatchesResponse(
            label_count=audit.label_count,
            mismatch_count=audit.mismatch_count,
            deadline_seconds=audit.deadline_seconds,
            page=paging_pb2.PageInfo(next_page_token=encode_token(audit.next_label)),
        )
        response.mismatch_rate.CopyFrom(map_decimal(audit.mismatch_rate))
        for mismatch in audit.mismatches:
            item = response.mismatches.add(
                label=map_label(mismatch.label),
                reason=map_mismatch_reason(mismatch.reason),
            )
            if mismatch.pos_price_fen is not None:
                currency = mismatch.label.desired.currency if mismatch.label.desired else "CNY"
                item.pos_price.CopyFrom(map_money(mismatch.pos_price_fen, currency))
        return response

    async def ListMarkdownSuggestions(
        self, request: pb.ListMarkdownSuggestionsRequest, context: Any
    ) -> pb.ListMarkdownSuggestionsResponse:
        """A page of a store's markdown suggestions."""
        limit = map_page_size(request.page, 100, 500)
        state = map_enum(pb.MarkdownState, "MARKDOWN_STATE", request.state) or "open"
        rows = await self._markdowns.list(request.store_id, state, decode_token(request.page.page_token), limit + 1)
        token = encode_token(rows[limit - 1].sku) if len(rows) > limit else ""
        return pb.ListMarkdownSuggestionsResponse(
            suggestions=[map_markdown(row) for row in rows[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def DecideMarkdown(self, request: pb.DecideMarkdownRequest, context: Any) -> pb.DecideMarkdownResponse:
        """Approve (schedule) or reject a markdown."""
        actor = map_actor(request.actor)
        effective_at = map_moment(request, "effective_at")

        async def effect(uow: UnitOfWork) -> pb.DecideMarkdownResponse:
            row, change = await self._markdowns.decide(uow, request.markdown_id, request.approve, effective_at, actor)
            response = pb.DecideMarkdownResponse(suggestion=map_markdown(row))
            if change is not None:
                response.change.CopyFrom(map_change(change))
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
