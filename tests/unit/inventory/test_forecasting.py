"""Demand forecasts: right shape, weekly rhythm, promotion uplift, intervals, and better than both baselines."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from demodata import MAKE_UP_WORKDAYS, DemoRetailer, DemoScale, HolidayKind, Promotion
from services.inventory.domain.forecasting import (
    MAX_BRIDGE_DAYS,
    MAX_HORIZON_DAYS,
    DemandCalendar,
    DemandHistory,
    Forecast,
    LocationDemandModel,
    PromotionWindow,
    fit_location_forecasts,
    forecast_demand,
    forecast_location,
    seasonal_naive,
    wape,
)

SEED = 20261124
STORES = ("S001", "S003")


@dataclass(frozen=True)
class DemoHistory:
    """The demo retailer's daily sales, promotions and calendar in the forecaster's terms."""

    retailer: DemoRetailer
    daily: dict[tuple[str, str], dict[date, Decimal]]
    promotions: dict[tuple[str, str], list[PromotionWindow]]
    calendar: DemandCalendar
    sample_skus: tuple[str, ...]

    def histories(self, location_id: str, skus: tuple[str, ...]) -> list[DemandHistory]:
        return [
            DemandHistory(
                sku,
                location_id,
                self.daily.get((location_id, sku), {}),
                tuple(self.promotions.get((location_id, sku), ())),
            )
            for sku in skus
        ]

    def promoted_skus(self, location_id: str) -> tuple[str, ...]:
        return tuple(sorted(sku for location, sku in self.promotions if location == location_id))


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


@pytest.fixture(scope="module")
def demo() -> DemoHistory:
    retailer = DemoRetailer(seed=SEED, scale=DemoScale.demo(end_date=date(2026, 10, 31)))
    daily: dict[tuple[str, str], dict[date, Decimal]] = defaultdict(dict)
    for row in retailer.daily_sales():
        daily[(row.location_id, row.sku_code)][row.business_date] = row.quantity
    promotions: dict[tuple[str, str], list[PromotionWindow]] = defaultdict(list)
    for promotion in retailer.promotions:
        for location_id in promotion.location_ids:
            promotions[(location_id, promotion.sku_code)].append(PromotionWindow(promotion.start, promotion.end))
    # Shopping seasons lift demand only a few per cent over weeks: not worth a flag.
    holidays = {
        day
        for holiday in retailer.holidays
        if holiday.kind is not HolidayKind.SHOPPING_SEASON
        for day in _days(holiday.start, holiday.end)
    }
    days_off = {day for holiday in retailer.holidays if holiday.day_off for day in _days(holiday.start, holiday.end)}
    calendar = DemandCalendar.of(holidays, days_off, MAKE_UP_WORKDAYS)
    # Every 15th SKU of the catalogue: fast and slow movers, packaged and loose, a few promoted.
    sample = tuple(sku.sku_code for sku in retailer.skus[::15][:20])
    return DemoHistory(retailer, dict(daily), dict(promotions), calendar, sample)


def test_the_served_forecast_beats_both_baselines_on_the_demo_history(demo: DemoHistory) -> None:
    # Fitted on the days before each origin, scored on the 28 days after it: what the service would have served.
    errors = {"served": 0.0, "seasonal_naive": 0.0, "mean_28d": 0.0}
    for store in STORES:
        for weeks_back in (8, 4):
            origin = demo.retailer.history_end + timedelta(days=1) - timedelta(weeks=weeks_back)
            histories = [
                DemandHistory(history.sku, store, {day: q for day, q in history.daily.items() if day < origin})
                for history in demo.histories(store, demo.sample_skus)
            ]
            for history, forecast in zip(
                histories, forecast_location(histories, start=origin, horizon_days=28), strict=True
            ):
                known = np.array(
                    [float(history.daily.get(origin - timedelta(days=back), 0)) for back in range(28, 0, -1)]
                )
                sold = demo.daily.get((store, history.sku), {})
                actual = np.array([float(sold.get(origin + timedelta(days=step), 0)) for step in range(28)])
                served = np.array([float(quantity) for _, quantity in forecast.daily])
                errors["served"] += float(np.abs(actual - served).sum())
                errors["seasonal_naive"] += float(np.abs(actual - known[-7:][np.arange(28) % 7]).sum())
                errors["mean_28d"] += float(np.abs(actual - known.mean()).sum())

    assert errors["served"] < min(errors["seasonal_naive"], errors["mean_28d"])


def test_the_fit_is_deterministic_and_says_what_served_each_sku(demo: DemoHistory) -> None:
    histories = demo.histories("S001", demo.sample_skus[:8])
    start = demo.retailer.history_end + timedelta(days=1)

    first = fit_location_forecasts(histories, start=start, calendar=demo.calendar)
    second = fit_location_forecasts(histories, start=start, calendar=demo.calendar)

    assert first.forecasts(28) == second.forecasts(28)
    backtest = first.backtest(histories[0].sku, 14)
    assert backtest is not None
    assert backtest == second.backtest(histories[0].sku, 14)
    assert (backtest.horizon_days, len(backtest.origins)) == (14, 4)
    assert backtest.origins[-1] + timedelta(days=13) == demo.retailer.history_end
    assert backtest.method == first.forecast(histories[0].sku, 14).method  # type: ignore[union-attr]
    assert backtest.served.mae <= min(backtest.seasonal_naive.mae, backtest.recent_mean.mae)
    assert backtest.daily_error_std > 0
    assert 0 <= backtest.coverage_80 <= backtest.coverage_95 <= 1
    assert first.backtest("SKU99999", 14) is None
    assert first.forecast("SKU99999", 14) is None


@pytest.mark.parametrize("horizon_days", [1, 7, MAX_HORIZON_DAYS])
def test_forecasts_are_non_negative_and_cover_the_horizon_day_by_day(demo: DemoHistory, horizon_days: int) -> None:
    start = demo.retailer.history_end + timedelta(days=1)

    forecasts = forecast_location(
        demo.histories("S001", demo.sample_skus), start=start, horizon_days=horizon_days, calendar=demo.calendar
    )

    assert [forecast.sku for forecast in forecasts] == list(demo.sample_skus)
    for forecast in forecasts:
        assert forecast.start == start
        assert [day for day, _ in forecast.daily] == [start + timedelta(days=step) for step in range(horizon_days)]
        assert all(isinstance(quantity, Decimal) and quantity >= 0 for _, quantity in forecast.daily)


def test_a_sku_that_never_sold_is_forecast_to_sell_nothing(demo: DemoHistory) -> None:
    never_sold = DemandHistory("SKU99999", "S001", {})
    start = demo.retailer.history_end + timedelta(days=1)

    forecasts = forecast_location(
        [*demo.histories("S001", demo.sample_skus[:5]), never_sold], start=start, horizon_days=7
    )

    assert forecasts[-1].total() == 0


def test_the_global_model_forecasts_saturday_above_tuesday_for_a_typical_sku(demo: DemoHistory) -> None:
    monday = date(2026, 11, 2)
    histories = demo.histories("S001", demo.sample_skus)
    # A typical SKU: the median seller among those that sell every week.
    sellers = sorted(
        (sum(float(quantity) for quantity in history.daily.values()), history.sku)
        for history in histories
        if len(history.daily) > 100
    )
    typical = sellers[len(sellers) // 2][1]

    # The model alone: what serves this SKU is whatever its own backtest preferred (a flat mean, for a
    # few units a day whose weekend lift its recent weeks hardly showed).
    forecasts = LocationDemandModel.fit(histories, start=monday, calendar=demo.calendar).forecast(14)

    daily = dict(next(forecast for forecast in forecasts if forecast.sku == typical).daily)
    for week in (0, 7):
        assert daily[monday + timedelta(days=week + 5)] > daily[monday + timedelta(days=week + 1)]


def test_a_clear_weekly_rhythm_is_served_day_by_day() -> None:
    start = date(2026, 11, 2)  # a Monday
    rng = np.random.default_rng(5)
    weekday = np.array([0.8, 0.8, 0.9, 0.9, 1.1, 1.6, 1.5])
    days = [start - timedelta(days=back) for back in range(364, 0, -1)]
    sold = {day: int(rng.poisson(20 * weekday[day.weekday()])) for day in days}

    forecast = forecast_demand(DemandHistory("SKU00001", "S001", sold), start=start, horizon_days=14)

    daily = dict(forecast.daily)
    for week in (0, 7):
        assert daily[start + timedelta(days=week + 5)] > Decimal("1.4") * daily[start + timedelta(days=week + 1)]


def _late_promotions(demo: DemoHistory, location_id: str) -> list[Promotion]:
    """Promotions at the location with about three months of history (and its promotions) before them."""
    return [
        promotion
        for promotion in demo.retailer.promotions
        if location_id in promotion.location_ids
        and promotion.start >= date(2026, 8, 1)
        and promotion.end <= demo.retailer.history_end
    ]


def _forecast_total(demo: DemoHistory, histories: list[DemandHistory], promotion: Promotion) -> Decimal:
    """The promoted SKU's forecast over the promotion's days, fitted on the days before it."""
    days = (promotion.end - promotion.start).days + 1
    forecasts = forecast_location(histories, start=promotion.start, horizon_days=days, calendar=demo.calendar)
    return next(forecast for forecast in forecasts if forecast.sku == promotion.sku_code).total()


def test_a_known_promotion_raises_the_forecast_inside_its_window(demo: DemoHistory) -> None:
    store = "S001"
    skus = tuple(sorted(set(demo.sample_skus) | set(demo.promoted_skus(store))))
    promotions = _late_promotions(demo, store)[:3]
    assert promotions
    for promotion in promotions:
        with_promotion = demo.histories(store, skus)
        without_promotion = [
            dataclasses.replace(
                history, promotions=tuple(window for window in history.promotions if window.start != promotion.start)
            )
            if history.sku == promotion.sku_code
            else history
            for history in with_promotion
        ]

        # The window lies after the training days, so both fits see the same data: only the flag differs.
        assert _forecast_total(demo, with_promotion, promotion) > Decimal("1.2") * _forecast_total(
            demo, without_promotion, promotion
        )


def test_one_sku_can_be_forecast_on_its_own_history(demo: DemoHistory) -> None:
    history = demo.histories("S001", demo.sample_skus[:1])[0]
    start = demo.retailer.history_end + timedelta(days=1)

    forecast = forecast_demand(history, start=start, horizon_days=28, calendar=demo.calendar)

    assert isinstance(forecast, Forecast)
    assert (forecast.sku, forecast.location_id, forecast.horizon_days) == (history.sku, "S001", 28)
    assert Decimal(0) < forecast.total() < Decimal(28) * max(Decimal(q) for q in history.daily.values())


def test_a_short_history_is_forecast_at_its_recent_mean() -> None:
    start = date(2026, 11, 1)
    history = DemandHistory("SKU00001", "S001", {start - timedelta(days=back): Decimal(2) for back in range(1, 11)})

    forecast = forecast_demand(history, start=start, horizon_days=3)

    assert [quantity for _, quantity in forecast.daily] == [Decimal("2.000")] * 3
    # Too short to hold out two weeks behind an origin: nothing to calibrate an interval on.
    assert (forecast.method, forecast.intervals) == ("mean_28d", ())
    assert fit_location_forecasts([history], start=start).backtest("SKU00001", 3) is None


@pytest.mark.parametrize("horizon_days", [0, -1, MAX_HORIZON_DAYS + 1])
def test_a_horizon_outside_one_to_90_days_is_refused(horizon_days: int) -> None:
    history = DemandHistory("SKU00001", "S001", {date(2026, 10, 1): Decimal(1)})

    with pytest.raises(ValueError, match="horizon_days"):
        forecast_demand(history, start=date(2026, 11, 1), horizon_days=horizon_days)


def test_a_history_that_stopped_before_the_first_day_is_bridged_by_forecasting_the_days_between(
    demo: DemoHistory,
) -> None:
    histories = demo.histories("S001", demo.sample_skus[:6])
    start = demo.retailer.history_end + timedelta(days=1)
    model = LocationDemandModel.fit(histories, start=start, calendar=demo.calendar)
    served_later = fit_location_forecasts(histories, start=start, first_day=start + timedelta(days=10))
    served_through = fit_location_forecasts(histories, start=start)

    # Both 18 and 28 days are forecast by the 28-day backtest's choice: the same forecasts, ten days on.
    for history in histories:
        served, whole_served = served_later.forecast(history.sku, 18), served_through.forecast(history.sku, 28)
        assert served is not None
        assert whole_served is not None
        assert served.daily == whole_served.daily[10:]
        assert served.intervals == whole_served.intervals[10:]
    assert fit_location_forecasts(histories, start=start, first_day=start + timedelta(days=MAX_BRIDGE_DAYS))
    with pytest.raises(ValueError, match="days after the history ends"):
        fit_location_forecasts(histories, start=start, first_day=start + timedelta(days=MAX_BRIDGE_DAYS + 1))

    later = model.forecast(14, first_day=start + timedelta(days=10))
    through = model.forecast(24)

    # The days between are forecast, not taken as days that sold nothing.
    for bridged, whole in zip(later, through, strict=True):
        assert bridged.start == start + timedelta(days=10)
        assert bridged.daily == whole.daily[10:]
        assert bridged.total() > 0 or whole.total() == 0
    with pytest.raises(ValueError, match="days after the history ends"):
        model.forecast(7, first_day=start + timedelta(days=MAX_BRIDGE_DAYS + 1))
    with pytest.raises(ValueError, match="days after the history ends"):
        model.forecast(7, first_day=start - timedelta(days=1))


def test_a_promotion_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        PromotionWindow(date(2026, 11, 2), date(2026, 11, 1))


def test_the_seasonal_naive_baseline_repeats_the_last_week() -> None:
    sales = np.array([[9.0, 1, 2, 3, 4, 5, 6, 7]])

    assert seasonal_naive(sales, 9).tolist() == [[1, 2, 3, 4, 5, 6, 7, 1, 2]]


def test_wape_is_total_absolute_error_over_total_demand() -> None:
    actual = np.array([4.0, 0.0, 6.0])
    predicted = np.array([5.0, 1.0, 3.0])

    assert wape(actual, predicted) == pytest.approx((1 + 1 + 3) / 10)
    assert wape(np.zeros(2), np.zeros(2)) == 0.0
