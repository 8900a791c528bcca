"""HTTP ↔ protobuf for the inventory routes: the messages a request becomes and the ``map_*`` answers."""

from __future__ import annotations

from datetime import date
from typing import Any

from retail.common.v1 import money_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb

from gateway.inventory.schemas import (
    AlertOut,
    Allocation,
    BacktestOut,
    CategoryKpisOut,
    DailyDemandOut,
    MethodBacktestOut,
    ReservationOut,
    SkuKpisOut,
    StockLevel,
    SuggestionOut,
    TransferListingOut,
    TransferOut,
)
from servicekit.protowire import moment

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


_ALERT_KINDS = {pb.STOCK_ALERT_KIND_LOW_STOCK: "low_stock", pb.STOCK_ALERT_KIND_OVERSTOCK: "overstock"}


def optional_decimal(value: money_pb2.Decimal, present: bool = True) -> str | None:
    return value.value if present else None


def map_method_backtest(method: pb.MethodBacktest) -> MethodBacktestOut:
    return MethodBacktestOut(
        method=method.method,
        mae=optional_decimal(method.mae, method.HasField("mae")),
        wape=optional_decimal(method.wape, method.HasField("wape")),
    )


def map_backtest(backtest: pb.ForecastBacktest) -> BacktestOut:
    return BacktestOut(
        metric=backtest.metric,
        model_error=optional_decimal(backtest.model_error, backtest.HasField("model_error")),
        baseline_error=optional_decimal(backtest.baseline_error, backtest.HasField("baseline_error")),
        location_model_error=backtest.location_model_error.value,
        location_baseline_error=backtest.location_baseline_error.value,
        location_recent_mean_error=optional_decimal(
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
        coverage_80=optional_decimal(backtest.coverage_80, backtest.HasField("coverage_80")),
        coverage_95=optional_decimal(backtest.coverage_95, backtest.HasField("coverage_95")),
    )


def map_daily_demand(day: pb.DailyDemand) -> DailyDemandOut:
    return DailyDemandOut(
        date=date.fromisoformat(day.date),
        quantity=day.quantity.value,
        expected_quantity=optional_decimal(day.expected_quantity, day.HasField("expected_quantity")),
        lower_80=optional_decimal(day.lower_80, day.HasField("lower_80")),
        upper_80=optional_decimal(day.upper_80, day.HasField("upper_80")),
        lower_95=optional_decimal(day.lower_95, day.HasField("lower_95")),
        upper_95=optional_decimal(day.upper_95, day.HasField("upper_95")),
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
        days_of_cover=optional_decimal(suggestion.days_of_cover, suggestion.HasField("days_of_cover")),
    )


def map_alert(alert: pb.StockAlert) -> AlertOut:
    return AlertOut(
        sku=alert.sku,
        kind=_ALERT_KINDS.get(alert.kind, "unknown"),
        available_to_promise=alert.available_to_promise.value,
        reorder_point=alert.reorder_point.value,
        days_of_cover=optional_decimal(alert.days_of_cover, alert.HasField("days_of_cover")),
        overstock_cover_days=alert.overstock_cover_days.value,
    )


def optional_rate(message: Any, name: str) -> str | None:
    return optional_decimal(getattr(message, name), message.HasField(name))


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
        sell_through_rate=optional_rate(kpis, "sell_through_rate"),
        days_of_cover=optional_rate(kpis, "days_of_cover"),
        shrink_rate=optional_rate(kpis, "shrink_rate"),
    )


def quantity(value: str) -> money_pb2.Decimal:
    return money_pb2.Decimal(value=value)


def map_category_kpis(kpis: pb.CategoryStockKpis) -> CategoryKpisOut:
    return CategoryKpisOut(
        category_id=kpis.category_id,
        skus_carried=kpis.skus_carried,
        skus_sold=kpis.skus_sold,
        sell_through_rate=optional_rate(kpis, "sell_through_rate"),
        stock_out_rate=optional_rate(kpis, "stock_out_rate"),
        days_of_cover=optional_rate(kpis, "days_of_cover"),
        shrink_rate=optional_rate(kpis, "shrink_rate"),
        overstocked_skus=kpis.overstocked_skus,
        overstock_rate=optional_rate(kpis, "overstock_rate"),
    )


def map_transfer_listing(listing: pb.TransferListing) -> TransferListingOut:
    return TransferListingOut(
        **map_transfer(listing.transfer),
        requested_at=moment(listing.requested_at),
        updated_at=moment(listing.updated_at),
    )


TRANSFER_STATUS_NUMBERS = {name: number for number, name in _TRANSFER_STATUSES.items()}
