"""Planning a location without I/O: the fit behind forecasts and suggestions, and stock days rebuilt from the ledger."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

from services.inventory.adapters.planning_store import LedgerDay, SkuLedger
from services.inventory.domain.forecasting import MAX_HORIZON_DAYS, DemandHistory
from services.inventory.domain.kpis import DailyStockRecord
from services.inventory.service_layer.replenishment import daily_stock_records, fit_location_demand

TODAY = date(2026, 11, 24)


def _weekly(sku: str, base: int, end: date, days: int = 70) -> DemandHistory:
    """A weekly rhythm: busier at the weekend, a little different every week."""
    daily = {}
    for back in range(days):
        day = end - timedelta(days=back)
        daily[day] = Decimal(base * (2 if day.weekday() >= 5 else 1) + back % 3)
    return DemandHistory(sku, "S001", daily)


def test_a_location_is_fitted_once_for_every_horizon_from_today_even_when_its_history_stopped_earlier() -> None:
    history_end = TODAY - timedelta(days=5)
    histories = [_weekly("A", 10, history_end), _weekly("B", 3, history_end)]

    demand = fit_location_demand("S001", histories, TODAY)

    assert demand.history_end == history_end
    location = demand.location_backtest(7)
    assert location is not None
    assert math.isfinite(location.served_wape)
    assert math.isfinite(location.seasonal_naive_wape)
    assert math.isfinite(location.recent_mean_wape)
    forecast = demand.forecast("A", 7)
    assert [day for day, _ in forecast.daily] == [TODAY + timedelta(days=step) for step in range(7)]
    assert forecast.total() > 0
    assert len(forecast.intervals) == 7
    assert demand.forecast("A", MAX_HORIZON_DAYS).horizon_days == MAX_HORIZON_DAYS
    assert forecast.upper_error_std(3) > 0
    backtest = demand.backtest("A", 7)
    assert backtest is not None
    assert backtest.method == forecast.method
    # A SKU that never sold here: nothing expected, no forecast error to buffer against.
    assert demand.forecast("NEVER", 7).total() == 0
    assert demand.forecast("NEVER", 7).upper_error_std(3) == 0
    assert demand.backtest("NEVER", 7) is None


def test_a_location_without_any_sales_history_expects_nothing() -> None:
    demand = fit_location_demand("S001", [], TODAY)

    assert (demand.history_end, demand.forecasts, demand.location_backtest(7)) == (None, None, None)
    assert demand.forecast("A", 3).total() == 0


def test_closing_stock_is_rebuilt_day_by_day_from_the_ledger_from_the_first_day_it_knows() -> None:
    start = date(2026, 11, 1)
    ledger = SkuLedger(
        first_day=start + timedelta(days=1),
        days=[
            LedgerDay(start + timedelta(days=1), Decimal(10), Decimal(0)),  # opening balance
            LedgerDay(start + timedelta(days=2), Decimal(-4), Decimal(0)),  # sold 4
            LedgerDay(start + timedelta(days=4), Decimal(-1), Decimal(1)),  # counted one short
        ],
    )
    sold = {start + timedelta(days=2): Decimal(4), start + timedelta(days=3): Decimal(-1)}  # a return

    records = daily_stock_records(ledger, sold, start, start + timedelta(days=4))

    assert records == [
        DailyStockRecord(start + timedelta(days=1), Decimal(0), Decimal(10), Decimal(0)),
        DailyStockRecord(start + timedelta(days=2), Decimal(4), Decimal(6), Decimal(0)),
        DailyStockRecord(start + timedelta(days=3), Decimal(0), Decimal(6), Decimal(0)),
        DailyStockRecord(start + timedelta(days=4), Decimal(0), Decimal(5), Decimal(1)),
    ]


def test_stock_before_the_period_opens_it() -> None:
    start = date(2026, 11, 1)
    ledger = SkuLedger(first_day=date(2026, 9, 1), opening_on_hand=Decimal(7))

    records = daily_stock_records(ledger, {}, start, start + timedelta(days=1))

    assert [(record.day, record.closing_on_hand) for record in records] == [
        (start, Decimal(7)),
        (start + timedelta(days=1), Decimal(7)),
    ]
