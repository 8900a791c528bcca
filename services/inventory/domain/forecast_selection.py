"""Which method serves each SKU: a rolling-origin backtest on the SKU's own recent history.

For every SKU of a location, every candidate (the per-series methods of
``forecast_methods`` and the location's global model) forecasts the held-out end of the
SKU's history from several origins, a week apart, each knowing only the days before it —
exactly what it would have served then. The horizon is the one asked for, in three
bands (up to 7, 14, and 28 days; longer requests use the 28-day backtest, the longest a
short history can hold out four times): 4 origins each.

On each SKU the three candidates with the lowest mean absolute error (MAE) are averaged
with equal weights (a combination is steadier out of sample than the single winner of a
noisy race); if that combination's backtest MAE is above the better of the two
baselines' — seasonal naive and the mean of the last 28 days — the single best candidate
serves instead, and if even that lost, the better baseline itself serves. So the
forecast served is never one that lost to both baselines on that SKU's backtest.

Each method gives expected demand. The day's demand around it is taken to be gamma
distributed with variance proportional to the mean (Poisson-like noise, its dispersion
measured on the method's own backtest errors): that calibrates the 80% and 95%
prediction intervals, and gives the median — the point forecast with the least expected
absolute error. For a slow mover that sells on one day in five the median is near zero
while the mean is not; the backtest decides, per SKU, which of the two the point forecast
is (whichever had the lower MAE). Replenishment plans with the mean and the interval.

Nothing here does I/O; everything is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

import numpy as np
import numpy.typing as npt
from scipy.special import gammaincinv

from services.inventory.domain.demand_history import (
    MAX_HORIZON_DAYS,
    DemandCalendar,
    DemandHistory,
    DemandInterval,
    FloatArray,
    Forecast,
    SalesMatrix,
    to_quantity,
)
from services.inventory.domain.forecast_methods import (
    BASELINES,
    CANDIDATES,
    RECENT_MEAN,
    SEASONAL_NAIVE,
    Origin,
    candidate_forecasts,
)
from services.inventory.domain.global_demand_model import GlobalDemandModel, check_horizon

GLOBAL_MODEL = "global_gbm"
BACKTEST_HORIZONS = (7, 14, 28)
BACKTEST_ORIGINS = 4
ORIGIN_SPACING_DAYS = 7
MIN_DAYS_BEFORE_ORIGIN = 14  # two weeks of history at least before an origin is backtested
COMBINED_METHODS = 3
WAPE = "WAPE"  # total absolute error ÷ total actual demand
MAE = "MAE"  # mean absolute error per day, in units
# Quantiles of the 80% and 95% intervals, and the median.
_QUANTILES = (0.1, 0.9, 0.025, 0.975)
_MEDIAN = 0.5
_NO_DEMAND = 1e-9


@dataclass(frozen=True, slots=True)
class MethodError:
    """A method's backtest errors on one SKU: MAE (units a day) and WAPE (absolute errors ÷ demand)."""

    method: str
    mae: float
    wape: float


@dataclass(frozen=True, slots=True)
class SeriesBacktest:
    """How the forecast served for one SKU fared on its own held-out history, beside both baselines.

    ``method`` is what serves: a candidate, several joined by ``+`` (their average), or a
    baseline when nothing beat it. ``point`` says whether the point forecast is the
    expected demand (``mean``) or the median. ``coverage_80``/``_95`` are the shares of
    held-out days whose sales fell inside the intervals; ``daily_error_std`` is the root
    mean square of the expected demand's daily errors.
    """

    sku: str
    location_id: str
    horizon_days: int
    origins: tuple[date, ...]
    method: str
    point: str
    served: MethodError
    seasonal_naive: MethodError
    recent_mean: MethodError
    candidates: tuple[MethodError, ...]
    coverage_80: float
    coverage_95: float
    daily_error_std: Decimal

    @property
    def beats_baselines(self) -> bool:
        """Whether the served forecast had no larger MAE than the better baseline."""
        return self.served.mae <= min(self.seasonal_naive.mae, self.recent_mean.mae)


@dataclass(frozen=True, slots=True)
class LocationBacktest:
    """The served forecasts against both baselines over every SKU of a location (WAPE), and interval coverage."""

    horizon_days: int
    origins: tuple[date, ...]
    served_wape: float
    seasonal_naive_wape: float
    recent_mean_wape: float
    coverage_80: float
    coverage_95: float


def wape(actual: FloatArray, predicted: FloatArray) -> float:
    """Weighted absolute percentage error; 0 when there was no demand and none was forecast."""
    return _wape(float(np.sum(np.abs(actual - predicted))), float(np.sum(actual)))


def _wape(error: float, demand: float) -> float:
    if demand <= 0.0:
        return 0.0 if error <= _NO_DEMAND else math.inf
    return error / demand


@cache
def _quantile_table() -> tuple[FloatArray, dict[float, FloatArray]]:
    """Quantiles of a gamma distribution as multiples of its mean, over log10 of its shape."""
    log_shapes = np.linspace(-6.0, 6.0, 1201)
    shapes = 10.0**log_shapes
    ratios = {p: np.asarray(gammaincinv(shapes, p) / shapes, dtype=np.float64) for p in (_MEDIAN, *_QUANTILES)}
    return log_shapes, ratios


def gamma_quantile(mean: FloatArray, dispersion: FloatArray, probability: float) -> FloatArray:
    """The ``probability`` quantile of demand with this mean and variance = dispersion × mean (elementwise).

    A dispersion of zero is no uncertainty at all (the quantile is the mean); a mean of
    zero is no demand.
    """
    log_shapes, ratios = _quantile_table()
    mean = np.maximum(mean, 0.0)
    shape = mean / np.maximum(dispersion, 1e-12)
    log_shape = np.log10(np.clip(shape, 1e-6, 1e6), where=shape > 0, out=np.full(shape.shape, -6.0))
    ratio = np.interp(log_shape, log_shapes, ratios[probability])
    return np.asarray(np.where(shape >= 1e6, mean, mean * ratio), dtype=np.float64)


@dataclass
class _Scores:
    """One method's backtest on every series of a band (sums over held-out days)."""

    mean_error: FloatArray  # Σ |actual − expected|
    median_error: FloatArray  # Σ |actual − median|
    squared_error: FloatArray
    forecast_total: FloatArray

    def dispersion(self) -> FloatArray:
        return np.asarray(self.squared_error / np.maximum(self.forecast_total, _NO_DEMAND), dtype=np.float64)

    def best_error(self) -> FloatArray:
        return np.asarray(np.minimum(self.mean_error, self.median_error), dtype=np.float64)

    def median_wins(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.median_error < self.mean_error)


def _score(actual: FloatArray, held_out: npt.NDArray[np.bool_], expected: FloatArray) -> _Scores:
    """Errors of ``expected`` (series × origins × days), and of the median its own errors calibrate."""
    expected = np.where(held_out, expected, 0.0)
    error = np.where(held_out, actual - expected, 0.0)
    squared = (error**2).sum(axis=(1, 2))
    total = expected.sum(axis=(1, 2))
    dispersion = squared / np.maximum(total, _NO_DEMAND)
    median = gamma_quantile(expected, np.broadcast_to(dispersion[:, None, None], expected.shape), _MEDIAN)
    return _Scores(
        mean_error=np.abs(error).sum(axis=(1, 2)),
        median_error=np.where(held_out, np.abs(actual - median), 0.0).sum(axis=(1, 2)),
        squared_error=squared,
        forecast_total=total,
    )


@dataclass(frozen=True)
class _Band:
    """What serves each series for requests in one horizon band, and how it fared."""

    horizon_days: int
    origins: tuple[date, ...]
    methods: list[str]  # served, per series
    median_point: npt.NDArray[np.bool_]
    dispersion: FloatArray
    expected: npt.NDArray[np.float32]  # the served method's expected demand from the production origin (series × days)
    served_error: FloatArray  # Σ |actual − point| over the backtest
    baseline_errors: dict[str, FloatArray]
    candidate_errors: dict[str, FloatArray]
    demand: FloatArray  # Σ actual
    days: FloatArray  # held-out days per series
    rmse: FloatArray
    covered_80: FloatArray
    covered_95: FloatArray


class LocationForecasts:
    """Every SKU of one location forecast from ``first_day`` on, with the backtest behind each forecast."""

    def __init__(self, matrix: SalesMatrix, first_day: date, bands: dict[int, _Band], fallback: FloatArray) -> None:
        self._matrix = matrix
        self.first_day = first_day
        self.start = matrix.start
        self._bridge = (first_day - matrix.start).days
        self._bands = bands
        self._fallback = fallback  # the recent mean, for a location too short to backtest
        self._rows = {history.sku: row for row, history in enumerate(matrix.histories)}
        self.location_id = matrix.histories[0].location_id if matrix.histories else ""

    @property
    def skus(self) -> list[str]:
        return [history.sku for history in self._matrix.histories]

    def _band(self, horizon_days: int) -> _Band | None:
        for band in BACKTEST_HORIZONS:
            if min(horizon_days, BACKTEST_HORIZONS[-1]) <= band and band in self._bands:
                return self._bands[band]
        # A history too short for the band asked for: the longest one it could hold out.
        shorter = [band for band in self._bands if band < horizon_days]
        return self._bands[max(shorter)] if shorter else None

    def forecast(self, sku: str, horizon_days: int) -> Forecast | None:
        """The served forecast of ``sku`` for ``horizon_days`` days from ``first_day`` (``None``: never sold here)."""
        if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
            raise ValueError(f"horizon_days must be between 1 and {MAX_HORIZON_DAYS}, not {horizon_days}")
        row = self._rows.get(sku)
        if row is None:
            return None
        days = [self.first_day + timedelta(days=step) for step in range(horizon_days)]
        window = slice(self._bridge, self._bridge + horizon_days)
        band = self._band(horizon_days)
        if band is None:
            level = self._fallback[row]
            return Forecast(
                sku, self.location_id, self.first_day, [(day, to_quantity(level)) for day in days], method=RECENT_MEAN
            )
        expected = band.expected[row, window].astype(np.float64)
        dispersion = np.full(expected.shape, band.dispersion[row])
        lower_80, upper_80, lower_95, upper_95 = (gamma_quantile(expected, dispersion, p) for p in _QUANTILES)
        point = gamma_quantile(expected, dispersion, _MEDIAN) if band.median_point[row] else expected
        intervals = tuple(
            DemandInterval(
                to_quantity(expected[step]),
                to_quantity(lower_80[step]),
                to_quantity(upper_80[step]),
                to_quantity(lower_95[step]),
                to_quantity(upper_95[step]),
            )
            for step in range(horizon_days)
        )
        daily = [(day, to_quantity(point[step])) for step, day in enumerate(days)]
        return Forecast(sku, self.location_id, self.first_day, daily, intervals, band.methods[row])

    def forecasts(self, horizon_days: int) -> list[Forecast]:
        """Every SKU's served forecast, in the order of the histories."""
        return [forecast for sku in self.skus if (forecast := self.forecast(sku, horizon_days)) is not None]

    def backtest(self, sku: str, horizon_days: int) -> SeriesBacktest | None:
        """The backtest behind ``sku``'s forecast for this horizon (``None``: never sold, or too short a history)."""
        row = self._rows.get(sku)
        band = self._band(horizon_days)
        if row is None or band is None:
            return None
        days = max(float(band.days[row]), 1.0)
        demand = float(band.demand[row])

        def error(method: str, total: float) -> MethodError:
            return MethodError(method, total / days, _wape(total, demand))

        return SeriesBacktest(
            sku=sku,
            location_id=self.location_id,
            horizon_days=band.horizon_days,
            origins=band.origins,
            method=band.methods[row],
            point="median" if band.median_point[row] else "mean",
            served=error(band.methods[row], float(band.served_error[row])),
            seasonal_naive=error(SEASONAL_NAIVE, float(band.baseline_errors[SEASONAL_NAIVE][row])),
            recent_mean=error(RECENT_MEAN, float(band.baseline_errors[RECENT_MEAN][row])),
            candidates=tuple(error(name, float(errors[row])) for name, errors in band.candidate_errors.items()),
            coverage_80=float(band.covered_80[row]) / days,
            coverage_95=float(band.covered_95[row]) / days,
            daily_error_std=to_quantity(float(band.rmse[row])),
        )

    def location_backtest(self, horizon_days: int) -> LocationBacktest | None:
        """All SKUs together: the served forecasts' WAPE beside both baselines', and interval coverage."""
        band = self._band(horizon_days)
        if band is None:
            return None
        demand = float(band.demand.sum())
        days = max(float(band.days.sum()), 1.0)
        return LocationBacktest(
            horizon_days=band.horizon_days,
            origins=band.origins,
            served_wape=_wape(float(band.served_error.sum()), demand),
            seasonal_naive_wape=_wape(float(band.baseline_errors[SEASONAL_NAIVE].sum()), demand),
            recent_mean_wape=_wape(float(band.baseline_errors[RECENT_MEAN].sum()), demand),
            coverage_80=float(band.covered_80.sum()) / days,
            coverage_95=float(band.covered_95.sum()) / days,
        )


def fit_location_forecasts(
    histories: Sequence[DemandHistory],
    *,
    start: date,
    calendar: DemandCalendar | None = None,
    first_day: date | None = None,
) -> LocationForecasts:
    """Backtest every candidate on every SKU of one location and forecast from ``first_day`` (default ``start``).

    ``start`` is the day after the history ends; a later ``first_day`` bridges the days
    between (they are forecast, not taken as days without sales).
    """
    if not histories:
        raise ValueError("no demand history to forecast")
    first_day = first_day or start
    bridge = check_horizon(1, start, first_day)
    matrix = SalesMatrix.of(histories, start=start, calendar=calendar)
    history_days = matrix.days
    # Origins a week apart; the j-th from the end holds out at most 28 days, fewer when the history ends sooner.
    backtest_origins = {
        back: Origin(history_days - ORIGIN_SPACING_DAYS * back, min(BACKTEST_HORIZONS[-1], ORIGIN_SPACING_DAYS * back))
        for back in range(1, _furthest_origin() + 1)
        if history_days - ORIGIN_SPACING_DAYS * back >= MIN_DAYS_BEFORE_ORIGIN
    }
    production = Origin(history_days, bridge + MAX_HORIZON_DAYS)
    if history_days == 0:
        return LocationForecasts(matrix, first_day, {}, np.zeros(len(histories)))
    origins = [*backtest_origins.values(), production]
    forecasts = candidate_forecasts(matrix.sales, matrix.first_weekday, origins)
    backtest = list(backtest_origins.values())
    served_model = GlobalDemandModel.fit(matrix, history_days)
    backtest_model = GlobalDemandModel.fit(matrix, min(origin.column for origin in backtest)) if backtest else None
    if served_model is not None:
        served_global = served_model.predict([production])
        if backtest_model is not None:
            # Fitted before the earliest origin, so no backtested day was ever seen by it.
            backtest_global = backtest_model.predict(backtest)
            forecasts[GLOBAL_MODEL] = [*backtest_global, *served_global]
            if _has_events(matrix, backtest):
                _apply_event_effects(
                    matrix, backtest, forecasts, backtest_global, backtest_model.predict(backtest, events=False)
                )
        if _has_events(matrix, [production]):
            without = served_model.predict([production], events=False)
            _apply_event_effects(matrix, [production], forecasts, served_global, without, first=len(backtest))
    stored = {name: [part.astype(np.float32) for part in parts] for name, parts in forecasts.items()}
    del forecasts
    bands = {}
    positions = {back: index for index, back in enumerate(backtest_origins)}
    for horizon in BACKTEST_HORIZONS:
        first_back = -(-horizon // ORIGIN_SPACING_DAYS)
        backs = [back for back in range(first_back, first_back + BACKTEST_ORIGINS) if back in backtest_origins]
        if backs:
            bands[horizon] = _select(matrix, stored, horizon, [(back, positions[back]) for back in backs])
    fallback = stored[RECENT_MEAN][-1][:, 0].astype(np.float64)
    return LocationForecasts(matrix, first_day, bands, fallback)


def _event_days(matrix: SalesMatrix, origin: Origin) -> npt.NDArray[np.bool_]:
    """Which forecast days of each series are a promotion, holiday, day off or make-up workday (series × leads)."""
    days = slice(origin.column, origin.column + origin.leads)
    calendar = matrix.holiday[days] | matrix.day_off[days] | matrix.make_up_workday[days]
    return np.asarray(matrix.promotion[:, days] | calendar[None, :])


def _has_events(matrix: SalesMatrix, origins: Sequence[Origin]) -> bool:
    return any(bool(_event_days(matrix, origin).any()) for origin in origins)


def _apply_event_effects(
    matrix: SalesMatrix,
    origins: Sequence[Origin],
    forecasts: dict[str, list[FloatArray]],
    with_events: list[FloatArray],
    without: list[FloatArray],
    *,
    first: int = 0,
) -> None:
    """Lift (or lower) every per-series method on event days as the global model says the event does.

    The per-series methods know nothing of promotions or the calendar; the global model,
    learned across the location's SKUs, does. Its forecast with the event against without
    it is the event's effect on that SKU that day (capped at ×5 either way), applied to
    every candidate so they compete on equal terms. The baselines stay as they are.
    ``first`` is the position of ``origins[0]`` among the forecasts' origins.
    """
    for index, origin in enumerate(origins):
        events = _event_days(matrix, origin)
        effect = np.clip(with_events[index] / np.maximum(without[index], _NO_DEMAND), 0.2, 5.0)
        effect = np.where(events, effect, 1.0)
        for name in CANDIDATES:
            forecasts[name][first + index] = forecasts[name][first + index] * effect


def _furthest_origin() -> int:
    return -(-BACKTEST_HORIZONS[-1] // ORIGIN_SPACING_DAYS) + BACKTEST_ORIGINS - 1


def _select(
    matrix: SalesMatrix, forecasts: dict[str, list[npt.NDArray[np.float32]]], horizon: int, backs: list[tuple[int, int]]
) -> _Band:
    """Score every method on the band's origins, choose per series, and keep what serves."""
    sales = matrix.sales
    count = sales.shape[0]
    columns = [matrix.days - ORIGIN_SPACING_DAYS * back for back, _ in backs]
    actual = np.zeros((count, len(backs), horizon))
    held_out = np.zeros((count, len(backs), horizon), dtype=np.bool_)
    for index, column in enumerate(columns):
        known = sales[:, column : column + horizon]
        actual[:, index, : known.shape[1]] = known
        held_out[:, index, : known.shape[1]] = True

    def backtested(name: str) -> FloatArray:
        expected = np.zeros((count, len(backs), horizon))
        for index, (_, position) in enumerate(backs):
            part = forecasts[name][position][:, :horizon]
            expected[:, index, : part.shape[1]] = part
        return expected

    candidates = [name for name in (*CANDIDATES, GLOBAL_MODEL) if name in forecasts]
    expected = {name: backtested(name) for name in (*BASELINES, *candidates)}
    scores = {name: _score(actual, held_out, expected[name]) for name in expected}
    candidate_errors = np.stack([scores[name].best_error() for name in candidates], axis=1)
    ranking = np.argsort(candidate_errors, axis=1, kind="stable")
    top = ranking[:, :COMBINED_METHODS]
    combined = np.zeros((count, len(backs), horizon))
    for column, name in enumerate(candidates):
        weight = (top == column).sum(axis=1) / top.shape[1]
        if weight.any():
            combined += weight[:, None, None] * expected[name]
    combination = _score(actual, held_out, combined)
    limit = np.minimum(scores[SEASONAL_NAIVE].mean_error, scores[RECENT_MEAN].mean_error)
    best = ranking[:, 0]
    best_error = candidate_errors[np.arange(count), best]
    better_baseline = np.where(scores[SEASONAL_NAIVE].mean_error <= scores[RECENT_MEAN].mean_error, 0, 1)
    # 0: the combination, 1: the best single candidate, 2: the better baseline, as it is.
    choice = np.where(combination.best_error() <= limit, 0, np.where(best_error <= limit, 1, 2))

    production = len(forecasts[RECENT_MEAN]) - 1
    expected_served = np.zeros((count, forecasts[RECENT_MEAN][production].shape[1]), dtype=np.float32)
    backtest_served = np.where(choice[:, None, None] == 0, combined, 0.0)
    median_point = (choice == 0) & combination.median_wins()
    methods = ["+".join(candidates[column] for column in top[row]) for row in range(count)]
    for column, name in enumerate(candidates):
        weight = (top == column).sum(axis=1) / top.shape[1]
        rows = (choice == 0) & (weight > 0)
        expected_served[rows] += (weight[rows, None] * forecasts[name][production][rows]).astype(np.float32)
        single = (choice == 1) & (best == column)
        expected_served[single] = forecasts[name][production][single]
        backtest_served[single] = expected[name][single]
        median_point[single] = scores[name].median_wins()[single]
        for row in np.flatnonzero(single):
            methods[row] = name
    for index, name in enumerate(BASELINES):
        fallen_back = (choice == 2) & (better_baseline == index)
        expected_served[fallen_back] = forecasts[name][production][fallen_back]
        backtest_served[fallen_back] = expected[name][fallen_back]
        for row in np.flatnonzero(fallen_back):
            methods[row] = name
    served = _score(actual, held_out, backtest_served)
    dispersion = served.dispersion()
    median = gamma_quantile(backtest_served, np.broadcast_to(dispersion[:, None, None], backtest_served.shape), _MEDIAN)
    point = np.where(median_point[:, None, None], median, backtest_served)
    spread = np.broadcast_to(dispersion[:, None, None], backtest_served.shape)
    lower_80, upper_80, lower_95, upper_95 = (gamma_quantile(backtest_served, spread, p) for p in _QUANTILES)
    origins = tuple(matrix.first_day + timedelta(days=column) for column in sorted(columns))
    return _Band(
        horizon_days=horizon,
        origins=origins,
        methods=methods,
        median_point=median_point,
        dispersion=dispersion,
        expected=expected_served,
        served_error=np.where(held_out, np.abs(actual - point), 0.0).sum(axis=(1, 2)),
        baseline_errors={name: scores[name].mean_error for name in BASELINES},
        candidate_errors={name: candidate_errors[:, column] for column, name in enumerate(candidates)},
        demand=np.where(held_out, actual, 0.0).sum(axis=(1, 2)),
        days=held_out.sum(axis=(1, 2)).astype(np.float64),
        rmse=np.sqrt(served.squared_error / np.maximum(held_out.sum(axis=(1, 2)), 1)),
        covered_80=(held_out & (actual >= lower_80 - 1e-9) & (actual <= upper_80 + 1e-9)).sum(axis=(1, 2)),
        covered_95=(held_out & (actual >= lower_95 - 1e-9) & (actual <= upper_95 + 1e-9)).sum(axis=(1, 2)),
    )
