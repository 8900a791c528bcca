"""Daily demand forecasts per SKU and location that must beat simple baselines on each SKU's own history.

A location's forecasts are made in three steps, each in a module of its own:

1. ``forecast_methods`` — per-series methods computed for every SKU at once: moving
   averages over recent windows with a weekday profile, the level since the last level
   shift, exponential smoothing (Holt-Winters) with and without a damped trend and a
   weekly season, and Croston / SBA / TSB for slow movers; plus the two baselines,
   seasonal naive (last week again) and the mean of the last 28 days.
2. ``global_demand_model`` — one gradient-boosting model over all of the location's SKUs,
   each scaled by its *recent* level, that knows promotions and the calendar.
3. ``forecast_selection`` — a rolling-origin backtest on each SKU's own recent history
   (four origins a week apart, the horizon asked for) picks what serves the SKU: the
   average of its three best candidates, else its best one, and never a method that
   lost to both baselines there (then the better baseline serves). The backtest errors
   also calibrate the 80%/95% prediction intervals that safety stock is sized from.

``demand_history`` holds the types they share. This module is what the rest of the
service imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from services.inventory.domain import forecast_methods
from services.inventory.domain.demand_history import (
    MAX_BRIDGE_DAYS,
    MAX_HORIZON_DAYS,
    QUANTITY_PLACES,
    DemandCalendar,
    DemandHistory,
    DemandInterval,
    FloatArray,
    Forecast,
    PromotionWindow,
    SalesMatrix,
    to_quantity,
)
from services.inventory.domain.forecast_selection import (
    BACKTEST_HORIZONS,
    BACKTEST_ORIGINS,
    GLOBAL_MODEL,
    MAE,
    WAPE,
    LocationBacktest,
    LocationForecasts,
    MethodError,
    SeriesBacktest,
    fit_location_forecasts,
    gamma_quantile,
    wape,
)
from services.inventory.domain.global_demand_model import LocationDemandModel

__all__ = [
    "BACKTEST_HORIZONS",
    "BACKTEST_ORIGINS",
    "GLOBAL_MODEL",
    "MAE",
    "MAX_BRIDGE_DAYS",
    "MAX_HORIZON_DAYS",
    "QUANTITY_PLACES",
    "WAPE",
    "DemandCalendar",
    "DemandHistory",
    "DemandInterval",
    "Forecast",
    "LocationBacktest",
    "LocationDemandModel",
    "LocationForecasts",
    "MethodError",
    "PromotionWindow",
    "SalesMatrix",
    "SeriesBacktest",
    "fit_location_forecasts",
    "forecast_demand",
    "forecast_location",
    "gamma_quantile",
    "seasonal_naive",
    "to_quantity",
    "wape",
]


def forecast_location(
    histories: Sequence[DemandHistory],
    *,
    start: date,
    horizon_days: int,
    calendar: DemandCalendar | None = None,
) -> list[Forecast]:
    """The served forecast of every SKU of one location from ``start`` on (the day after the history ends)."""
    return fit_location_forecasts(histories, start=start, calendar=calendar).forecasts(horizon_days)


def forecast_demand(
    history: DemandHistory,
    *,
    start: date,
    horizon_days: int,
    calendar: DemandCalendar | None = None,
) -> Forecast:
    """Forecast one SKU at one location on its own history (prefer :func:`forecast_location` for many)."""
    return forecast_location([history], start=start, horizon_days=horizon_days, calendar=calendar)[0]


def seasonal_naive(sales: FloatArray, horizon_days: int) -> FloatArray:
    """The baseline: each future day sells what the same weekday sold in the last known week."""
    return forecast_methods.seasonal_naive(np.asarray(sales, dtype=np.float64), sales.shape[1], horizon_days)
