"""Replenishment planning: demand forecasts, suggestions, stock KPIs and pending sale lines."""

from __future__ import annotations

from datetime import UTC, date
from typing import Annotated

from fastapi import Depends, Query, Response
from retail.inventory.v1 import inventory_service_pb2 as pb

from gateway.domain.clients import ClientKind
from gateway.domain.scopes import (
    REPLENISHMENT_READ,
    STOCK_COUNTS_WRITE,
)
from gateway.http import problems
from gateway.http.integer_types import Int32
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.inventory.schemas import (
    ID_PATTERN,
    DiscrepancyTallyOut,
    ForecastOut,
    LocationId,
    PendingSaleLineOut,
    PendingSaleLinesOut,
    ReplenishmentPageOut,
    Sku,
    StockKpisOut,
)
from gateway.inventory.wire import (
    map_alert,
    map_backtest,
    map_category_kpis,
    map_daily_demand,
    map_sku_kpis,
    map_suggestion,
    optional_rate,
)
from gateway.security.authentication import Principal
from gateway.security.authorisation import require

router = ContextRouter(prefix="/v1", tags=["inventory"])


_DISCREPANCY_KINDS = {
    pb.STOCK_DISCREPANCY_KIND_NEGATIVE_STOCK: "negative_stock",
    pb.STOCK_DISCREPANCY_KIND_UNKNOWN_SKU: "unknown_sku",
    pb.STOCK_DISCREPANCY_KIND_UNKNOWN_LOCATION: "unknown_location",
    pb.STOCK_DISCREPANCY_KIND_UNREADABLE_QUANTITY: "unreadable_quantity",
}


# -- replenishment planning: forecasts, suggestions, KPIs ----------------------------------------------
# Fitting a location's demand model takes seconds the first time each day (the service caches it).
PLANNING_DEADLINE_SECONDS = 60.0
MAX_FORECAST_DAYS = 90


def planning_supplier(principal: Principal, location_id: str) -> str:
    """Whose SKUs a planning answer may show: a supplier user its own anywhere; store staff their store's only."""
    if principal.kind is ClientKind.SUPPLIER_USER:
        if not principal.supplier_id:
            raise problems.ProblemError(problems.FORBIDDEN, "this supplier user is not bound to a supplier")
        return principal.supplier_id
    principal.ensure_store(location_id)
    return ""


@router.get("/locations/{location_id}/replenishment", responses=problems.problem_responses(404, 409))
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


@router.get("/locations/{location_id}/skus/{sku}/forecast", responses=problems.problem_responses(404, 409))
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


@router.get("/locations/{location_id}/kpis", responses=problems.problem_responses(404))
async def stock_kpis(
    location_id: LocationId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(REPLENISHMENT_READ))],
    sku: Annotated[str | None, Query(pattern=ID_PATTERN, description="one SKU only")] = None,
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
        sell_through_rate=optional_rate(answer, "sell_through_rate"),
        stock_out_rate=optional_rate(answer, "stock_out_rate"),
        days_of_cover=optional_rate(answer, "days_of_cover"),
        shrink_rate=optional_rate(answer, "shrink_rate"),
        skus=[map_sku_kpis(kpis) for kpis in answer.skus],
        categories=[map_category_kpis(kpis) for kpis in answer.categories],
        discrepancies=[
            DiscrepancyTallyOut(
                kind=_DISCREPANCY_KINDS.get(tally.kind, "unknown"), recorded=tally.recorded, open=tally.open
            )
            for tally in answer.discrepancies
        ],
    )


@router.post("/locations/{location_id}/pending-sale-lines/apply", response_model=PendingSaleLinesOut)
async def apply_pending_sale_lines(
    location_id: LocationId,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(STOCK_COUNTS_WRITE))],
) -> Response:
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

    message = pb.ApplyPendingSaleLinesRequest(request_id=call.request_id, location_id=location_id)
    return await call.forward(
        lambda: resources.inventory_service.ApplyPendingSaleLines(
            message, timeout=max(resources.grpc_deadline, PLANNING_DEADLINE_SECONDS)
        ),
        lambda answer: (200, _pending_lines_out(answer)),
    )


def _pending_lines_out(answer: pb.ApplyPendingSaleLinesResponse) -> PendingSaleLinesOut:
    return PendingSaleLinesOut(
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
