"""What the forecasters read and answer: daily sales histories in, daily forecasts with intervals out.

Quantities are ``Decimal`` at the boundary like everywhere else in the service; inside, a
location's histories become one float matrix (:class:`SalesMatrix`, SKUs × days) that the
methods work on all at once. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MAX_HORIZON_DAYS = 90
# A history may stop this long before the first day forecast (the days between are forecast too).
MAX_BRIDGE_DAYS = 366
QUANTITY_PLACES = Decimal("0.001")  # kilograms to the gram for loose goods; pieces are whole anyway
# The upper end of a 95% interval is the 97.5% quantile: this many σ above the mean for a normal.
_Z_975 = 1.959963984540054


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
class DemandInterval:
    """The spread of one day's demand: its expected value and its 80% and 95% prediction intervals."""

    mean: Decimal
    lower_80: Decimal
    upper_80: Decimal
    lower_95: Decimal
    upper_95: Decimal

    @property
    def upper_error_std(self) -> Decimal:
        """How far demand may run above its mean, as a σ: the 95% interval's upper half-width ÷ 1.96.

        The upper half, because running out is what safety stock guards against, and slow
        movers' demand is skewed: far more room above the mean than below it.
        """
        return Decimal(repr(max(0.0, float(self.upper_95 - self.mean)) / _Z_975)).quantize(QUANTITY_PLACES)


@dataclass(frozen=True, slots=True)
class Forecast:
    """Units one SKU at one location is forecast to sell per day, from ``start`` on.

    ``daily`` is the point forecast (the figure with the lowest expected absolute error:
    the median of the day's demand). ``intervals`` — one per day, empty when there was no
    backtest to calibrate them on — hold the expected demand and its 80%/95% intervals;
    ``method`` names the method (or combination) that served.
    """

    sku: str
    location_id: str
    start: date
    daily: list[tuple[date, Decimal]]
    intervals: tuple[DemandInterval, ...] = ()
    method: str = ""

    @property
    def horizon_days(self) -> int:
        return len(self.daily)

    def total(self, days: int | None = None) -> Decimal:
        """The point forecast summed over the first ``days`` days (all of them when ``None``)."""
        selected = self.daily if days is None else self.daily[:days]
        return sum((quantity for _, quantity in selected), Decimal(0))

    def expected_total(self, days: int | None = None) -> Decimal:
        """Expected demand over the first ``days`` days: what stock must cover on average.

        The point forecast when no interval was calibrated (then both are the same figure).
        """
        if not self.intervals:
            return self.total(days)
        selected = self.intervals if days is None else self.intervals[:days]
        return sum((interval.mean for interval in selected), Decimal(0))

    def upper_error_std(self, days: int) -> Decimal:
        """The root mean square of the first ``days`` days' upper-tail σ (zero without intervals)."""
        selected = self.intervals[: max(1, days)]
        if not selected:
            return Decimal(0)
        mean_square = sum(float(interval.upper_error_std) ** 2 for interval in selected) / len(selected)
        return Decimal(repr(math.sqrt(mean_square))).quantize(QUANTITY_PLACES)


def to_quantity(value: float) -> Decimal:
    """A model float as a non-negative boundary quantity."""
    return Decimal(repr(max(0.0, float(value)))).quantize(QUANTITY_PLACES)


@dataclass(frozen=True)
class SalesMatrix:
    """One location's histories as floats: ``sales[series, day]`` for the days ``first_day`` .. ``start`` − 1.

    ``promotions`` and the calendar flags cover ``extra_days`` more days after ``start``
    (the days that may be forecast), for the global model's features.
    """

    histories: tuple[DemandHistory, ...]
    first_day: date
    start: date
    sales: FloatArray
    promotion: npt.NDArray[np.bool_]  # (series, days + extra_days)
    holiday: npt.NDArray[np.bool_]  # (days + extra_days,)
    day_off: npt.NDArray[np.bool_]
    make_up_workday: npt.NDArray[np.bool_]

    @classmethod
    def of(
        cls,
        histories: Sequence[DemandHistory],
        *,
        start: date,
        calendar: DemandCalendar | None = None,
        extra_days: int = MAX_BRIDGE_DAYS + MAX_HORIZON_DAYS,
    ) -> SalesMatrix:
        """Every day before ``start`` from the first day any history has (a location's SKUs share one calendar)."""
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
        span = days + extra_days
        calendar_days = [first_day + timedelta(days=offset) for offset in range(span)]
        promotion = np.zeros((len(histories), span), dtype=np.bool_)
        for row, history in enumerate(histories):
            for window in history.promotions:
                begin = max(0, (window.start - first_day).days)
                end = min(span, (window.end - first_day).days + 1)
                if begin < end:
                    promotion[row, begin:end] = True
        return cls(
            tuple(histories),
            first_day,
            start,
            sales,
            promotion,
            np.array([day in calendar.holidays for day in calendar_days], dtype=np.bool_),
            np.array([day in calendar.days_off for day in calendar_days], dtype=np.bool_),
            np.array([day in calendar.make_up_workdays for day in calendar_days], dtype=np.bool_),
        )

    @property
    def days(self) -> int:
        return int(self.sales.shape[1])

    @property
    def first_weekday(self) -> int:
        """Monday 0: the weekday of column 0."""
        return self.first_day.weekday()
