"""The global demand model: one gradient-boosting model learned across all of a location's SKUs.

A single SKU sells a handful of units a day at most, far too little to learn a promotion
uplift or a holiday effect from its own history; the location's SKUs together show them.
The model learns *shapes* — how a day relates to the SKU's recent level — and each
forecast multiplies them back by the SKU's level. That level is the mean of the 28 days
before the day forecast (its *recent* level, at least one unit in 28 days), never the
whole-history mean: a series that has drifted a long way is scaled at what it sells now,
not at what it sold a year ago. Dividing the target by that level and weighting the row
by it makes the Poisson loss exactly that of a log-link model with the level as an
offset, so small and large SKUs count in proportion to their volume.

The regressor is scikit-learn's ``HistGradientBoostingRegressor`` with a Poisson loss
(counts are non-negative and their noise grows with their level). Features, all relative
to the recent level: day of week, promotion, holiday, day-off and make-up-workday flags,
lags of 7, 14 and 28 days, the means of the last 7 and 91 days (the long-run level
against the recent one: a level shift), the same-weekday mean of the last four weeks, and
the last two weeks against the two before (momentum). A lag the history does not reach
is missing (the regressor handles missing values), not zero. The forecast is recursive:
each day's prediction becomes the lags and means of the days after it.

Training uses the last year before the cut, at most :data:`MAX_TRAINING_ROWS` rows (drawn
with a fixed seed in proportion to their weight when there are more), so a location of
thousands of SKUs fits in seconds; fitting is deterministic (``random_state`` fixed, no
early stopping on a random split).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import date

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # scikit-learn's own dependency

from services.inventory.domain.demand_history import (
    MAX_BRIDGE_DAYS,
    MAX_HORIZON_DAYS,
    DemandCalendar,
    DemandHistory,
    FloatArray,
    Forecast,
    SalesMatrix,
    to_quantity,
)
from services.inventory.domain.forecast_methods import Origin

MIN_TRAINING_DAYS = 42  # four weeks of lags, then two weeks of rows to learn from
MAX_TRAINING_ROWS = 150_000
TRAINING_DAYS = 364
_LONG_WINDOW = 91
_RANDOM_STATE = 20261124
_FEATURES = 12

IntArray = npt.NDArray[np.int_]


class GlobalDemandModel:
    """A regressor fitted on one location's SKUs with the days before ``cut``; forecasts from any later origin."""

    def __init__(self, matrix: SalesMatrix, regressor: HistGradientBoostingRegressor) -> None:
        self._matrix = matrix
        self._regressor = regressor

    @classmethod
    def fit(cls, matrix: SalesMatrix, cut: int) -> GlobalDemandModel | None:
        """Fit on the columns before ``cut``; ``None`` when there is too little history or no sale at all."""
        sales = matrix.sales[:, :cut]
        if cut < MIN_TRAINING_DAYS or float(sales.sum()) <= 0.0:
            return None
        first = max(28, cut - TRAINING_DAYS)
        grid = np.meshgrid(np.arange(sales.shape[0]), np.arange(first, cut), indexing="ij")
        series, columns = grid[0].reshape(-1), grid[1].reshape(-1)
        cumulative = np.concatenate([np.zeros((sales.shape[0], 1)), np.cumsum(sales, axis=1)], axis=1)
        weighted = series.size <= MAX_TRAINING_ROWS
        if not weighted:
            # Rows drawn in proportion to their weight (the recent level) stand in for the weights themselves:
            # the same loss in expectation, and the regressor's binning is much faster without weights.
            level = cumulative[series, columns] - cumulative[series, np.maximum(columns - 28, 0)]
            weight = np.maximum(level / np.minimum(columns, 28), 1.0 / 28)
            chosen = np.random.default_rng(_RANDOM_STATE).choice(
                series.size, MAX_TRAINING_ROWS, replace=False, p=weight / weight.sum()
            )
            chosen.sort()
            series, columns = series[chosen], columns[chosen]

        def window_sum(width: int) -> tuple[FloatArray, FloatArray]:
            begin = np.maximum(columns - width, 0)
            total: FloatArray = cumulative[series, columns] - cumulative[series, begin]
            return total, (columns - begin).astype(np.float64)

        def lag(days: int) -> FloatArray:
            back = columns - days
            return np.where(back >= 0, sales[series, np.maximum(back, 0)], np.nan)

        features, scale = _features(matrix, series, columns, window_sum, lag)
        regressor = HistGradientBoostingRegressor(
            loss="poisson",
            # Few, small trees: a global model should learn the shapes every SKU shares, not one SKU's noise.
            learning_rate=0.1,
            max_iter=100,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            # 64 bins per feature are plenty for trees of 15 leaves, and binning weighted rows costs per bin.
            max_bins=63,
            early_stopping=False,
            random_state=_RANDOM_STATE,
        )
        with _one_thread():
            regressor.fit(features, sales[series, columns] / scale, sample_weight=scale if weighted else None)
        return cls(matrix, regressor)

    def predict(self, origins: Sequence[Origin], *, events: bool = True) -> list[FloatArray]:
        """Expected units of every series for ``leads`` days from each origin (series × leads per origin).

        All origins advance together, one day per regressor call: each day's prediction is
        written into that origin's copy of the history before the next day's features are read.
        ``events=False`` predicts as if no day of the forecast were a promotion, holiday, day off
        or make-up workday: the forecast against which those events' effect is measured.
        """
        if not origins:
            return []
        sales = self._matrix.sales
        count = sales.shape[0]
        horizon = max(origin.leads for origin in origins)
        windows = []
        first_valid = []
        for origin in origins:
            known = sales[:, max(0, origin.column - _LONG_WINDOW) : origin.column]
            padding = _LONG_WINDOW - known.shape[1]
            windows.append(np.concatenate([np.zeros((count, padding)), known, np.zeros((count, horizon))], axis=1))
            first_valid.append(np.full(count, padding))
        values = np.concatenate(windows, axis=0)
        valid_from = np.concatenate(first_valid)
        series = np.tile(np.arange(count), len(origins))
        starts = np.repeat(np.array([origin.column for origin in origins]), count)
        with _one_thread():
            for step in range(horizon):
                position = _LONG_WINDOW + step

                def window_sum(width: int, position: int = position) -> tuple[FloatArray, FloatArray]:
                    begin = np.maximum(position - width, valid_from)
                    total: FloatArray = values[:, position - width : position].sum(axis=1)
                    return total, (position - begin).astype(np.float64)

                def lag(days: int, position: int = position) -> FloatArray:
                    return np.where(position - days >= valid_from, values[:, position - days], np.nan)

                features, scale = _features(self._matrix, series, starts + step, window_sum, lag)
                if not events:
                    features[:, 1:5] = 0.0
                values[:, position] = np.maximum(self._regressor.predict(features), 0.0) * scale
        predicted = values[:, _LONG_WINDOW:]
        return [predicted[index * count : (index + 1) * count, : origin.leads] for index, origin in enumerate(origins)]


def _features(
    matrix: SalesMatrix,
    series: IntArray,
    columns: IntArray,
    window_sum: Callable[[int], tuple[FloatArray, FloatArray]],
    lag: Callable[[int], FloatArray],
) -> tuple[FloatArray, FloatArray]:
    """One row per (series, column): calendar flags and lags and means relative to the recent level; and that level."""

    def window_mean(width: int) -> FloatArray:
        total, days = window_sum(width)
        return np.where(days > 0, total / np.maximum(days, 1.0), np.nan)

    # The recent level: at least one unit in 28 days, so a quiet spell does not divide by zero.
    scale = np.maximum(np.nan_to_num(window_mean(28)), 1.0 / 28)
    recent_fortnight, fortnight_days = window_sum(14)
    month, month_days = window_sum(28)
    earlier_days = month_days - fortnight_days
    earlier_fortnight = np.where(earlier_days > 0, (month - recent_fortnight) / np.maximum(earlier_days, 1.0), np.nan)
    lags = np.stack([lag(7), lag(14), lag(21), lag(28)])
    known = ~np.isnan(lags)
    same_weekday = np.where(known.any(axis=0), np.nansum(lags, axis=0) / np.maximum(known.sum(axis=0), 1), np.nan)
    features = np.empty((series.size, _FEATURES))
    features[:, 0] = (matrix.first_weekday + columns) % 7
    features[:, 1] = matrix.promotion[series, columns]
    features[:, 2] = matrix.holiday[columns]
    features[:, 3] = matrix.day_off[columns]
    features[:, 4] = matrix.make_up_workday[columns]
    features[:, 5] = lags[0] / scale
    features[:, 6] = lags[1] / scale
    features[:, 7] = lags[3] / scale
    features[:, 8] = window_mean(7) / scale
    features[:, 9] = window_mean(_LONG_WINDOW) / scale
    features[:, 10] = same_weekday / scale
    features[:, 11] = (window_mean(14) - earlier_fortnight) / scale
    return features, scale


def _one_thread() -> AbstractContextManager[object]:
    """Run the regressor on one OpenMP thread.

    A location's model is small: thread start-up and synchronisation cost more than they
    save (two to four times slower on a busy machine), and a service forecasting many
    locations gets its parallelism from running locations side by side instead.
    """
    limits: AbstractContextManager[object] = threadpool_limits(limits=1, user_api="openmp")
    return limits


class LocationDemandModel:
    """The global model fitted on every day before ``start`` of one location's SKUs, on its own.

    The served forecast picks per SKU among this and the per-series methods (see
    ``forecast_selection``); this class is the model alone, e.g. to see what a promotion
    flag does. Without enough history it forecasts each SKU's mean of the last 28 days.
    """

    def __init__(self, matrix: SalesMatrix, model: GlobalDemandModel | None) -> None:
        self._matrix = matrix
        self._model = model
        self.start = matrix.start

    @classmethod
    def fit(
        cls, histories: Sequence[DemandHistory], *, start: date, calendar: DemandCalendar | None = None
    ) -> LocationDemandModel:
        if not histories:
            raise ValueError("no demand history to fit")
        matrix = SalesMatrix.of(histories, start=start, calendar=calendar)
        return cls(matrix, GlobalDemandModel.fit(matrix, matrix.days))

    def forecast(self, horizon_days: int, *, first_day: date | None = None) -> list[Forecast]:
        """Daily forecasts of every series for ``horizon_days`` days from ``first_day`` (default: ``start``).

        A later ``first_day`` bridges a history that stopped before it: the days in between
        are forecast too (they are unknown, not days without sales), at most
        :data:`MAX_BRIDGE_DAYS` of them.
        """
        first_day = first_day or self.start
        bridge = check_horizon(horizon_days, self.start, first_day)
        origin = Origin(self._matrix.days, bridge + horizon_days)
        if self._model is not None:
            predicted = self._model.predict([origin])[0]
        else:
            recent = self._matrix.sales[:, -28:]
            level = recent.mean(axis=1) if recent.shape[1] else np.zeros(self._matrix.sales.shape[0])
            predicted = np.repeat(level[:, None], origin.leads, axis=1)
        return [
            Forecast(
                history.sku,
                history.location_id,
                first_day,
                [
                    (day, to_quantity(predicted[row, bridge + step]))
                    for step, day in enumerate(_days(first_day, horizon_days))
                ],
                method="global_gbm",
            )
            for row, history in enumerate(self._matrix.histories)
        ]


def check_horizon(horizon_days: int, start: date, first_day: date) -> int:
    """The days between the history's end and ``first_day`` (the bridge), after checking both limits."""
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise ValueError(f"horizon_days must be between 1 and {MAX_HORIZON_DAYS}, not {horizon_days}")
    bridge = (first_day - start).days
    if not 0 <= bridge <= MAX_BRIDGE_DAYS:
        raise ValueError(
            f"the first day forecast ({first_day}) must be 0 to {MAX_BRIDGE_DAYS} days after the "
            f"history ends ({date.fromordinal(start.toordinal() - 1)})"
        )
    return bridge


def _days(first_day: date, count: int) -> list[date]:
    return [date.fromordinal(first_day.toordinal() + step) for step in range(count)]
