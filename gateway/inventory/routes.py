"""Inventory: locations, stock, reservations for online orders, transfers, counts, history.

Every route checks its scope and the caller's ownership of what it touches: a store's
terminals and staff see and change only their own store; reservations belong to the
client that placed them. Mutations take an ``Idempotency-Key`` that travels to the
inventory service as the gRPC ``request_id``, so the effect and the stored answer commit
together there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Response
from retail.inventory.v1 import inventory_service_pb2 as pb

from gateway.domain.clients import ClientKind
from gateway.domain.scopes import (
    REPLENISHMENT_READ,
    RESERVATIONS_WRITE,
    SALES_HISTORY_WRITE,
    STOCK_COUNTS_WRITE,
    STOCK_READ,
    TRANSFERS_WRITE,
)
from gateway.http import problems
from gateway.http.paging import Paging
from gateway.http.resources import GatewayResources, Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.inventory.schemas import (
    Location,
    LocationId,
    LocationStockPage,
    OutOfStockProblem,
    ReceiveIn,
    ReservationIn,
    ReservationOut,
    SalesHistoryIn,
    SalesHistoryOut,
    Sku,
    SkuAvailability,
    StockCountIn,
    StockCountOut,
    TransferIn,
    TransferOut,
    TransferPageOut,
    TransferStatusName,
)
from gateway.inventory.wire import (
    TRANSFER_STATUS_NUMBERS,
    map_level,
    map_reservation,
    map_transfer,
    map_transfer_listing,
    quantity,
)
from gateway.security.authentication import Principal
from gateway.security.authorisation import require

router = ContextRouter(prefix="/v1", tags=["inventory"])


_KINDS = {pb.LOCATION_KIND_STORE: "store", pb.LOCATION_KIND_WAREHOUSE: "warehouse", pb.LOCATION_KIND_ONLINE: "online"}


def owner_of(principal: Principal) -> str:
    """Headquarters staff may act on any reservation; every other client only on its own."""
    return "" if principal.is_headquarters else principal.client_id


@router.get("/locations")
async def list_locations(
    resources: Resources, principal: Annotated[Principal, Depends(require(STOCK_READ))]
) -> list[Location]:
    """Every active location: stores, warehouses and online locations, with the channels each serves.

    Scope `stock:read`.
    """
    answer = await resources.inventory_service.ListLocations(pb.ListLocationsRequest())
    return [
        Location(
            location_id=loc.location_id,
            name=loc.name,
            kind=_KINDS.get(loc.kind, "unknown"),
            city=loc.city,
            channels=list(loc.channels),
        )
        for loc in answer.locations
        if principal.may_touch_store(loc.location_id) or loc.kind != pb.LOCATION_KIND_STORE
    ]


@router.get("/stock/{sku}", responses=problems.problem_responses(404))
async def sku_availability(
    sku: Sku, resources: Resources, principal: Annotated[Principal, Depends(require(STOCK_READ))]
) -> SkuAvailability:
    """One SKU's stock at every location (store-bound clients see their own store only), with the total.

    Scope `stock:read`.
    """
    answer = await resources.inventory_service.GetSkuAvailability(pb.GetSkuAvailabilityRequest(sku=sku))
    if principal.kind is ClientKind.SUPPLIER_USER:
        # A supplier sees its own SKUs everywhere; another supplier's SKU does not exist for it.
        if answer.supplier_id != principal.supplier_id:
            raise problems.ProblemError(problems.NOT_FOUND, f"SKU {sku} does not exist")
        levels = [map_level(level) for level in answer.levels]
        return SkuAvailability(
            sku=answer.sku, total_available_to_promise=answer.total_available_to_promise.value, levels=levels
        )
    levels = [map_level(level) for level in answer.levels if principal.may_touch_store(level.location_id)]
    total = (
        answer.total_available_to_promise.value
        if principal.store_id is None
        else (levels[0].available_to_promise if levels else "0")
    )
    return SkuAvailability(sku=answer.sku, total_available_to_promise=total, levels=levels)


@router.get("/locations/{location_id}/stock", responses=problems.problem_responses(404))
async def location_stock(
    location_id: LocationId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(STOCK_READ))],
    page: Paging,
) -> LocationStockPage:
    """A page of one location's stock levels, by SKU. Scope `stock:read`; store-bound clients: own store only."""
    principal.ensure_store(location_id)
    answer = await resources.inventory_service.ListLocationStock(
        pb.ListLocationStockRequest(location_id=location_id, page=page.request())
    )
    return LocationStockPage(
        levels=[map_level(level) for level in answer.levels],
        next_page_token=page.next_token(answer.page_info.next_page_token),
    )


@router.post(
    "/reservations",
    status_code=201,
    responses=problems.problem_responses(404) | problems.problem_responses(409, model=OutOfStockProblem),
    response_model=ReservationOut,
)
async def reserve_stock(
    body: ReservationIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(RESERVATIONS_WRITE))],
) -> Response:
    """Hold stock for an online order until it is paid, released or expires.

    Scope `reservations:write`; `Idempotency-Key` required. Never oversells: when there is
    not enough, the answer is `409` with type `out-of-stock`, how much is `available`, and
    for a channel where its stock is (`draws_from`) and which stock it may not promise
    (`not_promisable`, e.g. the warehouse's).
    """
    if body.location_id:
        call.principal.ensure_store(body.location_id)

    message = pb.ReserveStockRequest(
        request_id=call.request_id,
        sku=body.sku,
        quantity=quantity(body.quantity),
        location_id=body.location_id or "",
        channel=body.channel or "",
        ttl_seconds=body.ttl_seconds or 0,
        allow_split=body.allow_split,
        owner=call.principal.client_id,
    )
    return await call.forward(
        lambda: resources.stock_reservations(message),  # coalesced with concurrent reservations
        lambda reservation: (201, map_reservation(reservation)),
    )


@router.post(
    "/reservations/{reservation_id}/commit",
    responses=problems.problem_responses(404, 409),
    response_model=ReservationOut,
)
async def commit_reservation(
    reservation_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(RESERVATIONS_WRITE))],
) -> Response:
    """Mark a reservation as paid (it stops expiring); the sale journaled with its id sells the units.

    Scope `reservations:write`; only the client that placed it. `Idempotency-Key` required.
    """

    message = pb.CommitReservationRequest(
        request_id=call.request_id, reservation_id=reservation_id, owner=owner_of(call.principal)
    )
    return await _step(resources, call, "CommitReservation", message, _reservation_of)


@router.post(
    "/reservations/{reservation_id}/release",
    responses=problems.problem_responses(404, 409),
    response_model=ReservationOut,
)
async def release_reservation(
    reservation_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(RESERVATIONS_WRITE))],
) -> Response:
    """Give a reservation's units back. Scope `reservations:write`; only its client. `Idempotency-Key` required."""

    message = pb.ReleaseReservationRequest(
        request_id=call.request_id, reservation_id=reservation_id, owner=owner_of(call.principal)
    )
    return await _step(resources, call, "ReleaseReservation", message, _reservation_of)


@router.post("/transfers", status_code=201, responses=problems.problem_responses(404, 409), response_model=TransferOut)
async def request_transfer(
    body: TransferIn, resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(TRANSFERS_WRITE))]
) -> Response:
    """Start an inter-store transfer: the source holds the units.

    Scope `transfers:write`; store staff only from their own store.
    """
    call.principal.ensure_store(body.from_location_id)

    message = pb.RequestTransferRequest(
        request_id=call.request_id,
        sku=body.sku,
        quantity=quantity(body.quantity),
        from_location_id=body.from_location_id,
        to_location_id=body.to_location_id,
    )
    return await call.forward(
        lambda: resources.inventory_service.RequestTransfer(message),
        lambda answer: (201, map_transfer(answer.transfer)),
    )


async def _step(
    resources: GatewayResources, call: IdempotentRequest, rpc: str, message: Any, answer_of: Callable[[Any], Any]
) -> Response:
    """One idempotent call of inventory's ``rpc``; the answer body is ``answer_of(response)``."""
    return await call.forward(
        lambda: getattr(resources.inventory_service, rpc)(message), lambda answer: (200, answer_of(answer))
    )


def _transfer_of(answer: Any) -> dict[str, Any]:
    return map_transfer(answer.transfer)


def _reservation_of(answer: Any) -> dict[str, Any]:
    return map_reservation(answer.reservation)


@router.post(
    "/transfers/{transfer_id}/dispatch", responses=problems.problem_responses(404, 409), response_model=TransferOut
)
async def dispatch_transfer(
    transfer_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(TRANSFERS_WRITE))],
) -> Response:
    """The units left the source and are in transit. Scope `transfers:write`."""
    message = pb.DispatchTransferRequest(request_id=call.request_id, transfer_id=transfer_id)
    return await _step(resources, call, "DispatchTransfer", message, _transfer_of)


@router.post(
    "/transfers/{transfer_id}/receive", responses=problems.problem_responses(404, 409), response_model=TransferOut
)
async def receive_transfer(
    transfer_id: Annotated[str, Path(max_length=64)],
    body: ReceiveIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(TRANSFERS_WRITE))],
) -> Response:
    """Book what arrived; a shortfall is recorded as shrink. Scope `transfers:write`."""
    message = pb.ReceiveTransferRequest(
        request_id=call.request_id, transfer_id=transfer_id, received_quantity=quantity(body.received_quantity)
    )
    return await _step(resources, call, "ReceiveTransfer", message, _transfer_of)


@router.post(
    "/transfers/{transfer_id}/cancel", responses=problems.problem_responses(404, 409), response_model=TransferOut
)
async def cancel_transfer(
    transfer_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(TRANSFERS_WRITE))],
) -> Response:
    """Call a transfer off before dispatch; the source's hold is released. Scope `transfers:write`."""
    message = pb.CancelTransferRequest(request_id=call.request_id, transfer_id=transfer_id)
    return await _step(resources, call, "CancelTransfer", message, _transfer_of)


@router.get("/locations/{location_id}/transfers", responses=problems.problem_responses(404))
async def location_transfers(
    location_id: LocationId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(REPLENISHMENT_READ))],
    page: Paging,
    status: Annotated[
        list[TransferStatusName] | None,
        Query(
            description="only transfers in these statuses (repeat it); `requested` and `dispatched` are the open ones"
        ),
    ] = None,
) -> TransferPageOut:
    """A page of the transfers into or out of a location, newest request first.

    Scope `replenishment:read`; store staff: their own store only (another store's is `403`);
    headquarters: every location. `status` narrows to the statuses named, e.g.
    `?status=requested&status=dispatched` for the open transfers (requested, or in transit).
    """
    principal.ensure_store(location_id)
    answer = await resources.inventory_service.ListTransfers(
        pb.ListTransfersRequest(
            location_id=location_id,
            statuses=[TRANSFER_STATUS_NUMBERS[name] for name in dict.fromkeys(status or [])],
            page=page.request(),
        )
    )
    return TransferPageOut(
        transfers=[map_transfer_listing(listing) for listing in answer.transfers],
        next_page_token=page.next_token(answer.page_info.next_page_token),
    )


@router.post(
    "/locations/{location_id}/stock-counts", responses=problems.problem_responses(404), response_model=StockCountOut
)
async def record_stock_count(
    location_id: LocationId,
    body: StockCountIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(STOCK_COUNTS_WRITE))],
) -> Response:
    """A stock count (盘点): counted quantities become adjustment movements, all or nothing.

    Scope `stock-counts:write`; store staff: their own store only.
    """
    call.principal.ensure_store(location_id)

    message = pb.RecordStockCountRequest(
        request_id=call.request_id,
        location_id=location_id,
        lines=[
            pb.CountLine(sku=line.sku, counted_quantity=quantity(line.counted_quantity), reason=line.reason or "")
            for line in body.lines
        ],
    )
    return await call.forward(
        lambda: resources.inventory_service.RecordStockCount(message),
        lambda answer: (200, StockCountOut(adjusted_levels=answer.adjusted_levels)),
    )


@router.post(
    "/locations/{location_id}/sales-history", responses=problems.problem_responses(404), response_model=SalesHistoryOut
)
async def import_sales_history(
    location_id: LocationId,
    body: SalesHistoryIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(SALES_HISTORY_WRITE))],
) -> Response:
    """Backfill daily sold quantities from a previous system (≤ 10,000 lines; headquarters staff).

    Scope `sales-history:write`. An upsert per SKU, location and date: importing the same
    file twice changes nothing. Feeds forecasts and KPIs; changes no stock.
    """
    if not call.principal.is_headquarters:
        raise problems.ProblemError(problems.FORBIDDEN, "only headquarters staff import sales history")

    message = pb.ImportSalesHistoryRequest(
        request_id=call.request_id,
        location_id=location_id,
        lines=[
            pb.SalesHistoryLine(sku=line.sku, date=line.date.isoformat(), quantity=quantity(line.quantity))
            for line in body.lines
        ],
    )
    return await call.forward(
        lambda: resources.inventory_service.ImportSalesHistory(message, timeout=max(resources.grpc_deadline, 30.0)),
        lambda answer: (200, SalesHistoryOut(imported_lines=answer.imported_lines)),
    )
