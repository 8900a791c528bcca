"""Inventory: locations, stock, reservations for online orders, transfers, counts, history.

Every route checks its scope and the caller's ownership of what it touches: a store's
terminals and staff see and change only their own store; reservations belong to the
client that placed them. Mutations take an ``Idempotency-Key`` that travels to the
inventory service as the gRPC ``request_id``, so the effect and the stored answer commit
together there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from retail.common.v1 import money_pb2, paging_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

from gateway import problems
from gateway.authentication import Principal
from gateway.domain.clients import ClientKind
from gateway.domain.scopes import (
    RESERVATIONS_WRITE,
    SALES_HISTORY_WRITE,
    STOCK_COUNTS_WRITE,
    STOCK_READ,
    TRANSFERS_WRITE,
)
from gateway.idempotency import IdempotentRequest, idempotent
from gateway.resources import GatewayResources, Resources
from gateway.security import require

router = APIRouter(prefix="/v1", tags=["inventory"])

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_QUANTITY = r"^[0-9]{1,6}(\.[0-9]{1,3})?$"
LocationId = Annotated[str, Path(pattern=_ID, description="a location id, e.g. S001, W01, ONLINE01")]
Sku = Annotated[str, Path(pattern=_ID, description="a SKU code, e.g. SKU00001")]
MAX_PAGE_SIZE = 500
MAX_HISTORY_LINES = 10_000
MAX_COUNT_LINES = 5_000

_KINDS = {pb.LOCATION_KIND_STORE: "store", pb.LOCATION_KIND_WAREHOUSE: "warehouse", pb.LOCATION_KIND_ONLINE: "online"}
_RESERVATION_STATUSES = {
    pb.RESERVATION_STATUS_ACTIVE: "active",
    pb.RESERVATION_STATUS_COMMITTED: "committed",
    pb.RESERVATION_STATUS_FULFILLED: "fulfilled",
    pb.RESERVATION_STATUS_RELEASED: "released",
    pb.RESERVATION_STATUS_EXPIRED: "expired",
}
_TRANSFER_STATUSES = {
    pb.TRANSFER_STATUS_REQUESTED: "requested",
    pb.TRANSFER_STATUS_DISPATCHED: "dispatched",
    pb.TRANSFER_STATUS_RECEIVED: "received",
    pb.TRANSFER_STATUS_CANCELLED: "cancelled",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(BaseModel):
    location_id: str
    name: str
    kind: str = Field(description="store, warehouse or online")
    city: str
    channels: list[str] = Field(description="sales channels served: store, online, mini_program, click_and_collect")


class StockLevel(BaseModel):
    sku: str
    location_id: str
    on_hand: str
    reserved: str
    in_transit: str
    safety_stock: str
    available_to_promise: str = Field(description="on_hand − reserved − safety_stock, never below zero")


class SkuAvailability(BaseModel):
    sku: str
    total_available_to_promise: str
    levels: list[StockLevel]


class LocationStockPage(BaseModel):
    levels: list[StockLevel]
    next_page_token: str | None = Field(description="pass as page_token for the next page; null on the last one")


class ReservationIn(Strict):
    """Hold units of one SKU for an online order."""

    sku: str = Field(pattern=_ID, examples=["SKU00001"])
    quantity: str = Field(pattern=_QUANTITY, description="units, or kg with up to 3 decimals", examples=["2"])
    location_id: str | None = Field(default=None, pattern=_ID, description="hold here; else the best location")
    channel: str | None = Field(default=None, pattern=r"^[a-z_]{1,32}$", examples=["online", "click_and_collect"])
    ttl_seconds: int | None = Field(default=None, ge=1, le=172_800, description="hold time; default 900 s")
    allow_split: bool = Field(default=False, description="allow splitting across locations")


class Allocation(BaseModel):
    location_id: str
    quantity: str


class ReservationOut(BaseModel):
    reservation_id: str
    sku: str
    status: str
    allocations: list[Allocation]
    expires_at: str
    sale_id: str | None = None


class TransferIn(Strict):
    sku: str = Field(pattern=_ID)
    quantity: str = Field(pattern=_QUANTITY)
    from_location_id: str = Field(pattern=_ID)
    to_location_id: str = Field(pattern=_ID)


class ReceiveIn(Strict):
    received_quantity: str = Field(pattern=_QUANTITY, description="how many arrived; at most what was dispatched")


class TransferOut(BaseModel):
    transfer_id: str
    sku: str
    from_location_id: str
    to_location_id: str
    quantity: str
    status: str
    received_quantity: str


class CountLineIn(Strict):
    sku: str = Field(pattern=_ID)
    counted_quantity: str = Field(pattern=_QUANTITY)
    reason: str | None = Field(default=None, max_length=200)


class StockCountIn(Strict):
    lines: list[CountLineIn] = Field(min_length=1, max_length=MAX_COUNT_LINES)


class StockCountOut(BaseModel):
    adjusted_levels: int


class HistoryLineIn(Strict):
    sku: str = Field(pattern=_ID)
    date: date
    quantity: str = Field(pattern=_QUANTITY)


class SalesHistoryIn(Strict):
    lines: list[HistoryLineIn] = Field(min_length=1, max_length=MAX_HISTORY_LINES)


class SalesHistoryOut(BaseModel):
    imported_lines: int


def inventory(resources: GatewayResources) -> pb_grpc.InventoryServiceAsyncStub:
    try:
        channel = resources.backends["inventory"]
    except KeyError:
        raise problems.ProblemError(problems.SERVICE_UNAVAILABLE, "the inventory service is not configured") from None
    return pb_grpc.InventoryServiceStub(channel)


def quantity(value: str) -> money_pb2.Decimal:
    return money_pb2.Decimal(value=value)


def map_level(level: pb.StockLevel) -> StockLevel:
    return StockLevel(
        sku=level.sku,
        location_id=level.location_id,
        on_hand=level.on_hand.value,
        reserved=level.reserved.value,
        in_transit=level.in_transit.value,
        safety_stock=level.safety_stock.value,
        available_to_promise=level.available_to_promise.value,
    )


def map_reservation(reservation: pb.Reservation) -> dict[str, Any]:
    return ReservationOut(
        reservation_id=reservation.reservation_id,
        sku=reservation.sku,
        status=_RESERVATION_STATUSES.get(reservation.status, "unknown"),
        allocations=[Allocation(location_id=a.location_id, quantity=a.quantity.value) for a in reservation.allocations],
        expires_at=reservation.expires_at.ToJsonString(),
        sale_id=reservation.sale_id or None,
    ).model_dump()


def map_transfer(transfer: pb.Transfer) -> dict[str, Any]:
    return TransferOut(
        transfer_id=transfer.transfer_id,
        sku=transfer.sku,
        from_location_id=transfer.from_location_id,
        to_location_id=transfer.to_location_id,
        quantity=transfer.quantity.value,
        status=_TRANSFER_STATUSES.get(transfer.status, "unknown"),
        received_quantity=transfer.received_quantity.value,
    ).model_dump()


def owner_of(principal: Principal) -> str:
    """Headquarters staff may act on any reservation; every other client only on its own."""
    return "" if principal.is_headquarters else principal.client_id


@router.get("/locations", responses=problems.problem_responses(401, 403))
async def list_locations(
    resources: Resources, principal: Annotated[Principal, Depends(require(STOCK_READ))]
) -> list[Location]:
    """Every active location: stores, warehouses and online locations, with the channels each serves.

    Scope `stock:read`.
    """
    answer = await inventory(resources).ListLocations(pb.ListLocationsRequest(), timeout=resources.grpc_deadline)
    return [
        Location(location_id=loc.location_id, name=loc.name, kind=_KINDS.get(loc.kind, "unknown"), city=loc.city,
                 channels=list(loc.channels))
        for loc in answer.locations
        if principal.may_touch_store(loc.location_id) or loc.kind != pb.LOCATION_KIND_STORE
    ]  # fmt: skip


@router.get("/stock/{sku}", responses=problems.problem_responses(401, 403, 404))
async def sku_availability(
    sku: Sku, resources: Resources, principal: Annotated[Principal, Depends(require(STOCK_READ))]
) -> SkuAvailability:
    """One SKU's stock at every location (store-bound clients see their own store only), with the total.

    Scope `stock:read`.
    """
    answer = await inventory(resources).GetSkuAvailability(
        pb.GetSkuAvailabilityRequest(sku=sku), timeout=resources.grpc_deadline
    )
    if principal.kind is ClientKind.SUPPLIER_USER:
        # A supplier sees its own SKUs everywhere; another supplier's SKU does not exist for it.
        if answer.supplier_id != principal.supplier_id:
            raise problems.ProblemError(problems.NOT_FOUND, f"SKU {sku} does not exist")
        levels = [map_level(level) for level in answer.levels]
        return SkuAvailability(sku=answer.sku, total_available_to_promise=answer.total_available_to_promise.value,
                               levels=levels)  # fmt: skip
    levels = [map_level(level) for level in answer.levels if principal.may_touch_store(level.location_id)]
    total = answer.total_available_to_promise.value if principal.store_id is None else (
        levels[0].available_to_promise if levels else "0"
    )  # fmt: skip
    return SkuAvailability(sku=answer.sku, total_available_to_promise=total, levels=levels)


@router.get("/locations/{location_id}/stock", responses=problems.problem_responses(401, 403, 404, 422))
async def location_stock(
    location_id: LocationId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(STOCK_READ))],
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    page_token: Annotated[str, Query(max_length=64)] = "",
) -> LocationStockPage:
    """A page of one location's stock levels, by SKU. Scope `stock:read`; store-bound clients: own store only."""
    principal.ensure_store(location_id)
    answer = await inventory(resources).ListLocationStock(
        pb.ListLocationStockRequest(location_id=location_id,
                                    page=paging_pb2.PageRequest(page_size=page_size, page_token=page_token)),
        timeout=resources.grpc_deadline,
    )  # fmt: skip
    return LocationStockPage(
        levels=[map_level(level) for level in answer.levels], next_page_token=answer.page_info.next_page_token or None
    )


@router.post("/reservations", status_code=201, responses=problems.problem_responses(401, 403, 404, 409, 422))
async def reserve_stock(
    body: ReservationIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(RESERVATIONS_WRITE))],
) -> ReservationOut:
    """Hold stock for an online order until it is paid, released or expires.

    Scope `reservations:write`; `Idempotency-Key` required. Never oversells: when there is
    not enough, the answer is `409` with type `out-of-stock` and how much is `available`.
    """
    if not body.location_id and not body.channel:
        raise problems.ProblemError(problems.INVALID_ARGUMENT, "give location_id or channel")
    if body.location_id:
        call.principal.ensure_store(body.location_id)

    async def effect() -> tuple[int, Any]:
        answer = await inventory(resources).ReserveStock(
            pb.ReserveStockRequest(
                request_id=call.request_id, sku=body.sku, quantity=quantity(body.quantity),
                location_id=body.location_id or "", channel=body.channel or "", ttl_seconds=body.ttl_seconds or 0,
                allow_split=body.allow_split, owner=call.principal.client_id,
            ),
            timeout=resources.grpc_deadline,
        )  # fmt: skip
        return 201, map_reservation(answer.reservation)

    return await call.run(effect)  # type: ignore[return-value]


@router.post("/reservations/{reservation_id}/commit", responses=problems.problem_responses(401, 403, 404, 409))
async def commit_reservation(
    reservation_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(RESERVATIONS_WRITE))],
) -> ReservationOut:
    """Mark a reservation as paid (it stops expiring); the sale journaled with its id sells the units.

    Scope `reservations:write`; only the client that placed it. `Idempotency-Key` required.
    """

    message = pb.CommitReservationRequest(request_id=call.request_id, reservation_id=reservation_id,
                                          owner=owner_of(call.principal))  # fmt: skip
    return await _step(resources, call, "CommitReservation", message, _reservation_of)  # type: ignore[no-any-return]


@router.post("/reservations/{reservation_id}/release", responses=problems.problem_responses(401, 403, 404, 409))
async def release_reservation(
    reservation_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(RESERVATIONS_WRITE))],
) -> ReservationOut:
    """Give a reservation's units back. Scope `reservations:write`; only its client. `Idempotency-Key` required."""

    message = pb.ReleaseReservationRequest(request_id=call.request_id, reservation_id=reservation_id,
                                           owner=owner_of(call.principal))  # fmt: skip
    return await _step(resources, call, "ReleaseReservation", message, _reservation_of)  # type: ignore[no-any-return]


@router.post("/transfers", status_code=201, responses=problems.problem_responses(401, 403, 404, 409, 422))
async def request_transfer(
    body: TransferIn, resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(TRANSFERS_WRITE))]
) -> TransferOut:
    """Start an inter-store transfer: the source holds the units.

    Scope `transfers:write`; store staff only from their own store.
    """
    call.principal.ensure_store(body.from_location_id)

    async def effect() -> tuple[int, Any]:
        answer = await inventory(resources).RequestTransfer(
            pb.RequestTransferRequest(request_id=call.request_id, sku=body.sku, quantity=quantity(body.quantity),
                                      from_location_id=body.from_location_id, to_location_id=body.to_location_id),
            timeout=resources.grpc_deadline,
        )  # fmt: skip
        return 201, map_transfer(answer.transfer)

    return await call.run(effect)  # type: ignore[return-value]


async def _step(
    resources: GatewayResources, call: IdempotentRequest, rpc: str, message: Any, answer_of: Callable[[Any], Any]
) -> Any:
    """One idempotent call of inventory's ``rpc``; the answer body is ``answer_of(response)``."""

    async def effect() -> tuple[int, Any]:
        answer = await getattr(inventory(resources), rpc)(message, timeout=resources.grpc_deadline)
        return 200, answer_of(answer)

    return await call.run(effect)


def _transfer_of(answer: Any) -> dict[str, Any]:
    return map_transfer(answer.transfer)


def _reservation_of(answer: Any) -> dict[str, Any]:
    return map_reservation(answer.reservation)


@router.post("/transfers/{transfer_id}/dispatch", responses=problems.problem_responses(401, 403, 404, 409))
async def dispatch_transfer(
    transfer_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(TRANSFERS_WRITE))],
) -> TransferOut:
    """The units left the source and are in transit. Scope `transfers:write`."""
    message = pb.DispatchTransferRequest(request_id=call.request_id, transfer_id=transfer_id)
    return await _step(resources, call, "DispatchTransfer", message, _transfer_of)  # type: ignore[no-any-return]


@router.post("/transfers/{transfer_id}/receive", responses=problems.problem_responses(401, 403, 404, 409, 422))
async def receive_transfer(
    transfer_id: Annotated[str, Path(max_length=64)],
    body: ReceiveIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(TRANSFERS_WRITE))],
) -> TransferOut:
    """Book what arrived; a shortfall is recorded as shrink. Scope `transfers:write`."""
    message = pb.ReceiveTransferRequest(request_id=call.request_id, transfer_id=transfer_id,
                                        received_quantity=quantity(body.received_quantity))  # fmt: skip
    return await _step(resources, call, "ReceiveTransfer", message, _transfer_of)  # type: ignore[no-any-return]


@router.post("/transfers/{transfer_id}/cancel", responses=problems.problem_responses(401, 403, 404, 409))
async def cancel_transfer(
    transfer_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(TRANSFERS_WRITE))],
) -> TransferOut:
    """Call a transfer off before dispatch; the source's hold is released. Scope `transfers:write`."""
    message = pb.CancelTransferRequest(request_id=call.request_id, transfer_id=transfer_id)
    return await _step(resources, call, "CancelTransfer", message, _transfer_of)  # type: ignore[no-any-return]


@router.post("/locations/{location_id}/stock-counts", responses=problems.problem_responses(401, 403, 404, 422))
async def record_stock_count(
    location_id: LocationId,
    body: StockCountIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(STOCK_COUNTS_WRITE))],
) -> StockCountOut:
    """A stock count (盘点): counted quantities become adjustment movements, all or nothing.

    Scope `stock-counts:write`; store staff: their own store only.
    """
    call.principal.ensure_store(location_id)

    async def effect() -> tuple[int, Any]:
        answer = await inventory(resources).RecordStockCount(
            pb.RecordStockCountRequest(
                request_id=call.request_id, location_id=location_id,
                lines=[pb.CountLine(sku=line.sku, counted_quantity=quantity(line.counted_quantity),
                                    reason=line.reason or "") for line in body.lines],
            ),
            timeout=resources.grpc_deadline,
        )  # fmt: skip
        return 200, StockCountOut(adjusted_levels=answer.adjusted_levels).model_dump()

    return await call.run(effect)  # type: ignore[return-value]


@router.post("/locations/{location_id}/sales-history", responses=problems.problem_responses(401, 403, 404, 422))
async def import_sales_history(
    location_id: LocationId,
    body: SalesHistoryIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(SALES_HISTORY_WRITE))],
) -> SalesHistoryOut:
    """Backfill daily sold quantities from a previous system (≤ 10,000 lines; headquarters staff).

    Scope `sales-history:write`. An upsert per SKU, location and date: importing the same
    file twice changes nothing. Feeds forecasts and KPIs; changes no stock.
    """
    if not call.principal.is_headquarters:
        raise problems.ProblemError(problems.FORBIDDEN, "only headquarters staff import sales history")

    async def effect() -> tuple[int, Any]:
        answer = await inventory(resources).ImportSalesHistory(
            pb.ImportSalesHistoryRequest(
                request_id=call.request_id, location_id=location_id,
                lines=[pb.SalesHistoryLine(sku=line.sku, date=line.date.isoformat(), quantity=quantity(line.quantity))
                       for line in body.lines],
            ),
            timeout=max(resources.grpc_deadline, 30.0),
        )  # fmt: skip
        return 200, SalesHistoryOut(imported_lines=answer.imported_lines).model_dump()

    return await call.run(effect)  # type: ignore[return-value]
