"""Daily demand forecasts per SKU and location, and the backtest that says whether to trust them.

One model per location is fitted across all of its SKUs (a *global* model): a single SKU
sells a handful of units a day at most, far too little to learn a weekday pattern or a
promotion uplift from its own history, while the location's SKUs together show both
clearly. Each series is divided by its own mean daily sales before fitting, so the model
learns shapes (weekday profile, promotion and holiday uplift, how recent sales carry
forward) and the SKU's scale is multiplied back afterwards. Dividing the target by the
scale and weighting the row by it makes the Poisson loss exactly that of a log-link model
with the SKU's scale as an offset, so small and large SKUs count in proportion to volume.

The regressor is scikit-learn's ``HistGradientBoostingRegressor`` with a Poisson loss
(counts are non-negative and their noise grows with their level). Features: day of week,
promotion, holiday and day-off flags, lags of 7, 14 and 28 days, rolling means over 7 and
28 days, the same-weekday mean of the last four weeks, and the trend of the last four weeks. The
forecast is recursive: each day's prediction becomes the lags and rolling means of the
days after it, so one fitted model serves any horizon from 1 to :data:`MAX_HORIZON_DAYS`.

Quantities are ``Decimal`` at the boundary like everywhere else in the service; floats
live only inside the model. Nothing here does I/O; fitting is deterministic
(``random_state`` fixed, no early stopping on a random split).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # scikit-learn's own dependency

FloatArray = npt.NDArray[np.float64]

MAX_HORIZON_DAYS = 90
# A history may stop this long before the first day forecast (see LocationDemandModel.forecast).
MAX_BRIDGE_DAYS = 366
WAPE = "WAPE"  # the backtest's metric: sum of absolute errors / sum of actual demand
QUANTITY_PLACES = Decimal("0.001")  # kilograms to the gram for loose goods; pieces are whole anyway

_LONGEST_LAG = 28  # the first day a training row can be built for
_MIN_TRAINING_DAYS = _LONGEST_LAG + 14  # below this the model has too few rows: fall back to a recent mean
_RANDOM_STATE = 20261124


@dataclass(frozen=True, slots=True)
class PromotionWindow:
    """A promotion of one SKU at one location, inclusive dates (past or already scheduled)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"promotion ends ({self.end}) before it starts ({self.start})")

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class DemandHistory:
    """Units sold per day of one SKU at one location; a day that is missing sold nothing.

    ``promotions`` are every known promotion window of the SKU at the location, including
    ones scheduled in the forecast horizon, so the forecast can expect their uplift.
    """

    sku: str
    location_id: str
    daily: Mapping[date, Decimal | float | int]
    promotions: tuple[PromotionWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class DemandCalendar:
    """What the calendar tells the model about a location's days.

    ``holidays`` are days whose demand a festival or shopping event lifts; ``days_off``
    are statutory days off, on which people shop as on a weekend whatever the weekday;
    ``make_up_workdays`` (调休) are weekend days that are official workdays, on which
    they shop as on a weekday.
    """

    holidays: frozenset[date] = frozenset()
    days_off: frozenset[date] = frozenset()
    make_up_workdays: frozenset[date] = frozenset()

    @classmethod
    def of(
        cls, holidays: Collection[date] = (), days_off: Collection[date] = (), make_up_workdays: Collection[date] = ()
    ) -> DemandCalendar:
        return cls(frozenset(holidays), frozenset(days_off), frozenset(make_up_workdays))


@dataclass(frozen=True, slots=True)
class Forecast:
    """Expected units sold per day of one SKU at one location, from ``start`` on."""

    sku: str
    location_id: str
    start: date
    daily: list[tuple[date, Decimal]]

    @property
    def horizon_days(self) -> int:
        return len(self.daily)

    def total(self, days: int | None = None) -> Decimal:
        """Expected demand over the first ``days`` days (all of them when ``None``)."""
        selected = self.daily if days is None else self.daily[:days]
        return sum((quantity for _, quantity in selected), Decimal(0))


@dataclass(frozen=True, slots=True)
class SeriesAccuracy:
    """How one SKU at one location fared in the backtest.

    ``daily_error_std`` is the standard deviation of the model's daily forecast errors over
    every holdout day: the σ that safety stock is sized from.
    """

    sku: str
    location_id: str
    model_error: float
    baseline_error: float
    daily_error_std: Decimal


@dataclass(frozen=True, slots=True)
class Backtest:
    """The model against the seasonal-naive baseline (same weekday last week) on held-out days.

    Errors are ``metric`` (WAPE: total absolute error ÷ total actual demand, lower is
    better) over every series and origin together; ``origins`` are the first forecast days
    of the rolling origins, each forecasting ``horizon_days`` days from data before it.
    """

    metric: str
    model_error: float
    baseline_error: float
    horizon_days: int
    origins: tuple[date, ...]
    series: tuple[SeriesAccuracy, ...] = field(default=(), repr=False)

    @property
    def beats_baseline(self) -> bool:
        return self.model_error < self.baseline_error

    def accuracy_of(self, sku: str, location_id: str) -> SeriesAccuracy | None:
        """The backtest of one SKU at one location (its ``daily_error_std`` sizes safety stock)."""
        return next(
            (accuracy for accuracy in self.series if (accuracy.sku, accuracy.location_id) == (sku, location_id)),
            None,
        )


def to_quantity(value: float) -> Decimal:
    """A model float as a non-negative boundary quantity."""
    return Decimal(repr(max(0.0, float(value)))).quantize(QUANTITY_PLACES)


def wape(actual: FloatArray, predicted: FloatArray) -> float:
    """Weighted absolute percentage error; 0 when there was no demand and none was forecast."""
    demand = float(np.sum(actual))
    error = float(np.sum(np.abs(actual - predicted)))
    if demand <= 0.0:
        return 0.0 if error == 0.0 else float("inf")
    return error / demand


class LocationDemandModel:
    """A demand model fitted on one location's SKUs with data before ``start``; forecasts from ``start`` on.

    Build it with :meth:`fit`; it is immutable afterwards and :meth:`forecast` may be
    called for any horizon up to :data:`MAX_HORIZON_DAYS`.
    """

    def __init__(
        self,
        histories: Sequence[DemandHistory],
        start: date,
        calendar: DemandCalendar,
        first_day: date,
        sales: FloatArray,
        scales: FloatArray,
        regressor: HistGradientBoostingRegressor | None,
    ) -> None:
        self._histories = tuple(histories)
        self.start = start
        self._calendar = calendar
        self._first_day = first_day
        self._sales = sales  # (series, days before start)
        self._scales = scales
        self._regressor = regressor

    @classmethod
    def fit(
        cls,
        histories: Sequence[DemandHistory],
        *,
        start: date,
        calendar: DemandCalendar | None = None,
    ) -> LocationDemandModel:
        """Fit on every day before ``start`` of the given series (one location's SKUs)."""
        if not histories:
            raise ValueError("no demand history to fit")
        calendar = calendar or DemandCalendar()
        first_day = min((day for history in histories for day in history.daily), default=start)
        first_day = min(first_day, start)
        days = (start - first_day).days
        sales = np.zeros((len(histories), days), dtype=np.float64)
        for row, history in enumerate(histories):
            for day, quantity in history.daily.items():
                offset = (day - first_day).days
                if 0 <= offset < days:
                    sales[row, offset] = max(0.0, float(quantity))
        # The mean over the last eight weeks: recent enough to follow a trend, long enough to be stable.
        recent = sales[:, -56:] if days else sales
        scales = np.maximum(recent.mean(axis=1) if days else np.zeros(len(histories)), 1e-6)
        model = cls(histories, start, calendar, first_day, sales, scales, None)
        if days >= _MIN_TRAINING_DAYS and float(sales.sum()) > 0.0:
            features, target, weight = model._training_rows()
            regressor = HistGradientBoostingRegressor(
                loss="poisson",
                # Small trees, few rounds: chosen on the demo backtest, where deeper or longer fits
                # start learning the noise of single SKUs (and cost more time).
                learning_rate=0.05,
                max_iter=100,
                max_leaf_nodes=7,
                min_samples_leaf=40,
                l2_regularization=1.0,
                early_stopping=False,
                random_state=_RANDOM_STATE,
            )
            with _one_thread():
                regressor.fit(features, target, sample_weight=weight)
            model._regressor = regressor
        return model

    def forecast(self, horizon_days: int, *, first_day: date | None = None) -> list[Forecast]:
        """Daily forecasts of every series for ``horizon_days`` days from ``first_day``, in the order fitted.

        ``first_day`` defaults to ``start``. A later one bridges a history that stopped
        before it (a location's sales feed fell silent, a demo history ended): the days in
        between are unknown rather than days without sales, so they are forecast too and
        carry the lags of the days returned, at most :data:`MAX_BRIDGE_DAYS` of them.
        """
        if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
            raise ValueError(f"horizon_days must be between 1 and {MAX_HORIZON_DAYS}, not {horizon_days}")
        first_day = first_day or self.start
        bridge = (first_day - self.start).days
        if not 0 <= bridge <= MAX_BRIDGE_DAYS:
            raise ValueError(
                f"the first day forecast ({first_day}) must be 0 to {MAX_BRIDGE_DAYS} days after the "
                f"history ends ({self.start - timedelta(days=1)})"
            )
        predicted = self._predict(bridge + horizon_days)[:, bridge:]
        forecasts = []
        for row, history in enumerate(self._histories):
            daily = [
                (first_day + timedelta(days=step), to_quantity(predicted[row, step])) for step in range(horizon_days)
            ]
            forecasts.append(Forecast(history.sku, history.location_id, first_day, daily))
        return forecasts

    def _predict(self, horizon_days: int) -> FloatArray:
        """Float forecasts (series × horizon), recursively feeding each day into the next day's lags."""
        known = self._sales.shape[1]
        if self._regressor is None:
            # Too little history for the model: the mean of the last four weeks, flat.
            level = self._sales[:, -_LONGEST_LAG:].mean(axis=1) if known else np.zeros(len(self._histories))
            return np.repeat(level[:, None], horizon_days, axis=1)
        extended = np.concatenate([self._sales, np.zeros((len(self._histories), horizon_days))], axis=1)
        with _one_thread():
            for step in range(horizon_days):
                column = known + step
                features = self._features(extended, np.array([column]))
                scaled = self._regressor.predict(features)
                extended[:, column] = np.maximum(scaled, 0.0) * self._scales
        return extended[:, known:]

    def _training_rows(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Features, scaled target and weights of every (series, day) with four weeks of lags behind it."""
        columns = np.arange(_LONGEST_LAG, self._sales.shape[1])
        features = self._features(self._sales, columns)
        target = (self._sales[:, columns] / self._scales[:, None]).reshape(-1)
        weight = np.repeat(self._scales, len(columns))
        return features, target, weight

    def _features(self, sales: FloatArray, columns: npt.NDArray[np.int_]) -> FloatArray:
        """One row per (series, column), series-major: calendar flags and scaled lags and means."""
        series = len(self._histories)
        scales = self._scales[:, None]
        days = [self._first_day + timedelta(days=int(column)) for column in columns]
        cumulative = np.concatenate([np.zeros((series, 1)), np.cumsum(sales, axis=1)], axis=1)

        def rolling_mean(width: int) -> FloatArray:
            result: FloatArray = (cumulative[:, columns] - cumulative[:, columns - width]) / width
            return result

        def lag(days_back: int) -> FloatArray:
            result: FloatArray = sales[:, columns - days_back]
            return result

        same_weekday = (lag(7) + lag(14) + lag(21) + lag(28)) / 4.0
        # Weekday as a number (Monday 0): the weekend is one split away, and a categorical
        # feature would put a column transformer into every one of the recursive predictions.
        day_of_week = np.broadcast_to(np.array([day.weekday() for day in days], dtype=np.float64), (series, len(days)))
        holiday = np.broadcast_to(
            np.array([day in self._calendar.holidays for day in days], dtype=np.float64), (series, len(days))
        )
        day_off = np.broadcast_to(
            np.array([day in self._calendar.days_off for day in days], dtype=np.float64), (series, len(days))
        )
        make_up_workday = np.broadcast_to(
            np.array([day in self._calendar.make_up_workdays for day in days], dtype=np.float64), (series, len(days))
        )
        promotion = np.array(
            [
                [any(window.contains(day) for window in history.promotions) for day in days]
                for history in self._histories
            ],
            dtype=np.float64,
        )
        # Trend as momentum (last two weeks against the two before), not as a time index: a
        # tree cannot extrapolate a time index and ends up replaying the last weeks it saw.
        trend = (rolling_mean(14) - (cumulative[:, columns - 14] - cumulative[:, columns - 28]) / 14) / scales
        stacked = np.stack(
            [
                day_of_week,
                promotion,
                holiday,
                day_off,
                make_up_workday,
                lag(7) / scales,
                lag(14) / scales,
                lag(28) / scales,
                rolling_mean(7) / scales,
                rolling_mean(28) / scales,
                same_weekday / scales,
                trend,
            ],
            axis=-1,
        )
        return stacked.reshape(-1, stacked.shape[-1])


def _one_thread() -> AbstractContextManager[object]:
    """Run the regressor on one OpenMP thread.

    A location's model is small: thread start-up and synchronisation cost more than they
    save (two to four times slower on a busy machine), and a service forecasting many
    locations gets its parallelism from running locations side by side instead.
    """
    limits: AbstractContextManager[object] = threadpool_limits(limits=1, user_api="openmp")
    return limits


def forecast_location(
    histories: Sequence[DemandHistory],
    *,
    start: date,
    horizon_days: int,
    calendar: DemandCalendar | None = None,
) -> list[Forecast]:
    """Forecast every SKU of one location from ``start`` on, with one model fitted on their days before it."""
    return LocationDemandModel.fit(histories, start=start, calendar=calendar).forecast(horizon_days)


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
    last_week = sales[:, -7:]
    return np.stack([last_week[:, step % 7] for step in range(horizon_days)], axis=1)


def backtest_location(
    histories: Sequence[DemandHistory],
    *,
    horizon_days: int = 7,
    origins: int = 4,
    calendar: DemandCalendar | None = None,
    end: date | None = None,
) -> Backtest:
    """Rolling-origin backtest of the model against the seasonal-naive baseline.

    The last origin forecasts the ``horizon_days`` days ending on ``end`` (default: the
    last day of any history); each earlier origin starts a week before the next. Each
    origin refits the model on the days before it only, so no future leaks into a forecast.
    """
    if not histories:
        raise ValueError("no demand history to backtest")
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise ValueError(f"horizon_days must be between 1 and {MAX_HORIZON_DAYS}, not {horizon_days}")
    if origins < 1:
        raise ValueError("a backtest needs at least one origin")
    end = end or max(day for history in histories for day in history.daily)
    last_origin = end - timedelta(days=horizon_days - 1)
    origin_days = tuple(last_origin - timedelta(weeks=back) for back in range(origins - 1, -1, -1))
    actual_parts: list[FloatArray] = []
    model_parts: list[FloatArray] = []
    baseline_parts: list[FloatArray] = []
    for origin in origin_days:
        model = LocationDemandModel.fit(histories, start=origin, calendar=calendar)
        model_parts.append(model._predict(horizon_days))
        baseline_parts.append(seasonal_naive(_padded_week(model._sales), horizon_days))
        actual_parts.append(_actual(histories, origin, horizon_days))
    actual = np.concatenate(actual_parts, axis=1)
    predicted = np.concatenate(model_parts, axis=1)
    baseline = np.concatenate(baseline_parts, axis=1)
    series = tuple(
        SeriesAccuracy(
            sku=history.sku,
            location_id=history.location_id,
            model_error=wape(actual[row], predicted[row]),
            baseline_error=wape(actual[row], baseline[row]),
            daily_error_std=to_quantity(float(np.std(actual[row] - predicted[row]))),
        )
        for row, history in enumerate(histories)
    )
    return Backtest(
        metric=WAPE,
        model_error=wape(actual, predicted),
        baseline_error=wape(actual, baseline),
        horizon_days=horizon_days,
        origins=origin_days,
        series=series,
    )


def _padded_week(sales: FloatArray) -> FloatArray:
    """The last seven known days, zero-padded in front when the history is shorter than a week."""
    if sales.shape[1] >= 7:
        return sales
    return np.concatenate([np.zeros((sales.shape[0], 7 - sales.shape[1])), sales], axis=1)


def _actual(histories: Sequence[DemandHistory], start: date, horizon_days: int) -> FloatArray:
    """What each series really sold on the ``horizon_days`` days from ``start``."""
    days = [start + timedelta(days=step) for step in range(horizon_days)]
    return np.array(
        [[max(0.0, float(history.daily.get(day, 0))) for day in days] for history in histories], dtype=np.float64
    )
