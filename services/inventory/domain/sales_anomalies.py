"""Sales anomalies: a store × leaf category that sold outside its expected band on a closed business day.

The band of a day comes from one of two places:

* ``forecast`` — where every SKU of the category that sold at the location before the day
  has a calibrated forecast for it (the SKU's fit made the evening before, knowing only
  the days before). Each SKU's demand is gamma distributed with its expected value and a
  variance the 95% interval implies (σ ≈ (upper₉₅ − lower₉₅) ÷ (2 × 1.96)). SKUs are taken
  to be **independent**, so the category's expected units are the sum of the SKUs' and
  its variance the sum of theirs (the root-sum-of-squares of their half-widths); the
  category's band is the gamma with that mean and variance (skewed like the SKUs' when
  the volume is small, near normal when it is large). Independence ignores what moves a
  whole store at once (weather, traffic), which makes the band narrower than it should
  be: the backtest in ``bench/sales_anomalies.py`` measures what that costs in false alarms.
* ``seasonal_baseline`` — where a forecast does not cover the category (a SKU without a
  backtest, or no fit at all): the category's units on the same weekday of the previous
  ``baseline_weeks`` weeks, counting only weeks after the category first sold at the
  location, at least ``min_baseline_weeks`` of them. Expected is their mean; the variance
  is their sample variance, never less than the mean (Poisson: with four weeks the sample
  spread can be small by chance), inflated by ``1 + 1/n`` for the mean's own uncertainty;
  the band is the gamma with that mean and variance.

A day is an anomaly when its units fall outside the band's central ``band_probability``
(99% by default: a 95% band flags one normal day in twenty per category, far too many
for a chain's feed) **and** the category was expected to sell at least
``min_expected_units`` that day **and** the units differ from the expectation by at least
``min_relative_change`` of it (a statistically clear but small move is not worth a
store manager's attention). A category that first sold at the location fewer than
``min_history_days`` days before the day (its forecast's backtest would have been run on
days before it existed) raises nothing, and so does one without a seasonal baseline.

Quantities of pieces and kilograms are summed as they come: a leaf category holds items
sold one way. Nothing here does I/O.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from scipy.special import gammaincinv

from services.inventory.domain.demand_history import QUANTITY_PLACES, DemandInterval

FORECAST = "forecast"
SEASONAL_BASELINE = "seasonal_baseline"
_Z_975 = 1.959963984540054
# Anomaly ids are UUIDv5 of (location, category, day) in this namespace: stable across runs and replicas.
ANOMALY_NAMESPACE = uuid.UUID("6c2a4f7e-2f4b-5d1e-9a53-7d0b9b3c5e11")
ZERO = Decimal(0)


class Direction(enum.Enum):
    BELOW = "below"
    ABOVE = "above"


@dataclass(frozen=True)
class AnomalyPolicy:
    """When a day's units count as an anomaly (see the module's docstring)."""

    band_probability: float = 0.99
    min_expected_units: Decimal = Decimal(10)
    min_relative_change: Decimal = Decimal("0.2")
    min_history_days: int = 28  # a category that first sold at the location more recently is not judged
    baseline_weeks: int = 8
    min_baseline_weeks: int = 4
    lookback_days: int = 3  # closed days the periodic run still evaluates when it has not yet
    closing_grace: timedelta = timedelta(hours=2)  # the run judges a day this long after it closed

    def __post_init__(self) -> None:
        if not 0.5 < self.band_probability < 1:
            raise ValueError("a band covers between 50% and 100% of days")
        if not 1 <= self.min_baseline_weeks <= self.baseline_weeks:
            raise ValueError("the baseline needs at least one week, and no more than it looks back")
        if self.lookback_days < 1:
            raise ValueError("the run looks back at least one day")


@dataclass(frozen=True, slots=True)
class Band:
    """The units a category was expected to sell on one day, and the bounds of the band around them."""

    method: str
    expected: Decimal
    lower: Decimal
    upper: Decimal


@dataclass(frozen=True, slots=True)
class CategoryDay:
    """What one category sold at one location on one day, per SKU (net of returns)."""

    location_id: str
    category: str
    business_date: date
    sold: dict[str, Decimal]


@dataclass(frozen=True, slots=True)
class SalesAnomaly:
    """A finding: the category's units fell below or above its band."""

    anomaly_id: str
    location_id: str
    category: str
    business_date: date
    actual: Decimal
    band: Band
    direction: Direction
    skus: tuple[str, ...]
    detected_at: datetime


def anomaly_id(location_id: str, category: str, business_date: date) -> str:
    return str(uuid.uuid5(ANOMALY_NAMESPACE, f"{location_id}\x1f{category}\x1f{business_date.isoformat()}"))


def _quantity(value: float) -> Decimal:
    return Decimal(repr(max(0.0, value))).quantize(QUANTITY_PLACES)


def gamma_band(method: str, mean: float, variance: float, probability: float) -> Band:
    """The central ``probability`` of a gamma with this mean and variance (a point when there is no spread)."""
    if mean <= 0 or variance <= 0:
        return Band(method, _quantity(mean), _quantity(mean), _quantity(mean))
    shape, scale = mean * mean / variance, variance / mean
    tail = (1 - probability) / 2
    lower = float(gammaincinv(shape, tail)) * scale
    upper = float(gammaincinv(shape, 1 - tail)) * scale
    return Band(method, _quantity(mean), _quantity(lower), _quantity(upper))


def forecast_band(intervals: Iterable[DemandInterval], probability: float) -> Band:
    """The category's band from its SKUs' calibrated intervals for the day, taken as independent."""
    mean = variance = 0.0
    for interval in intervals:
        mean += float(interval.mean)
        sigma = float(interval.upper_95 - interval.lower_95) / (2 * _Z_975)
        variance += sigma * sigma
    return gamma_band(FORECAST, mean, variance, probability)


def seasonal_band(same_weekdays: Sequence[Decimal], policy: AnomalyPolicy) -> Band | None:
    """The band from the category's units on the same weekday of previous weeks (``None``: too few weeks)."""
    weeks = len(same_weekdays)
    if weeks < policy.min_baseline_weeks:
        return None
    values = [float(units) for units in same_weekdays]
    mean = sum(values) / weeks
    spread = sum((value - mean) ** 2 for value in values) / (weeks - 1) if weeks > 1 else 0.0
    variance = max(spread, mean) * (1 + 1 / weeks)
    return gamma_band(SEASONAL_BASELINE, mean, variance, policy.band_probability)


def judge(actual: Decimal, band: Band, policy: AnomalyPolicy) -> Direction | None:
    """Which side of its band the day fell, when far enough and on enough volume to be worth an alert."""
    if band.expected < policy.min_expected_units:
        return None
    if abs(actual - band.expected) < policy.min_relative_change * band.expected:
        return None
    if actual < band.lower:
        return Direction.BELOW
    if actual > band.upper:
        return Direction.ABOVE
    return None


def detect(
    day: CategoryDay, band: Band | None, expected_skus: Iterable[str], policy: AnomalyPolicy, at: datetime
) -> SalesAnomaly | None:
    """The finding for one category's day, if any; ``skus`` are those that sold or were expected to."""
    if band is None:
        return None
    actual = sum(day.sold.values(), ZERO)
    direction = judge(actual, band, policy)
    if direction is None:
        return None
    skus = {sku for sku, units in day.sold.items() if units != 0} | set(expected_skus)
    return SalesAnomaly(
        anomaly_id=anomaly_id(day.location_id, day.category, day.business_date),
        location_id=day.location_id,
        category=day.category,
        business_date=day.business_date,
        actual=actual,
        band=band,
        direction=direction,
        skus=tuple(sorted(skus)),
        detected_at=at,
    )
