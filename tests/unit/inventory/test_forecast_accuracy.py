"""The served forecast against seasonal naive and the 28-day mean, on series it was never tuned on.

A test-sized run of ``bench/forecast_accuracy.py``: the synthetic shapes of
``bench/demand_shapes.py`` (true process known, 18 months of history, four rolling
origins each forecasting 28 days), scored with MAE computed here, not by the service's
own backtest. The same harness fails a forecaster that forecasts yesterday's business,
so passing means something.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pytest

from bench.demand_shapes import SHAPES
from bench.forecast_accuracy import Tally, evaluate_shapes, one_sku_per_location, served_forecasts
from services.inventory.domain.forecast_methods import weekday_profile
from services.inventory.domain.forecasting import DemandHistory, Forecast, SalesMatrix, to_quantity

SEED = 20261124
SERIES_PER_SHAPE = 12
DRIFTING = ("declining", "growing", "step_down", "step_up")


@pytest.fixture(scope="module")
def store() -> dict[str, Tally]:
    """Every shape's series together in one location, as a store holds them."""
    return evaluate_shapes(SERIES_PER_SHAPE, seed=SEED)


@pytest.mark.parametrize("shape", SHAPES)
def test_on_every_shape_the_served_forecast_beats_both_baselines_over_rolling_origins(
    store: dict[str, Tally], shape: str
) -> None:
    tally = store[shape]

    assert tally.days == SERIES_PER_SHAPE * 4 * 28
    assert tally.served <= min(tally.seasonal_naive, tally.recent_mean), (
        f"MAE {tally.vs_seasonal_naive:.3f}× seasonal naive's, {tally.vs_recent_mean:.3f}× the 28-day mean's"
    )


@pytest.mark.parametrize("shape", ["declining", "step_down"])
def test_a_sku_alone_in_its_location_beats_both_baselines_when_its_level_moved(shape: str) -> None:
    # As a single imported series is scored: the global model has no other SKU to learn from.
    tally = evaluate_shapes(4, seed=SEED, forecaster=one_sku_per_location(served_forecasts), shapes=(shape,))[shape]

    assert tally.served <= min(tally.seasonal_naive, tally.recent_mean), (
        f"MAE {tally.vs_seasonal_naive:.3f}× seasonal naive's, {tally.vs_recent_mean:.3f}× the 28-day mean's"
    )


def yesterdays_business(histories: Sequence[DemandHistory], start: date, horizon: int) -> list[Forecast]:
    """The whole history's mean day times its weekday profile: a level that no longer holds."""
    matrix = SalesMatrix.of(histories, start=start)
    profile = weekday_profile(matrix.sales, matrix.days, matrix.first_weekday)
    level = matrix.sales.mean(axis=1)
    days = [start + timedelta(days=step) for step in range(horizon)]
    return [
        Forecast(
            history.sku,
            history.location_id,
            start,
            [(day, to_quantity(level[row] * profile[row, day.weekday()])) for day in days],
        )
        for row, history in enumerate(histories)
    ]


def test_the_harness_fails_a_forecast_of_yesterdays_business() -> None:
    tallies = evaluate_shapes(SERIES_PER_SHAPE, seed=SEED, forecaster=yesterdays_business, shapes=DRIFTING)

    assert [shape for shape, tally in tallies.items() if tally.beats_both] == []


def test_the_prediction_intervals_cover_about_what_they_say(store: dict[str, Tally]) -> None:
    inside_80 = sum(tally.covered_80 for tally in store.values())
    inside_95 = sum(tally.covered_95 for tally in store.values())
    days = sum(tally.with_interval for tally in store.values())

    assert days == len(SHAPES) * SERIES_PER_SHAPE * 4 * 28
    assert 0.72 <= inside_80 / days <= 0.88
    assert 0.88 <= inside_95 / days <= 0.98
    # Slow movers' intervals too (their lower ends are zero, their upper ends whole units or so).
    for shape in ("intermittent", "lumpy"):
        assert store[shape].coverage_95 >= 0.88


def test_the_stale_forecaster_is_what_a_whole_history_mean_does_to_a_halved_series() -> None:
    # The harness's straw man really is stale: a series that halved is forecast near its old level.
    start = date(2026, 11, 2)
    days = [start - timedelta(days=back) for back in range(364, 0, -1)]
    sold = {day: 20.0 if (start - day).days > 91 else 10.0 for day in days}

    forecast = yesterdays_business([DemandHistory("SKU", "S", sold)], start, 7)[0]

    assert float(forecast.total()) / 7 == pytest.approx(np.mean(list(sold.values())), rel=0.01)
