"""The candidate methods, the selection that guards against them, and the intervals, on series whose answer is known."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from bench.demand_shapes import SHAPES, generate
from services.inventory.domain.forecast_methods import (
    BASELINES,
    CANDIDATES,
    Origin,
    candidate_forecasts,
    level_since_change,
    weekday_profile,
)
from services.inventory.domain.forecasting import (
    DemandHistory,
    fit_location_forecasts,
    forecast_demand,
    gamma_quantile,
)

MONDAY = date(2026, 11, 2)
WEEKDAY = np.array([0.8, 0.8, 0.9, 0.9, 1.1, 1.6, 1.5])


def _history(sales: np.ndarray, start: date = MONDAY, sku: str = "SKU00001") -> DemandHistory:
    first = start - timedelta(days=sales.size)
    return DemandHistory(
        sku, "S001", {first + timedelta(days=int(day)): float(sales[day]) for day in range(sales.size)}
    )


def test_a_series_that_halved_three_months_ago_is_forecast_at_its_new_level() -> None:
    rng = np.random.default_rng(11)
    days = 548
    weekdays = (MONDAY.weekday() - days + np.arange(days)) % 7
    level = np.where(np.arange(days) < days - 91, 40.0, 20.0)
    sales = rng.poisson(level * WEEKDAY[weekdays]).astype(float)

    forecast = forecast_demand(_history(sales), start=MONDAY, horizon_days=28)

    new_level = Decimal(str(round(20 * WEEKDAY.mean() * 28)))  # 608 units in four weeks; it sold twice that before
    assert abs(forecast.expected_total() - new_level) < new_level / 10
    assert abs(forecast.total() - new_level) < new_level / 10
    # Still a weekly rhythm, at the new level.
    assert forecast.daily[5][1] > Decimal("1.4") * forecast.daily[1][1]


def test_the_level_since_a_shift_is_the_level_after_it_and_a_steady_series_keeps_a_long_mean() -> None:
    rng = np.random.default_rng(3)
    shifted = np.concatenate([rng.poisson(30.0, 280), rng.poisson(12.0, 84)]).astype(float)
    steady = rng.poisson(30.0, 364).astype(float)

    forecast = level_since_change(np.stack([shifted, steady]), 364, 7, 0)

    assert forecast[0].mean() == pytest.approx(12.0, rel=0.08)
    assert forecast[1].mean() == pytest.approx(30.0, rel=0.05)


def test_a_weekday_profile_is_kept_when_clear_and_flattened_when_it_is_noise() -> None:
    rng = np.random.default_rng(4)
    columns = 182  # 26 weeks starting on a Monday
    weekdays = np.arange(columns) % 7
    clear = rng.poisson(40 * WEEKDAY[weekdays]).astype(float)
    noise = rng.poisson(np.full(columns, 3.0)).astype(float)

    profile = weekday_profile(np.stack([clear, noise]), columns, 0)

    assert profile[0] == pytest.approx(WEEKDAY / WEEKDAY.mean(), rel=0.06)
    assert np.abs(profile[1] - 1).max() < 0.06


def test_holt_winters_with_a_damped_trend_follows_a_decline_that_a_level_alone_lags() -> None:
    columns = 364
    weekdays = np.arange(columns + 28) % 7
    expected = np.linspace(60.0, 20.0, columns + 28) * WEEKDAY[weekdays] / WEEKDAY.mean()

    forecasts = candidate_forecasts(expected[None, :columns], 0, [Origin(columns, 28)])

    future = expected[columns : columns + 7]
    trend_error = np.abs(forecasts["ets_damped_trend"][0][0, :7] - future).mean()
    level_error = np.abs(forecasts["ets_level"][0][0, :7] - future).mean()
    assert trend_error < level_error
    assert trend_error < 0.03 * future.mean()


def test_croston_sba_and_tsb_forecast_a_slow_movers_rate_and_tsb_gives_up_on_one_that_stopped() -> None:
    regular = np.zeros(364)
    regular[::4] = 2.0  # two units every fourth day: half a unit a day
    stopped = regular.copy()
    stopped[-120:] = 0.0

    forecasts = candidate_forecasts(np.stack([regular, stopped]), 0, [Origin(364, 7)])

    assert forecasts["croston"][0][0, 0] == pytest.approx(0.5, rel=0.02)
    assert forecasts["sba"][0][0, 0] == pytest.approx(0.95 * 0.5, rel=0.02)
    # TSB's demand probability moves every day: three days after the last sale it sits a little below ¼.
    assert 0.4 < forecasts["tsb"][0][0, 0] < 0.55
    # Croston only updates on a sale, so it still expects the old rate; TSB's demand probability decays.
    assert forecasts["croston"][0][1, 0] == pytest.approx(0.5, rel=0.02)
    assert forecasts["tsb"][0][1, 0] < 0.01


def test_every_method_knows_only_the_days_before_its_origin() -> None:
    rng = np.random.default_rng(8)
    sales = rng.poisson(10.0, (3, 300)).astype(float)
    changed = sales.copy()
    changed[:, 200:] = 1000.0  # what happens from the origin on must not change the forecast from it

    before = candidate_forecasts(sales, 2, [Origin(200, 28), Origin(250, 28)])
    after = candidate_forecasts(changed, 2, [Origin(200, 28), Origin(250, 28)])

    assert set(before) == {*BASELINES, *CANDIDATES}
    for name in before:
        np.testing.assert_array_equal(before[name][0], after[name][0], err_msg=name)


def test_a_method_that_lost_to_both_baselines_on_its_backtest_never_serves() -> None:
    series = [one for shape in SHAPES for one in generate(shape, 4, seed=9)]
    start = series[0].first_day + timedelta(days=548)
    histories = [_history(one.sales[:548], start, one.sku) for one in series]

    fitted = fit_location_forecasts(histories, start=start)

    served: dict[str, int] = {}
    for history in histories:
        for horizon in (7, 14, 28):
            backtest = fitted.backtest(history.sku, horizon)
            assert backtest is not None
            assert backtest.served.mae <= min(backtest.seasonal_naive.mae, backtest.recent_mean.mae) + 1e-12
            assert backtest.beats_baselines
            served[backtest.method] = served.get(backtest.method, 0) + 1
    location = fitted.location_backtest(28)
    assert location is not None
    assert location.served_wape < min(location.seasonal_naive_wape, location.recent_mean_wape)
    assert any("+" in method for method in served)  # combinations serve most series


def test_gamma_quantiles_are_exact_where_known() -> None:
    mean = np.array([3.0, 3.0, 0.0, 5.0])
    dispersion = np.array([3.0, 0.0, 2.0, 1e-9])  # shape 1 (exponential), no spread, no demand, almost none

    median = gamma_quantile(mean, dispersion, 0.5)
    upper = gamma_quantile(mean, dispersion, 0.975)

    assert median[0] == pytest.approx(3.0 * math.log(2), rel=1e-3)
    assert upper[0] == pytest.approx(-3.0 * math.log(0.025), rel=1e-3)
    assert (median[1], upper[1], median[2], upper[2]) == (3.0, 3.0, 0.0, 0.0)
    assert median[3] == pytest.approx(5.0, rel=1e-3)


def test_a_slow_movers_point_forecast_is_its_median_and_its_interval_reaches_its_sales() -> None:
    rng = np.random.default_rng(12)
    sales = (rng.random(364) < 0.15) * (1 + rng.poisson(1.0, 364)).astype(float)

    forecast = forecast_demand(_history(sales), start=MONDAY, horizon_days=14)
    backtest = fit_location_forecasts([_history(sales)], start=MONDAY).backtest("SKU00001", 14)

    assert backtest is not None
    assert backtest.point == "median"
    # Sells on one day in seven: the median day sells nothing, the mean day about a third of a unit.
    assert forecast.total() < Decimal("0.5")
    assert Decimal("2") < forecast.expected_total() < Decimal("7")
    assert all(interval.lower_95 == 0 for interval in forecast.intervals)
    assert all(Decimal(1) <= interval.upper_95 for interval in forecast.intervals)
    assert forecast.upper_error_std(3) > 0
