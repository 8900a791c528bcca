"""The planning RPCs' wire mapping (forecast, replenishment, KPIs); the servicer in grpc_api stays thin."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from retail.common.v1 import paging_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb

from servicekit.errors import InvalidArgument
from services.inventory.adapters.replenishment_messages import map_alert, map_suggestion
from services.inventory.domain.forecasting import DemandInterval, LocationBacktest, MethodError, SeriesBacktest
from services.inventory.domain.kpis import CategoryKpis, DiscrepancyTally, LocationKpis, SkuKpis
from services.inventory.entrypoints.wire import map_decimal, map_discrepancy_kind
from services.inventory.service_layer.replenishment import ForecastAnswer, ReplenishmentPage

ERROR_PLACES = Decimal("0.0001")


def map_error(value: float) -> Decimal | None:
    """A backtest error to four places; ``None`` when undefined (no demand, yet some was forecast)."""
    return Decimal(repr(value)).quantize(ERROR_PLACES) if math.isfinite(value) else None


def map_method_error(error: MethodError) -> pb.MethodBacktest:
    return pb.MethodBacktest(
        method=error.method,
        mae=map_decimal(map_error(error.mae)),
        wape=map_decimal(map_error(error.wape)),
    )


def map_share(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(ERROR_PLACES)


def map_backtest(backtest: SeriesBacktest | None, location: LocationBacktest) -> pb.ForecastBacktest:
    """The SKU's backtest (``None``: the SKU never sold here) beside the location's."""
    return pb.ForecastBacktest(
        metric="wape",
        model_error=map_decimal(map_error(backtest.served.wape)) if backtest is not None else None,
        baseline_error=map_decimal(map_error(backtest.seasonal_naive.wape)) if backtest is not None else None,
        location_model_error=map_decimal(map_error(location.served_wape)),
        location_baseline_error=map_decimal(map_error(location.seasonal_naive_wape)),
        location_recent_mean_error=map_decimal(map_error(location.recent_mean_wape)),
        horizon_days=location.horizon_days,
        origin_dates=[origin.isoformat() for origin in location.origins],
        method=backtest.method if backtest is not None else "",
        point_estimate=backtest.point if backtest is not None else "",
        served=map_method_error(backtest.served) if backtest is not None else None,
        seasonal_naive=map_method_error(backtest.seasonal_naive) if backtest is not None else None,
        recent_mean=map_method_error(backtest.recent_mean) if backtest is not None else None,
        candidates=[map_method_error(candidate) for candidate in backtest.candidates] if backtest is not None else [],
        coverage_80=map_decimal(map_share(backtest.coverage_80)) if backtest is not None else None,
        coverage_95=map_decimal(map_share(backtest.coverage_95)) if backtest is not None else None,
    )


def map_daily_demand(day: date, quantity: Decimal, interval: DemandInterval | None) -> pb.DailyDemand:
    return pb.DailyDemand(
        date=day.isoformat(),
        quantity=map_decimal(quantity),
        expected_quantity=map_decimal(interval.mean) if interval is not None else None,
        lower_80=map_decimal(interval.lower_80) if interval is not None else None,
        upper_80=map_decimal(interval.upper_80) if interval is not None else None,
        lower_95=map_decimal(interval.lower_95) if interval is not None else None,
        upper_95=map_decimal(interval.upper_95) if interval is not None else None,
    )


def map_forecast(location_id: str, answer: ForecastAnswer) -> pb.GetForecastResponse:
    intervals: Sequence[DemandInterval | None] = answer.forecast.intervals or [None] * answer.forecast.horizon_days
    return pb.GetForecastResponse(
        location_id=location_id,
        sku=answer.forecast.sku,
        supplier_id=answer.supplier_id,
        forecast=[
            map_daily_demand(day, quantity, interval)
            for (day, quantity), interval in zip(answer.forecast.daily, intervals, strict=True)
        ],
        backtest=map_backtest(answer.backtest, answer.location_backtest)
        if answer.location_backtest is not None
        else None,
        history_end_date=answer.history_end.isoformat() if answer.history_end is not None else "",
    )


def map_replenishment(page: ReplenishmentPage) -> pb.ListReplenishmentResponse:
    return pb.ListReplenishmentResponse(
        location_id=page.location_id,
        as_of_date=page.as_of.isoformat(),
        suggestions=[
            map_suggestion(planned.suggestion, planned.level.position, planned.level.supplier_id, planned.days_of_cover)
            for planned in page.levels
        ],
        alerts=[map_alert(planned.alert) for planned in page.levels if planned.alert is not None],
        page_info=paging_pb2.PageInfo(next_page_token=page.levels[-1].level.sku if page.more else ""),
    )


def map_sku_kpis(kpis: SkuKpis) -> pb.SkuStockKpis:
    return pb.SkuStockKpis(
        sku=kpis.sku,
        from_date=kpis.start.isoformat(),
        to_date=kpis.end.isoformat(),
        days=kpis.days,
        units_sold=map_decimal(kpis.units_sold),
        shrink=map_decimal(kpis.shrink),
        closing_stock=map_decimal(kpis.closing_stock),
        stock_out_rate=map_decimal(kpis.stock_out_rate),
        sell_through_rate=map_decimal(kpis.sell_through_rate),
        days_of_cover=map_decimal(kpis.days_of_cover),
        shrink_rate=map_decimal(kpis.shrink_rate),
    )


def map_kpis(
    location_id: str, start: date, end: date, kpis: LocationKpis | None, discrepancies: Sequence[DiscrepancyTally]
) -> pb.GetStockKpisResponse:
    response = pb.GetStockKpisResponse(location_id=location_id, from_date=start.isoformat(), to_date=end.isoformat())
    response.discrepancies.extend(
        pb.DiscrepancyTally(kind=map_discrepancy_kind(tally.kind), recorded=tally.recorded, open=tally.open)
        for tally in discrepancies
    )
    if kpis is None:
        return response
    response.skus_carried = kpis.skus_carried
    response.skus_sold = kpis.skus_sold
    for name in ("sell_through_rate", "stock_out_rate", "days_of_cover", "shrink_rate"):
        value = map_decimal(getattr(kpis, name))
        if value is not None:
            getattr(response, name).CopyFrom(value)
    response.skus.extend(map_sku_kpis(sku) for sku in kpis.by_sku)
    response.categories.extend(map_category_kpis(category) for category in kpis.by_category)
    return response


def map_category_kpis(category: CategoryKpis) -> pb.CategoryStockKpis:
    kpis = category.kpis
    return pb.CategoryStockKpis(
        category_id=category.category_id,
        skus_carried=kpis.skus_carried,
        skus_sold=kpis.skus_sold,
        sell_through_rate=map_decimal(kpis.sell_through_rate),
        stock_out_rate=map_decimal(kpis.stock_out_rate),
        days_of_cover=map_decimal(kpis.days_of_cover),
        shrink_rate=map_decimal(kpis.shrink_rate),
        overstocked_skus=category.overstocked_skus,
        overstock_rate=map_decimal(category.overstock_rate),
    )


def parse_day(text: str, field_name: str) -> date | None:
    """An optional "YYYY-MM-DD" request field."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"{field_name} {text!r} is not YYYY-MM-DD", reason="invalid-date") from None
