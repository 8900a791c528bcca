"""Inventory: locations, stock, reservations for online orders, transfers, counts, history.

Every route checks its scope and the caller's ownership of what it touches: a store's
terminals and staff see and change only their own store; reservations belong to the
client that placed them. Mutations take an ``Idempotency-Key`` that travels to the
inventory service as the gRPC ``request_id``, so the effect and the stored answer commit
together there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field, model_validator
from retail.common.v1 import money_pb2
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
from gateway.http.integer_types import Int32
from gateway.http.paging import Paging
from gateway.http.resources import GatewayResources, Resources
from gateway.http.schemas import Strict
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.security.authentication import Principal
from gateway.security.authorisation import require

router = APIRouter(prefix="/v1", tags=["inventory"])

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_QUANTITY = r"^[0-9]{1,6}(\.[0-9]{1,3})?$"
LocationId = Annotated[str, Path(pattern=_ID, description="a location id, e.g. S001, W01, ONLINE01")]
Sku = Annotated[str, Path(pattern=_ID, description="a SKU code, e.g. SKU00001")]
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
_DISCREPANCY_KINDS = {
    pb.STOCK_DISCREPANCY_KIND_NEGATIVE_STOCK: "negative_stock",
    pb.STOCK_DISCREPANCY_KIND_UNKNOWN_SKU: "unknown_sku",
    pb.STOCK_DISCREPANCY_KIND_UNKNOWN_LOCATION: "unknown_location",
    pb.STOCK_DISCREPANCY_KIND_UNREADABLE_QUANTITY: "unreadable_quantity",
}
_TRANSFER_STATUSES = {
    pb.TRANSFER_STATUS_REQUESTED: "requested",
    pb.TRANSFER_STATUS_DISPATCHED: "dispatched",
    pb.TRANSFER_STATUS_RECEIVED: "received",
    pb.TRANSFER_STATUS_CANCELLED: "cancelled",
}


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


SalesChannel = Literal["online", "mini_program", "click_and_collect", "store"]


class ReservationIn(Strict):
    """Hold units of one SKU for an order. Give exactly one of `location_id` (hold there) or
    `channel` (hold where the channel may draw from); neither or both is `422`.

    A channel draws only from the active locations that list it in their `channels` (see
    `GET /v1/locations`). In the demo: `online` from the online shop ONLINE01;
    `mini_program` from ONLINE01 and the stores that deliver; `click_and_collect` from the
    stores offering pick-up; `store` from every store. A warehouse serves no channel: its
    stock reaches one by a transfer and is never promised to an order directly.
    """

    sku: str = Field(pattern=_ID, examples=["SKU00001"])
    quantity: str = Field(pattern=_QUANTITY, description="units, or kg with up to 3 decimals", examples=["2"])
    location_id: str | None = Field(
        default=None, pattern=_ID, description="hold at this location (instead of `channel`)", examples=["ONLINE01"]
    )
    channel: SalesChannel | None = Field(
        default=None,
        description="hold at the location serving this channel with the most available to promise (instead of "
        "`location_id`); it draws only from locations that list the channel, never from a warehouse",
        examples=["online"],
    )
    ttl_seconds: Int32 | None = Field(default=None, ge=1, le=172_800, description="hold time; default 900 s")
    allow_split: bool = Field(default=False, description="with `channel`: allow splitting across its locations")

    @model_validator(mode="after")
    def exactly_one_place(self) -> ReservationIn:
        if (self.location_id is None) == (self.channel is None):
            raise ValueError("give exactly one of location_id or channel")
        return self


class LocationStockFact(BaseModel):
    """What one location holds of the SKU, and which sales channels it serves."""

    location_id: str
    kind: str = Field(description="store, warehouse or online")
    channels: list[str]
    available_to_promise: str


class OutOfStockProblem(problems.Problem):
    """`409 out-of-stock`: how much could be promised, and where the rest of the stock is."""

    sku: str | None = None
    requested: str | None = None
    available: str | None = Field(
        default=None, description="the most one location can promise (with allow_split: the channel's total)"
    )
    channel: str | None = Field(default=None, description="the channel asked for, when reserving by channel")
    available_total: str | None = Field(default=None, description="what the channel's locations hold together")
    draws_from: list[LocationStockFact] | None = Field(default=None, description="the locations serving the channel")
    not_promisable: list[LocationStockFact] | None = Field(
        default=None, description="locations holding stock that do not serve the channel (e.g. the warehouse)"
    )


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


@router.get("/stock/{sku}", responses=problems.problem_responses(401, 403, 404))
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


@router.get("/locations/{location_id}/stock", responses=problems.problem_responses(401, 403, 404, 422))
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
    responses=problems.problem_responses(401, 403, 404, 422) | problems.problem_responses(409, model=OutOfStockProblem),
)
async def reserve_stock(
    body: ReservationIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(RESERVATIONS_WRITE))],
) -> ReservationOut:
    """Hold stock for an online order until it is paid, released or expires.

    Scope `reservations:write`; `Idempotency-Key` required. Never oversells: when there is
    not enough, the answer is `409` with type `out-of-stock`, how much is `available`, and
    for a channel where its stock is (`draws_from`) and which stock it may not promise
    (`not_promisable`, e.g. the warehouse's).
    """
    if body.location_id:
        call.principal.ensure_store(body.location_id)

    async def effect() -> tuple[int, Any]:
        answer = await resources.inventory_service.ReserveStock(
            pb.ReserveStockRequest(
                request_id=call.request_id,
                sku=body.sku,
                quantity=quantity(body.quantity),
                location_id=body.location_id or "",
                channel=body.channel or "",
                ttl_seconds=body.ttl_seconds or 0,
                allow_split=body.allow_split,
                owner=call.principal.client_id,
            ),
        )
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

    message = pb.CommitReservationRequest(
        request_id=call.request_id, reservation_id=reservation_id, owner=owner_of(call.principal)
    )
    return await _step(resources, call, "CommitReservation", message, _reservation_of)  # type: ignore[no-any-return]


@router.post("/reservations/{reservation_id}/release", responses=problems.problem_responses(401, 403, 404, 409))
async def release_reservation(
    reservation_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(RESERVATIONS_WRITE))],
) -> ReservationOut:
    """Give a reservation's units back. Scope `reservations:write`; only its client. `Idempotency-Key` required."""

    message = pb.ReleaseReservationRequest(
        request_id=call.request_id, reservation_id=reservation_id, owner=owner_of(call.principal)
    )
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
        answer = await resources.inventory_service.RequestTransfer(
            pb.RequestTransferRequest(
                request_id=call.request_id,
                sku=body.sku,
                quantity=quantity(body.quantity),
                from_location_id=body.from_location_id,
                to_location_id=body.to_location_id,
            ),
        )
        return 201, map_transfer(answer.transfer)

    return await call.run(effect)  # type: ignore[return-value]


async def _step(
    resources: GatewayResources, call: IdempotentRequest, rpc: str, message: Any, answer_of: Callable[[Any], Any]
) -> Any:
    """One idempotent call of inventory's ``rpc``; the answer body is ``answer_of(response)``."""

    async def effect() -> tuple[int, Any]:
        answer = await getattr(resources.inventory_service, rpc)(message)
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
    message = pb.ReceiveTransferRequest(
        request_id=call.request_id, transfer_id=transfer_id, received_quantity=quantity(body.received_quantity)
    )
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
        answer = await resources.inventory_service.RecordStockCount(
            pb.RecordStockCountRequest(
                request_id=call.request_id,
                location_id=location_id,
                lines=[
                    pb.CountLine(
                        sku=line.sku, counted_quantity=quantity(line.counted_quantity), reason=line.reason or ""
                    )
                    for line in body.lines
                ],
            ),
        )
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
        answer = await resources.inventory_service.ImportSalesHistory(
            pb.ImportSalesHistoryRequest(
                request_id=call.request_id,
                location_id=location_id,
                lines=[
                    pb.SalesHistoryLine(sku=line.sku, date=line.date.isoformat(), quantity=quantity(line.quantity))
                    for line in body.lines
                ],
            ),
            timeout=max(resources.grpc_deadline, 30.0),
        )
        return 200, SalesHistoryOut(imported_lines=answer.imported_lines).model_dump()

    return await call.run(effect)  # type: ignore[return-value]


# -- replenishment planning: forecasts, suggestions, KPIs ----------------------------------------------
# Fitting a location's demand model takes seconds the first time each day (the service caches it).
PLANNING_DEADLINE_SECONDS = 60.0
MAX_FORECAST_DAYS = 90
_ALERT_KINDS = {pb.STOCK_ALERT_KIND_LOW_STOCK: "low_stock", pb.STOCK_ALERT_KIND_OVERSTOCK: "overstock"}


class DailyDemandOut(BaseModel):
    date: Annotated[date, Field(description="business day (China Standard Time)", examples=["2026-11-24"])]
    quantity: str = Field(
        description="point forecast: units (kg for loose goods) that day with the lowest expected absolute error "
        "(the expected demand, or a slow mover's median: see backtest.point_estimate)",
        examples=["12.431"],
    )
    expected_quantity: str | None = Field(
        None,
        description="expected (mean) demand, what replenishment plans with; null if too short to backtest",
        examples=["12.9"],
    )
    lower_80: str | None = Field(None, description="80% prediction interval, lower end", examples=["8"])
    upper_80: str | None = Field(None, description="80% prediction interval, upper end", examples=["18.2"])
    lower_95: str | None = Field(None, description="95% prediction interval, lower end", examples=["6.1"])
    upper_95: str | None = Field(None, description="95% prediction interval, upper end", examples=["21.7"])


class MethodBacktestOut(BaseModel):
    """One method's errors on the SKU's held-out history."""

    method: str = Field(examples=["ets_damped_trend"])
    mae: str | None = Field(description="mean absolute error, units a day", examples=["2.104"])
    wape: str | None = Field(
        description="total absolute error ÷ total actual sales; null if it sold nothing then", examples=["0.3012"]
    )


class BacktestOut(BaseModel):
    """The SKU's own held-out history, forecast from rolling origins: the method that serves it, beside the
    baselines (seasonal naive: same weekday last week; and the mean of the last 28 days)."""

    metric: str = Field(
        description="wape: total absolute error ÷ total actual sales; lower is better", examples=["wape"]
    )
    model_error: str | None = Field(
        description="the served method's error on this SKU; null if it sold nothing then", examples=["0.4123"]
    )
    baseline_error: str | None = Field(
        description="seasonal naive's error on this SKU; null if it sold nothing then", examples=["0.5871"]
    )
    location_model_error: str = Field(
        description="the served methods' error over all SKUs of the location", examples=["0.331"]
    )
    location_baseline_error: str = Field(
        description="seasonal naive's error over all SKUs of the location", examples=["0.4502"]
    )
    location_recent_mean_error: str | None = Field(
        None, description="the 28-day mean's error over all SKUs of the location", examples=["0.3677"]
    )
    horizon_days: int = Field(description="days each backtest origin forecasts (7, 14 or 28)", examples=[14])
    origin_dates: list[date] = Field(description="first held-out day of each origin")
    method: str | None = Field(
        None,
        description="what serves this SKU: a method, several joined by + (their average), or a baseline when "
        "nothing beat it",
        examples=["ets_level+weekday_mean_28d"],
    )
    point_estimate: str | None = Field(
        None, description="mean or median: what the point forecast is", examples=["mean"]
    )
    served: MethodBacktestOut | None = Field(None, description="the served forecast's errors on this SKU")
    seasonal_naive: MethodBacktestOut | None = Field(None, description="seasonal naive's errors on this SKU")
    recent_mean: MethodBacktestOut | None = Field(None, description="the 28-day mean's errors on this SKU")
    candidates: list[MethodBacktestOut] = Field(default_factory=list, description="every candidate's errors")
    coverage_80: str | None = Field(
        None, description="share of held-out days inside the 80% interval", examples=["0.8036"]
    )
    coverage_95: str | None = Field(
        None, description="share of held-out days inside the 95% interval", examples=["0.9464"]
    )


class ForecastOut(BaseModel):
    """Forecast daily sales of one SKU at one location from today on, with intervals and the backtest behind them."""

    location_id: str = Field(examples=["S001"])
    sku: str = Field(examples=["SKU00001"])
    forecast: list[DailyDemandOut] = Field(description="one entry per day from today, horizon_days in all")
    backtest: BacktestOut | None = Field(description="null when the history is too short to hold any days out")
    history_end_date: date | None = Field(
        description="last day of sales history the model learned from; days after it are forecast, not taken as zero"
    )


class SuggestionOut(BaseModel):
    """What to order of one SKU, and the figures behind it."""

    sku: str = Field(examples=["SKU00001"])
    supplier_id: str = Field(examples=["SUP001"])
    as_of_date: date = Field(examples=["2026-11-24"])
    lead_time_days: int = Field(examples=[3])
    review_period_days: int = Field(examples=[7])
    service_level: str = Field(examples=["0.95"])
    on_hand: str = Field(examples=["40"])
    reserved: str = Field(examples=["2"])
    in_transit: str = Field(examples=["0"])
    available_to_promise: str = Field(description="on hand − reserved − the level's safety stock", examples=["30"])
    inventory_position: str = Field(description="on hand − reserved + in transit", examples=["38"])
    lead_time_forecast: str = Field(description="forecast demand over the lead time", examples=["36.2"])
    protection_forecast: str = Field(description="forecast demand over lead time + review period", examples=["120.5"])
    daily_error_std: str = Field(
        description="σ of daily demand above its mean over the lead time (95% interval)", examples=["3.1"]
    )
    safety_stock: str = Field(description="z(service level) × σ × √(lead time)", examples=["8.832"])
    reorder_point: str = Field(description="lead-time forecast + safety stock", examples=["45.032"])
    order_up_to: str = Field(description="protection forecast + safety stock", examples=["129.332"])
    suggested_quantity: str = Field(
        description="order-up-to − inventory position, rounded up to whole pieces (loose goods to the gram), ≥ 0",
        examples=["92"],
    )
    reorder_due: bool = Field(description="the inventory position is at or below the reorder point")
    days_of_cover: str | None = Field(
        description="days the shelf stock lasts at the forecast rate; null if no demand", examples=["9.4"]
    )


class AlertOut(BaseModel):
    sku: str = Field(examples=["SKU00001"])
    kind: str = Field(description="low_stock or overstock", examples=["low_stock"])
    available_to_promise: str = Field(examples=["4"])
    reorder_point: str = Field(examples=["45.032"])
    days_of_cover: str | None = Field(description="null when no demand is forecast", examples=["1.2"])
    overstock_cover_days: str = Field(description="more days of cover than this is overstock", examples=["60"])


class ReplenishmentPageOut(BaseModel):
    """A page of a location's order suggestions (by SKU) and the alerts among them."""

    location_id: str = Field(examples=["S001"])
    as_of_date: date = Field(examples=["2026-11-24"])
    suggestions: list[SuggestionOut]
    alerts: list[AlertOut]
    next_page_token: str | None = Field(description="pass as page_token for the next page; null on the last one")


class SkuKpisOut(BaseModel):
    sku: str = Field(examples=["SKU00001"])
    from_date: date = Field(description="first day counted (its stock is known from its first ledger movement on)")
    to_date: date
    days: int = Field(examples=[30])
    units_sold: str = Field(examples=["312"])
    shrink: str = Field(description="negative count adjustments and transfer shortfalls", examples=["3"])
    closing_stock: str = Field(examples=["41"])
    stock_out_rate: str = Field(description="share of days closing with nothing on hand", examples=["0.0333"])
    sell_through_rate: str | None = Field(description="sold ÷ (sold + closing stock)", examples=["0.8838"])
    days_of_cover: str | None = Field(description="average stock ÷ average daily sales", examples=["4.1"])
    shrink_rate: str | None = Field(description="shrink ÷ (sold + shrink)", examples=["0.0095"])


class DiscrepancyTallyOut(BaseModel):
    kind: str = Field(
        description="negative_stock: a sale took on-hand below zero (applied; to investigate); unknown_sku, "
        "unknown_location: a sale or return line inventory could not apply yet (it waits and is applied once the "
        "SKU or location exists); unreadable_quantity: a line whose quantity cannot move stock",
        examples=["unknown_sku"],
    )
    recorded: int = Field(description="recorded for sales and returns that happened in the period", examples=[3])
    open: int = Field(description="of those, still open: lines not applied yet, shortfalls not resolved", examples=[1])


class StockKpisOut(BaseModel):
    """Stock KPIs of a location over a period, overall and per SKU, and the discrepancies its sales left."""

    location_id: str = Field(examples=["S001"])
    from_date: date = Field(examples=["2026-10-26"])
    to_date: date = Field(examples=["2026-11-24"])
    skus_carried: int = Field(examples=[287])
    skus_sold: int = Field(examples=[261])
    sell_through_rate: str | None = Field(description="动销率: share of carried SKUs that sold", examples=["0.9094"])
    stock_out_rate: str | None = Field(
        description="share of SKU-days closing with nothing on hand", examples=["0.0412"]
    )
    days_of_cover: str | None = Field(
        description="turnover days: average stock ÷ average daily sales", examples=["11.3"]
    )
    shrink_rate: str | None = Field(description="shrink ÷ (sold + shrink)", examples=["0.0061"])
    skus: list[SkuKpisOut]
    discrepancies: list[DiscrepancyTallyOut] = Field(description="one tally per kind that occurred in the period")


class PendingSaleLineOut(BaseModel):
    """A journaled sale or return line inventory recorded but has not applied: its SKU or location is unknown."""

    discrepancy_id: str
    kind: str = Field(description="unknown_sku or unknown_location", examples=["unknown_sku"])
    sale_id: str = Field(examples=["S001-POS01-20261124-000042"])
    location_id: str = Field(examples=["S001"])
    sku: str = Field(examples=["SKU00030"])
    quantity: str = Field(examples=["1"])
    is_return: bool = Field(description="a return's line (units come back) rather than a sale's")
    occurred_at: datetime | None = Field(description="when the sale happened at the till")


class PendingSaleLinesOut(BaseModel):
    """What applying the waiting sale lines of a location did, and what still waits."""

    applied_lines: int = Field(description="lines this request applied", examples=[2])
    pending_total: int = Field(description="lines still waiting for their SKU or location", examples=[1])
    pending_lines: list[PendingSaleLineOut] = Field(description="the oldest of those, at most 100")


def planning_supplier(principal: Principal, location_id: str) -> str:
    """Whose SKUs a planning answer may show: a supplier user its own anywhere; store staff their store's only."""
    if principal.kind is ClientKind.SUPPLIER_USER:
        if not principal.supplier_id:
            raise problems.ProblemError(problems.FORBIDDEN, "this supplier user is not bound to a supplier")
        return principal.supplier_id
    principal.ensure_store(location_id)
    return ""


def _decimal(value: money_pb2.Decimal, present: bool = True) -> str | None:
    return value.value if present else None


def map_method_backtest(method: pb.MethodBacktest) -> MethodBacktestOut:
    return MethodBacktestOut(
        method=method.method,
        mae=_decimal(method.mae, method.HasField("mae")),
        wape=_decimal(method.wape, method.HasField("wape")),
    )


def map_backtest(backtest: pb.ForecastBacktest) -> BacktestOut:
    return BacktestOut(
        metric=backtest.metric,
        model_error=_decimal(backtest.model_error, backtest.HasField("model_error")),
        baseline_error=_decimal(backtest.baseline_error, backtest.HasField("baseline_error")),
        location_model_error=backtest.location_model_error.value,
        location_baseline_error=backtest.location_baseline_error.value,
        location_recent_mean_error=_decimal(
            backtest.location_recent_mean_error, backtest.HasField("location_recent_mean_error")
        ),
        horizon_days=backtest.horizon_days,
        origin_dates=[date.fromisoformat(day) for day in backtest.origin_dates],
        method=backtest.method or None,
        point_estimate=backtest.point_estimate or None,
        served=map_method_backtest(backtest.served) if backtest.HasField("served") else None,
        seasonal_naive=map_method_backtest(backtest.seasonal_naive) if backtest.HasField("seasonal_naive") else None,
        recent_mean=map_method_backtest(backtest.recent_mean) if backtest.HasField("recent_mean") else None,
        candidates=[map_method_backtest(candidate) for candidate in backtest.candidates],
        coverage_80=_decimal(backtest.coverage_80, backtest.HasField("coverage_80")),
        coverage_95=_decimal(backtest.coverage_95, backtest.HasField("coverage_95")),
    )


def map_daily_demand(day: pb.DailyDemand) -> DailyDemandOut:
    return DailyDemandOut(
        date=date.fromisoformat(day.date),
        quantity=day.quantity.value,
        expected_quantity=_decimal(day.expected_quantity, day.HasField("expected_quantity")),
        lower_80=_decimal(day.lower_80, day.HasField("lower_80")),
        upper_80=_decimal(day.upper_80, day.HasField("upper_80")),
        lower_95=_decimal(day.lower_95, day.HasField("lower_95")),
        upper_95=_decimal(day.upper_95, day.HasField("upper_95")),
    )


def map_suggestion(suggestion: pb.ReplenishmentSuggestion) -> SuggestionOut:
    return SuggestionOut(
        sku=suggestion.sku,
        supplier_id=suggestion.supplier_id,
        as_of_date=date.fromisoformat(suggestion.as_of_date),
        lead_time_days=suggestion.lead_time_days,
        review_period_days=suggestion.review_period_days,
        service_level=suggestion.service_level.value,
        on_hand=suggestion.on_hand.value,
        reserved=suggestion.reserved.value,
        in_transit=suggestion.in_transit.value,
        available_to_promise=suggestion.available_to_promise.value,
        inventory_position=suggestion.inventory_position.value,
        lead_time_forecast=suggestion.lead_time_forecast.value,
        protection_forecast=suggestion.protection_forecast.value,
        daily_error_std=suggestion.daily_error_std.value,
        safety_stock=suggestion.safety_stock.value,
        reorder_point=suggestion.reorder_point.value,
        order_up_to=suggestion.order_up_to.value,
        suggested_quantity=suggestion.suggested_quantity.value,
        reorder_due=suggestion.reorder_due,
        days_of_cover=_decimal(suggestion.days_of_cover, suggestion.HasField("days_of_cover")),
    )


def map_alert(alert: pb.StockAlert) -> AlertOut:
    return AlertOut(
        sku=alert.sku,
        kind=_ALERT_KINDS.get(alert.kind, "unknown"),
        available_to_promise=alert.available_to_promise.value,
        reorder_point=alert.reorder_point.value,
        days_of_cover=_decimal(alert.days_of_cover, alert.HasField("days_of_cover")),
        overstock_cover_days=alert.overstock_cover_days.value,
    )


def _rate(message: Any, name: str) -> str | None:
    return _decimal(getattr(message, name), message.HasField(name))


def map_sku_kpis(kpis: pb.SkuStockKpis) -> SkuKpisOut:
    return SkuKpisOut(
        sku=kpis.sku,
        from_date=date.fromisoformat(kpis.from_date),
        to_date=date.fromisoformat(kpis.to_date),
        days=kpis.days,
        units_sold=kpis.units_sold.value,
        shrink=kpis.shrink.value,
        closing_stock=kpis.closing_stock.value,
        stock_out_rate=kpis.stock_out_rate.value,
        sell_through_rate=_rate(kpis, "sell_through_rate"),
        days_of_cover=_rate(kpis, "days_of_cover"),
        shrink_rate=_rate(kpis, "shrink_rate"),
    )


@router.get("/locations/{location_id}/replenishment", responses=problems.problem_responses(401, 403, 404, 409, 422))
async def location_replenishment(
    location_id: LocationId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(REPLENISHMENT_READ))],
    page: Paging,
) -> ReplenishmentPageOut:
    """A page of a store's (or online location's) order suggestions by SKU, with low-stock and overstock alerts.

    Scope `replenishment:read`. Store staff see their own store only, headquarters every
    location, a supplier user its own SKUs at any location. Suggested quantity =
    order-up-to − (on hand − reserved + in transit), where order-up-to is the forecast
    over lead time + review period plus safety stock. A warehouse is `409`
    (`not-a-selling-location`): its demand is the stores' orders.
    """
    supplier_id = planning_supplier(principal, location_id)
    answer = await resources.inventory_service.ListReplenishment(
        pb.ListReplenishmentRequest(location_id=location_id, supplier_id=supplier_id, page=page.request()),
        timeout=max(resources.grpc_deadline, PLANNING_DEADLINE_SECONDS),
    )
    return ReplenishmentPageOut(
        location_id=answer.location_id,
        as_of_date=date.fromisoformat(answer.as_of_date),
        suggestions=[map_suggestion(suggestion) for suggestion in answer.suggestions],
        alerts=[map_alert(alert) for alert in answer.alerts],
        next_page_token=page.next_token(answer.page_info.next_page_token),
    )


@router.get(
    "/locations/{location_id}/skus/{sku}/forecast", responses=problems.problem_responses(401, 403, 404, 409, 422)
)
async def sku_forecast(
    location_id: LocationId,
    sku: Sku,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(REPLENISHMENT_READ))],
    horizon_days: Annotated[Int32, Query(ge=1, le=MAX_FORECAST_DAYS, description="days from today, 1 to 90")] = 14,
) -> ForecastOut:
    """Daily sales forecast of one SKU at a store or online location from today on, with 80%/95% intervals.

    Scope `replenishment:read`; store staff: their own store only; a supplier user: its own
    SKUs. Every candidate method was backtested on the SKU's own held-out history (rolling
    origins, the horizon asked for); `backtest` names the one that serves it and its MAE and
    WAPE beside the seasonal-naive and 28-day-mean baselines' (a method that lost to both
    never serves). `404` for an unknown location or SKU, or a SKU the location neither
    stocks nor sold.
    """
    supplier_id = planning_supplier(principal, location_id)
    answer = await resources.inventory_service.GetForecast(
        pb.GetForecastRequest(location_id=location_id, sku=sku, horizon_days=horizon_days),
        timeout=max(resources.grpc_deadline, PLANNING_DEADLINE_SECONDS),
    )
    if supplier_id and answer.supplier_id != supplier_id:
        raise problems.ProblemError(problems.NOT_FOUND, f"SKU {sku} does not exist")
    return ForecastOut(
        location_id=answer.location_id,
        sku=answer.sku,
        forecast=[map_daily_demand(day) for day in answer.forecast],
        backtest=map_backtest(answer.backtest) if answer.HasField("backtest") else None,
        history_end_date=date.fromisoformat(answer.history_end_date) if answer.history_end_date else None,
    )


@router.get("/locations/{location_id}/kpis", responses=problems.problem_responses(401, 403, 404, 422))
async def stock_kpis(
    location_id: LocationId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(REPLENISHMENT_READ))],
    sku: Annotated[str | None, Query(pattern=_ID, description="one SKU only")] = None,
    from_date: Annotated[date | None, Query(alias="from", description="first day; default 29 days before `to`")] = None,
    to_date: Annotated[date | None, Query(alias="to", description="last day, not after today; default today")] = None,
) -> StockKpisOut:
    """Stock KPIs of a location over a period (at most 366 days): stock-out rate, sell-through, cover, shrink.

    Scope `replenishment:read`; store staff: their own store only; a supplier user: over
    its own SKUs. Sell-through per location is 动销率 (share of carried SKUs that sold);
    days of cover are turnover days. A SKU counts from the first day its ledger knows its
    stock. `discrepancies` counts per kind what the period's sales left to reconcile: sales
    that took on-hand below zero, and lines of a SKU or at a location inventory did not know
    (they wait, unapplied, until it does) — with how many are still open.
    """
    supplier_id = planning_supplier(principal, location_id)
    if from_date and to_date and from_date > to_date:
        raise problems.ProblemError(problems.INVALID_ARGUMENT, "`from` must not be after `to`")
    answer = await resources.inventory_service.GetStockKpis(
        pb.GetStockKpisRequest(
            location_id=location_id,
            sku=sku or "",
            supplier_id=supplier_id,
            from_date=from_date.isoformat() if from_date else "",
            to_date=to_date.isoformat() if to_date else "",
        ),
        timeout=max(resources.grpc_deadline, PLANNING_DEADLINE_SECONDS),
    )
    return StockKpisOut(
        location_id=answer.location_id,
        from_date=date.fromisoformat(answer.from_date),
        to_date=date.fromisoformat(answer.to_date),
        skus_carried=answer.skus_carried,
        skus_sold=answer.skus_sold,
        sell_through_rate=_rate(answer, "sell_through_rate"),
        stock_out_rate=_rate(answer, "stock_out_rate"),
        days_of_cover=_rate(answer, "days_of_cover"),
        shrink_rate=_rate(answer, "shrink_rate"),
        skus=[map_sku_kpis(kpis) for kpis in answer.skus],
        discrepancies=[
            DiscrepancyTallyOut(
                kind=_DISCREPANCY_KINDS.get(tally.kind, "unknown"), recorded=tally.recorded, open=tally.open
            )
            for tally in answer.discrepancies
        ],
    )


@router.post("/locations/{location_id}/pending-sale-lines/apply", responses=problems.problem_responses(401, 403, 422))
async def apply_pending_sale_lines(
    location_id: LocationId,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(STOCK_COUNTS_WRITE))],
) -> PendingSaleLinesOut:
    """Apply the location's sale and return lines that waited for an unknown SKU or location, now that both exist.

    Scope `stock-counts:write`; headquarters staff only. A sale that happened at a till is
    never dropped: a line inventory cannot apply on arrival waits as a discrepancy
    (`unknown_sku`, `unknown_location` in the KPIs). A SKU that arrives through the
    catalogue has its lines applied as it arrives; after setting up a store (or loading items
    another way), this applies the rest. Each line moves stock exactly once, whoever applies
    it; the answer lists what still waits. `Idempotency-Key` required.
    """
    if not call.principal.is_headquarters:
        raise problems.ProblemError(problems.FORBIDDEN, "only headquarters staff reconcile pending sale lines")

    async def effect() -> tuple[int, Any]:
        answer = await resources.inventory_service.ApplyPendingSaleLines(
            pb.ApplyPendingSaleLinesRequest(request_id=call.request_id, location_id=location_id),
            timeout=max(resources.grpc_deadline, PLANNING_DEADLINE_SECONDS),
        )
        result = PendingSaleLinesOut(
            applied_lines=answer.applied_lines,
            pending_total=answer.pending_total,
            pending_lines=[
                PendingSaleLineOut(
                    discrepancy_id=line.discrepancy_id,
                    kind=_DISCREPANCY_KINDS.get(line.kind, "unknown"),
                    sale_id=line.sale_id,
                    location_id=line.location_id,
                    sku=line.sku,
                    quantity=line.quantity.value,
                    is_return=line.is_return,
                    occurred_at=line.occurred_at.ToDatetime(tzinfo=UTC) if line.HasField("occurred_at") else None,
                )
                for line in answer.pending_lines
            ],
        )
        return 200, result.model_dump(mode="json")

    return await call.run(effect)  # type: ignore[return-value]
