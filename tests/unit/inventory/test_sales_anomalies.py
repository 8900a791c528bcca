"""The sales-anomaly rules: bands from forecasts or previous weeks, and when a day counts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from scipy.stats import gamma

from services.inventory.domain.demand_history import DemandInterval
from services.inventory.domain.sales_anomalies import (
    FORECAST,
    SEASONAL_BASELINE,
    AnomalyPolicy,
    Band,
    CategoryDay,
    Direction,
    anomaly_id,
    detect,
    forecast_band,
    judge,
    seasonal_band,
)

POLICY = AnomalyPolicy()
DAY = date(2026, 11, 23)


def interval(mean: str, lower_95: str, upper_95: str) -> DemandInterval:
    return DemandInterval(Decimal(mean), Decimal(mean), Decimal(mean), Decimal(lower_95), Decimal(upper_95))


def test_a_forecast_band_adds_the_skus_means_and_their_variances_as_independent() -> None:
    band = forecast_band([interval("20", "12.16", "27.84"), interval("10", "4.12", "15.88")], 0.99)
    sigma_a, sigma_b = 7.84 / 1.959963984540054, 5.88 / 1.959963984540054
    variance = sigma_a**2 + sigma_b**2
    expected = gamma(30 * 30 / variance, scale=variance / 30)
    assert band.method == FORECAST
    assert band.expected == Decimal(30)
    assert float(band.lower) == pytest.approx(expected.ppf(0.005), abs=0.001)
    assert float(band.upper) == pytest.approx(expected.ppf(0.995), abs=0.001)


def test_a_seasonal_band_needs_enough_weeks_and_never_spreads_less_than_poisson() -> None:
    assert seasonal_band([Decimal(30)] * 3, POLICY) is None
    flat = seasonal_band([Decimal(30)] * 4, POLICY)
    assert flat is not None
    assert flat.method == SEASONAL_BASELINE
    variance = 30 * (1 + 1 / 4)  # no spread between the weeks: the Poisson floor, for a mean of four weeks
    expected = gamma(30 * 30 / variance, scale=variance / 30)
    assert float(flat.lower) == pytest.approx(expected.ppf(0.005), abs=0.001)
    assert float(flat.upper) == pytest.approx(expected.ppf(0.995), abs=0.001)
    spread = seasonal_band([Decimal(value) for value in (10, 50, 20, 40)], POLICY)
    assert spread is not None
    assert spread.lower < flat.lower
    assert spread.upper > flat.upper


def test_a_day_counts_outside_the_band_on_enough_volume_and_a_large_enough_change() -> None:
    band = Band(FORECAST, Decimal(100), Decimal(80), Decimal(120))
    assert judge(Decimal(60), band, POLICY) is Direction.BELOW
    assert judge(Decimal(130), band, POLICY) is Direction.ABOVE
    assert judge(Decimal(100), band, POLICY) is None
    assert judge(Decimal(119), band, POLICY) is None
    narrow = Band(FORECAST, Decimal(100), Decimal(95), Decimal(105))
    assert judge(Decimal(90), narrow, POLICY) is None  # outside, but only 10% off
    tiny = Band(FORECAST, Decimal(2), Decimal(0), Decimal(6))
    assert judge(Decimal(40), tiny, POLICY) is None  # a slow mover's big day is not judged


def test_a_finding_names_the_skus_that_sold_or_were_expected_and_a_stable_id() -> None:
    day = CategoryDay("S001", "MILK", DAY, {"A": Decimal(5), "B": Decimal(0), "C": Decimal(0)})
    band = Band(FORECAST, Decimal(40), Decimal(25), Decimal(55))
    at = datetime(2026, 11, 24, 2, tzinfo=UTC)
    finding = detect(day, band, {"B"}, POLICY, at)
    assert finding is not None
    assert (finding.direction, finding.actual, finding.skus) == (Direction.BELOW, Decimal(5), ("A", "B"))
    assert finding.anomaly_id == anomaly_id("S001", "MILK", DAY) != anomaly_id("S001", "MILK", date(2026, 11, 22))
    assert detect(day, None, {"B"}, POLICY, at) is None
