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

from typing import Annotated

from fastapi import Depends, Query, Response
from pydantic import AwareDatetime
from retail.pricing.v1 import pricing_service_pb2 as pb

from gateway.domain.clients import ClientKind, StaffRole
from gateway.domain.scopes import (
    CATALOGUE_READ,
    CATALOGUE_WRITE,
    PRICE_CHANGES_WRITE,
    PRICES_READ,
    PRICES_WRITE,
    STORES_WRITE,
)
from gateway.http import problems
from gateway.http.integer_types import Int64
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, created_status, idempotent
from gateway.members.wire import actor_of
from gateway.pricing.access import BOOK_RESPONSES, created_or_changed, forbidden, price_question_store
from gateway.pricing.schemas import (
    ID_PATTERN,
    QUANTITY_PATTERN,
    BasketIn,
    BasketOut,
    ChannelName,
    EffectivePriceOut,
    ItemIn,
    ItemOut,
    ItemPage,
    PriceChangeIn,
    PriceChangeOut,
    PriceChangePage,
    PricesIn,
    PricesOut,
    Sku,
    StoreId,
    StoreIn,
    StoreOut,
    TierName,
)
from gateway.pricing.wire import (
    basket_json,
    basket_request,
    enum_number,
    guard_rail_override_message,
    map_change,
    map_effective_price,
    map_item,
    map_prices,
    map_store,
    money,
    price_question,
    promotion_message,
    regular_price_message,
)
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from servicekit.protowire import timestamp

router = ContextRouter(prefix="/v1", tags=["pricing"])


@router.put("/stores/{store_id}", responses=created_or_changed(StoreOut, 409), response_model=StoreOut)
async def put_store(
    store_id: StoreId,
    body: StoreIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(STORES_WRITE))],
) -> Response:
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

    return await call.forward(
        lambda: resources.pricing_service.PutStore(message),
        lambda answer: (created_status(answer.created), map_store(answer.store)),
    )


@router.put("/items/{sku}", responses=created_or_changed(ItemOut, 404, 409), response_model=ItemOut)
async def put_item(
    sku: Sku,
    body: ItemIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(CATALOGUE_WRITE))],
) -> Response:
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
            unit=enum_number(pb.Unit, "UNIT", body.unit),
            cost=money(body.cost, body.currency),
            supplier_id=body.supplier_id,
            store_ids=body.store_ids,
            active=body.active,
        ),
    )

    return await call.forward(
        lambda: resources.pricing_service.PutItem(message),
        lambda answer: (created_status(answer.created), map_item(answer.item)),
    )


@router.get("/items")
async def list_items(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(CATALOGUE_READ))],
    page: Paging,
    store_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="only items listed in this store")] = None,
    supplier_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="only this supplier's items")] = None,
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


@router.get("/prices/effective", responses=problems.problem_responses(404, 409))
async def effective_price(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(PRICES_READ))],
    sku: Annotated[str, Query(pattern=ID_PATTERN, description="the SKU")],
    store_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="default: the caller's own store")] = None,
    channel: Annotated[ChannelName | None, Query(description="default: store")] = None,
    tier: Annotated[TierName | None, Query(description="the buyer's member tier; none for a non-member")] = None,
    at: Annotated[AwareDatetime | None, Query(description="RFC 3339 with an offset; default now")] = None,
    quantity: Annotated[str, Query(pattern=QUANTITY_PATTERN, description="units, or kg with 3 decimals")] = "1",
) -> EffectivePriceOut:
    """The price to charge for one SKU in one store, channel, member tier and moment, with the
    winning rule and promotion and why they won.

    Scope `prices:read`. Terminals and store staff ask about their own store only.
    """
    chosen = price_question_store(principal, store_id, "query.store_id")
    question = price_question(principal, chosen, channel, tier, at)
    answer = await resources.pricing_service.GetEffectivePrice(pb.GetEffectivePriceRequest(sku=sku, question=question))
    # The question carries no quantity: the line total of more than one unit is the basket's.
    if quantity == "1":
        return map_effective_price(answer.price)
    basket = await resources.pricing_service.PriceBasket(basket_request(question, [(sku, quantity)]))
    return map_effective_price(basket.lines[0])


@router.post("/prices/effective/basket", responses=problems.problem_responses(404, 409), response_model=BasketOut)
async def price_basket(
    body: BasketIn, resources: Resources, principal: Annotated[Principal, Depends(require(PRICES_READ))]
) -> Response:
    """Every line of a basket priced in one context (multi-buys count across the quantity), with
    the total and what it would cost at regular prices.

    Scope `prices:read`; a read, so no `Idempotency-Key`. Terminals and store staff price in
    their own store only.
    """
    chosen = price_question_store(principal, body.store_id, "body.store_id")
    # Concurrent baskets go to the pricing service together (gateway.adapters.coalesced_calls).
    question = price_question(principal, chosen, body.channel, body.tier, body.at)
    answer = await resources.basket_prices(basket_request(question, ((line.sku, line.quantity) for line in body.lines)))
    # The answer is the pricing service's, trusted: written as BasketOut's JSON without the models.
    return Response(basket_json(answer), media_type="application/json")


@router.put("/prices/{sku}", responses=problems.problem_responses(404, 409), response_model=PricesOut)
async def set_prices(
    sku: Sku,
    body: PricesIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PRICES_WRITE))],
) -> Response:
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
        guard_rail_override=guard_rail_override_message(body.guard_rail_override),
        actor=actor_of(call.principal),
    )

    return await call.forward(
        lambda: resources.pricing_service.SetPrices(message), lambda answer: (200, map_prices(answer.prices))
    )


@router.get("/prices/{sku}", responses=problems.problem_responses(404))
async def get_prices(
    sku: Sku, resources: Resources, principal: Annotated[Principal, Depends(require(PRICES_READ))]
) -> PricesOut:
    """A SKU's current rules: base price, overrides and promotions. Scope `prices:read`."""
    answer = await resources.pricing_service.GetPrices(pb.GetPricesRequest(sku=sku))
    return map_prices(answer.prices)


@router.post(
    "/price-changes", status_code=201, responses=problems.problem_responses(404, 409), response_model=PriceChangeOut
)
async def schedule_price_change(
    body: PriceChangeIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PRICE_CHANGES_WRITE))],
) -> Response:
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
        channel=enum_number(pb.Channel, "CHANNEL", body.channel),
        guard_rail_override=guard_rail_override_message(body.guard_rail_override),
        actor=actor_of(principal),
    )

    return await call.forward(
        lambda: resources.pricing_service.SchedulePriceChange(message), lambda answer: (201, map_change(answer.change))
    )


@router.get("/price-changes")
async def list_price_changes(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(PRICES_READ))],
    page: Paging,
    sku: Annotated[str | None, Query(pattern=ID_PATTERN, description="only this SKU's changes")] = None,
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


BOOK_RESPONSES[304] = {"description": "Not modified: the book of the ETag sent is current (no body)"}
