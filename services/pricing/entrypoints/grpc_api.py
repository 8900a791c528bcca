"""gRPC face of the pricing service: maps the contract to commands and answers, nothing more."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from retail.common.v1 import paging_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from servicekit.errors import DomainError, InvalidArgument
from servicekit.grpc_server import refusal_of
from servicekit.idempotency import fingerprint, message_codec
from servicekit.paging import page_key, page_token
from services.pricing.domain.commands import Question
from services.pricing.entrypoints.wire import (
    map_actor,
    map_basket,
    map_basket_prices,
    map_change,
    map_decide_markdown,
    map_decide_markdown_response,
    map_decimal,
    map_effective_price,
    map_enum,
    map_item,
    map_label,
    map_markdown,
    map_mismatch_reason,
    map_money,
    map_page_size,
    map_prices,
    map_put_item,
    map_put_item_response,
    map_put_label,
    map_put_label_response,
    map_put_store,
    map_put_store_response,
    map_question,
    map_schedule_change,
    map_schedule_change_response,
    map_set_prices,
    map_set_prices_response,
)
from services.pricing.service_layer.handlers import Answer, PricingHandlers
from services.pricing.service_layer.labels import LabelSync
from services.pricing.service_layer.markdowns import Markdowns
from services.pricing.service_layer.pricing import Pricing

# Baskets one PriceBaskets call may carry (the gateway sends at most its batch size).
MAX_BASKETS_AT_ONCE = 500
ResultT = TypeVar("ResultT")
ResponseT = TypeVar("ResponseT", bound=Message)


def _answer(
    request: Any, response_type: type[ResponseT], make: Callable[[ResultT], ResponseT]
) -> Answer[ResultT, ResponseT]:
    """How a handler answers this request once: its fingerprint, its response mapping, and the
    response kept as its deterministic bytes (a retry gets the very bytes of the first answer)."""
    return Answer(fingerprint(request), make, message_codec(response_type, _same, _same))


def _same(response: ResponseT) -> ResponseT:
    return response


class PricingServicer(pb_grpc.PricingServiceServicer):
    """gRPC face of the pricing service."""

    def __init__(self, handlers: PricingHandlers, pricing: Pricing, labels: LabelSync, markdowns: Markdowns) -> None:
        self._handlers = handlers
        self._pricing = pricing
        self._labels = labels
        self._markdowns = markdowns

    async def PutStore(self, request: pb.PutStoreRequest, context: Any) -> pb.PutStoreResponse:
        """Register or change a store."""
        return await self._handlers.put_store(
            map_put_store(request),
            map_actor(request.actor),
            _answer(request, pb.PutStoreResponse, map_put_store_response),
        )

    async def PutItem(self, request: pb.PutItemRequest, context: Any) -> pb.PutItemResponse:
        """Create or change a catalogue item."""
        return await self._handlers.put_item(
            map_put_item(request), map_actor(request.actor), _answer(request, pb.PutItemResponse, map_put_item_response)
        )

    async def ListItems(self, request: pb.ListItemsRequest, context: Any) -> pb.ListItemsResponse:
        """A page of the catalogue."""
        limit = map_page_size(request.page, 100, 1000)
        if request.since_version < 0:
            raise InvalidArgument("since_version is never negative", details={"field": "since_version"})
        items = await self._pricing.list_items(
            after_sku=page_key(request.page.page_token),
            limit=limit + 1,
            store_id=request.store_id,
            supplier_id=request.supplier_id,
            since_version=request.since_version,
        )
        token = page_token(items[limit - 1].item.sku) if len(items) > limit else ""
        return pb.ListItemsResponse(
            items=[map_item(item) for item in items[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def SetPrices(self, request: pb.SetPricesRequest, context: Any) -> pb.SetPricesResponse:
        """Replace a SKU's rules."""
        command = map_set_prices(request)
        return await self._handlers.set_prices(
            command,
            map_actor(request.actor),
            _answer(request, pb.SetPricesResponse, map_set_prices_response(command.sku)),
        )

    async def GetPrices(self, request: pb.GetPricesRequest, context: Any) -> pb.GetPricesResponse:
        """A SKU's rules."""
        return pb.GetPricesResponse(prices=map_prices(request.sku, await self._pricing.get_prices(request.sku)))

    async def SchedulePriceChange(
        self, request: pb.SchedulePriceChangeRequest, context: Any
    ) -> pb.SchedulePriceChangeResponse:
        """Schedule a regular price for a future moment."""
        return await self._handlers.schedule_change(
            map_schedule_change(request),
            map_actor(request.actor),
            _answer(request, pb.SchedulePriceChangeResponse, map_schedule_change_response),
        )

    async def ListPriceChanges(self, request: pb.ListPriceChangesRequest, context: Any) -> pb.ListPriceChangesResponse:
        """Changes, newest effective first."""
        limit = map_page_size(request.page, 100, 500)
        offset_text = page_key(request.page.page_token)
        offset = int(offset_text) if offset_text.isdigit() else 0
        changes = await self._pricing.list_changes(request.sku, offset, limit + 1)
        token = page_token(str(offset + limit)) if len(changes) > limit else ""
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

    async def PriceBaskets(self, request: pb.PriceBasketsRequest, context: Any) -> pb.PriceBasketsResponse:
        """Several baskets in one call (the gateway's coalesced ones): each as PriceBasket alone."""
        if len(request.baskets) > MAX_BASKETS_AT_ONCE:
            raise InvalidArgument(f"at most {MAX_BASKETS_AT_ONCE} baskets at once", details={"field": "baskets"})
        response = pb.PriceBasketsResponse()
        asked: list[tuple[pb.BasketOutcome, Question, list[tuple[str, Decimal]]]] = []
        for basket in request.baskets:
            outcome = response.outcomes.add()
            try:
                lines = map_basket(basket)
                asked.append((outcome, map_question(basket.question), lines))
            except DomainError as refused:  # this basket alone is refused: the others of its batch are answered
                outcome.refusal.CopyFrom(refusal_of(refused))
        # One read for the baskets asked about now; a fault (the database unreachable) fails the whole call.
        answers = await self._pricing.effective_prices_many([(question, lines) for _, question, lines in asked])
        for (outcome, _, lines), answer in zip(asked, answers, strict=True):
            if isinstance(answer, DomainError):
                outcome.refusal.CopyFrom(refusal_of(answer))
            else:
                map_basket_prices(answer, lines, outcome.basket)
        return response

    async def GetPriceBook(self, request: pb.GetPriceBookRequest, context: Any) -> pb.GetPriceBookResponse:
        """A store's book, or what changed in it since a version."""
        limit = map_page_size(request.page, 1000, 5000)
        page = await self._pricing.price_book(
            request.store_id,
            since_version=request.since_version,
            known_version=request.known_version,
            after_sku=page_key(request.page.page_token),
            limit=limit,
        )
        response = pb.GetPriceBookResponse(
            store_id=page.store_id,
            version=page.version,
            not_modified=page.not_modified,
            delta=page.delta,
            page=paging_pb2.PageInfo(next_page_token=page_token(page.next_sku)),
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
        return await self._handlers.put_label(
            map_put_label(request),
            map_actor(request.actor),
            _answer(request, pb.PutLabelResponse, map_put_label_response),
        )

    async def ListLabels(self, request: pb.ListLabelsRequest, context: Any) -> pb.ListLabelsResponse:
        """A page of a store's labels."""
        limit = map_page_size(request.page, 100, 1000)
        state = map_enum(pb.LabelSyncState, "LABEL_SYNC_STATE", request.state)
        labels = await self._labels.list_labels(request.store_id, state, page_key(request.page.page_token), limit + 1)
        token = page_token(labels[limit - 1].label_id) if len(labels) > limit else ""
        return pb.ListLabelsResponse(
            labels=[map_label(label) for label in labels[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def ListLabelMismatches(
        self, request: pb.ListLabelMismatchesRequest, context: Any
    ) -> pb.ListLabelMismatchesResponse:
        """The parity audit of a store."""
        limit = map_page_size(request.page, 100, 1000)
        audit = await self._labels.audit(request.store_id, page_key(request.page.page_token), limit)
        response = pb.ListLabelMismatchesResponse(
            label_count=audit.label_count,
            mismatch_count=audit.mismatch_count,
            deadline_seconds=audit.deadline_seconds,
            page=paging_pb2.PageInfo(next_page_token=page_token(audit.next_label)),
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
        rows = await self._markdowns.list(request.store_id, state, page_key(request.page.page_token), limit + 1)
        token = page_token(rows[limit - 1].sku) if len(rows) > limit else ""
        return pb.ListMarkdownSuggestionsResponse(
            suggestions=[map_markdown(row) for row in rows[:limit]], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def DecideMarkdown(self, request: pb.DecideMarkdownRequest, context: Any) -> pb.DecideMarkdownResponse:
        """Approve (schedule) or reject a markdown."""
        actor = map_actor(request.actor)
        return await self._handlers.decide_markdown(
            map_decide_markdown(request),
            actor,
            _answer(request, pb.DecideMarkdownResponse, map_decide_markdown_response),
        )


def register(servicer: PricingServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_PricingServiceServicer_to_server(servicer, server)

    return add
