"""Forecast accuracy against the two baselines, on series nobody tuned the forecaster on.

Two sources of series, each forecast from several rolling origins with everything before
the origin known and the next 28 days hidden, exactly as the service would be asked:

* the synthetic shapes of ``bench.demand_shapes`` (true process known; 18 months of
  history, four origins 28 days apart), once with all shapes in one location as a store
  would hold them, once with each series alone in a location of its own (as a single
  imported series is scored: the global model then has nothing else to learn from);
* the demo retailer (``demodata``), every store's SKUs, four origins 28 days apart
  ending with its history.

For each shape (and the demo) it prints the served forecast's MAE as a ratio to seasonal
naive's and to the 28-day mean's (below 1: better), computed here independently of the
service's own backtest, and how often the sales fell inside the 80% and 95% intervals.
Then it times a fit of one location of 5,000 SKUs with 18 months of history: the work a
replenishment run does per location before planning it.

``python -m bench --only forecast`` runs it (no servers needed); ``python -m
bench.forecast_accuracy --series 20`` a smaller run.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from bench.demand_shapes import SHAPES, SyntheticSeries, Timeline, generate
from services.inventory.domain.forecasting import DemandHistory, Forecast, fit_location_forecasts

HORIZON_DAYS = 28
# A forecaster under test: histories known before ``start`` → each SKU's forecast of ``horizon`` days from it.
Forecaster = Callable[[Sequence[DemandHistory], date, int], list[Forecast]]


def served_forecasts(histories: Sequence[DemandHistory], start: date, horizon: int) -> list[Forecast]:
    """What the service answers: the served forecast of every SKU, fitted on the days before ``start``."""
    return fit_location_forecasts(histories, start=start).forecasts(horizon)


def one_sku_per_location(forecaster: Forecaster) -> Forecaster:
    """The same forecaster with each SKU alone in its location, as a single imported series is forecast."""

    def alone(histories: Sequence[DemandHistory], start: date, horizon: int) -> list[Forecast]:
        return [forecaster([history], start, horizon)[0] for history in histories]

    return alone


@dataclass
class Tally:
    """Absolute errors of the served forecast and of both baselines, summed over series, origins and days."""

    served: float = 0.0
    seasonal_naive: float = 0.0
    recent_mean: float = 0.0
    days: int = 0
    covered_80: int = 0
    covered_95: int = 0
    with_interval: int = 0
    methods: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def vs_seasonal_naive(self) -> float:
        return self.served / self.seasonal_naive if self.seasonal_naive else float("nan")

    @property
    def vs_recent_mean(self) -> float:
        return self.served / self.recent_mean if self.recent_mean else float("nan")

    @property
    def beats_both(self) -> bool:
        """The served MAE is at most the better baseline's."""
        return self.served <= min(self.seasonal_naive, self.recent_mean)

    @property
    def coverage_80(self) -> float:
        return self.covered_80 / self.with_interval if self.with_interval else float("nan")

    @property
    def coverage_95(self) -> float:
        return self.covered_95 / self.with_interval if self.with_interval else float("nan")

    def add(self, actual: np.ndarray, forecast: Forecast, history: np.ndarray) -> None:
        """One series at one origin: ``history`` is every day before the origin, oldest first."""
        point = np.array([float(quantity) for _, quantity in forecast.daily])
        last_week = np.concatenate([np.zeros(max(0, 7 - history.size)), history[-7:]])
        seasonal_naive = last_week[np.arange(actual.size) % 7]
        recent_mean = np.full(actual.size, history[-28:].mean() if history.size else 0.0)
        self.served += float(np.abs(actual - point).sum())
        self.seasonal_naive += float(np.abs(actual - seasonal_naive).sum())
        self.recent_mean += float(np.abs(actual - recent_mean).sum())
        self.days += actual.size
        self.methods[forecast.method] += 1
        if forecast.intervals:
            lower_80 = np.array([float(interval.lower_80) for interval in forecast.intervals])
            upper_80 = np.array([float(interval.upper_80) for interval in forecast.intervals])
            lower_95 = np.array([float(interval.lower_95) for interval in forecast.intervals])
            upper_95 = np.array([float(interval.upper_95) for interval in forecast.intervals])
            # Quantities are rounded to the gram: compare at that precision.
            self.covered_80 += int(((actual >= lower_80 - 5e-4) & (actual <= upper_80 + 5e-4)).sum())
            self.covered_95 += int(((actual >= lower_95 - 5e-4) & (actual <= upper_95 + 5e-4)).sum())
            self.with_interval += actual.size


def _histories(series: Sequence[SyntheticSeries], origin: date, location_id: str) -> list[DemandHistory]:
    histories = []
    for one in series:
        known = one.sales[: (origin - one.first_day).days]
        daily = {one.first_day + timedelta(days=int(day)): float(known[day]) for day in np.flatnonzero(known)}
        histories.append(DemandHistory(one.sku, location_id, daily))
    return histories


def evaluate_shapes(
    series_per_shape: int,
    *,
    seed: int = 20261124,
    forecaster: Forecaster = served_forecasts,
    timeline: Timeline | None = None,
    shapes: Sequence[str] = SHAPES,
) -> dict[str, Tally]:
    """Every shape's tally over the timeline's rolling origins; all shapes' series form one location."""
    timeline = timeline or Timeline()
    series = [one for shape in shapes for one in generate(shape, series_per_shape, seed=seed, timeline=timeline)]
    tallies: dict[str, Tally] = {shape: Tally() for shape in shapes}
    for origin in timeline.origin_days():
        forecasts = forecaster(_histories(series, origin, "SYNTH"), origin, timeline.horizon_days)
        for one, forecast in zip(series, forecasts, strict=True):
            known = (origin - one.first_day).days
            actual = one.sales[known : known + timeline.horizon_days]
            tallies[one.shape].add(actual, forecast, one.sales[:known])
    return tallies


def evaluate_demo(*, origins: int = 4, forecaster: Forecaster = served_forecasts) -> dict[str, Tally]:
    """Every demo store's SKUs from ``origins`` rolling origins 28 days apart, ending with the demo history."""
    from demodata import DemoRetailer, DemoScale

    retailer = DemoRetailer(scale=DemoScale.demo())
    daily: dict[tuple[str, str], dict[date, float]] = defaultdict(dict)
    for row in retailer.daily_sales():
        daily[(row.location_id, row.sku_code)][row.business_date] = float(row.quantity)
    end = retailer.history_end
    first_day = min(day for days in daily.values() for day in days)
    tallies: dict[str, Tally] = {}
    for location_id in sorted({location for location, _ in daily}):
        skus = sorted(sku for location, sku in daily if location == location_id)
        tally = tallies.setdefault(location_id, Tally())
        for back in range(origins, 0, -1):
            origin = end + timedelta(days=1) - timedelta(days=HORIZON_DAYS * back)
            histories = [
                DemandHistory(
                    sku, location_id, {day: sold for day, sold in daily[(location_id, sku)].items() if day < origin}
                )
                for sku in skus
            ]
            forecasts = forecaster(histories, origin, HORIZON_DAYS)
            for sku, forecast in zip(skus, forecasts, strict=True):
                sold = daily[(location_id, sku)]
                span = (origin - first_day).days
                history = np.array([sold.get(first_day + timedelta(days=day), 0.0) for day in range(span)])
                actual = np.array([sold.get(origin + timedelta(days=day), 0.0) for day in range(HORIZON_DAYS)])
                tally.add(actual, forecast, history)
    return tallies


def fit_time(skus: int = 5_000, *, seed: int = 7) -> dict[str, float]:
    """Seconds to fit one location of ``skus`` SKUs with 18 months of history, and to read every forecast."""
    timeline = Timeline(origins=1)
    per_shape = -(-skus // len(SHAPES))
    series = [one for shape in SHAPES for one in generate(shape, per_shape, seed=seed, timeline=timeline)][:skus]
    histories = _histories(series, timeline.first_origin, "BIG")
    started = time.perf_counter()
    fitted = fit_location_forecasts(histories, start=timeline.first_origin)
    fitted_at = time.perf_counter()
    for history in histories:
        fitted.forecast(history.sku, HORIZON_DAYS)
    read_at = time.perf_counter()
    return {
        "skus": float(skus),
        "history_days": float(timeline.history_days),
        "fit_seconds": fitted_at - started,
        "read_every_forecast_seconds": read_at - fitted_at,
    }


def print_table(title: str, tallies: dict[str, Tally]) -> None:
    print(f"  {title}")
    header = f"{'vs seasonal naive':>17} {'vs 28-day mean':>15} {'80% covered':>12} {'95% covered':>12}"
    print(f"  {'series':<16} {header}  beats both")
    total = Tally()
    for name, tally in tallies.items():
        print(
            f"  {name:<16} {tally.vs_seasonal_naive:>17.3f} {tally.vs_recent_mean:>15.3f} "
            f"{tally.coverage_80:>12.3f} {tally.coverage_95:>12.3f}  {'yes' if tally.beats_both else 'NO'}"
        )
        for attribute in ("served", "seasonal_naive", "recent_mean"):
            setattr(total, attribute, getattr(total, attribute) + getattr(tally, attribute))
        for attribute in ("days", "covered_80", "covered_95", "with_interval"):
            setattr(total, attribute, getattr(total, attribute) + getattr(tally, attribute))
    print(
        f"  {'all':<16} {total.vs_seasonal_naive:>17.3f} {total.vs_recent_mean:>15.3f} "
        f"{total.coverage_80:>12.3f} {total.coverage_95:>12.3f}  {'yes' if total.beats_both else 'NO'}"
    )


def bench_forecast(
    series_per_shape: int = 60, *, alone_per_shape: int = 10, demo: bool = True, skus: int = 5_000
) -> dict[str, float]:
    """The accuracy tables and the fit time; returns the figures for bench-latest.json."""
    figures: dict[str, float] = {}
    started = time.perf_counter()
    settings: list[tuple[str, int, Forecaster, str]] = [
        ("store", series_per_shape, served_forecasts, "in one location")
    ]
    if alone_per_shape:
        settings.append(("alone", alone_per_shape, one_sku_per_location(served_forecasts), "each alone in a location"))
    for setting, count, forecaster, where in settings:
        shapes = evaluate_shapes(count, forecaster=forecaster)
        print_table(
            f"synthetic shapes, {count} series each {where}: 18 months of history, {Timeline().origins} origins × "
            f"{HORIZON_DAYS} days (MAE ratios, below 1 is better; share of days inside the intervals)",
            shapes,
        )
        for shape, tally in shapes.items():
            figures[f"{setting}_{shape}_mae_vs_seasonal_naive"] = tally.vs_seasonal_naive
            figures[f"{setting}_{shape}_mae_vs_mean_28d"] = tally.vs_recent_mean
            figures[f"{setting}_{shape}_coverage_80"] = tally.coverage_80
            figures[f"{setting}_{shape}_coverage_95"] = tally.coverage_95
    if demo:
        stores = evaluate_demo()
        print_table(f"demo retailer: every store's SKUs, 4 origins × {HORIZON_DAYS} days", stores)
        for store, tally in stores.items():
            figures[f"demo_{store}_mae_vs_seasonal_naive"] = tally.vs_seasonal_naive
            figures[f"demo_{store}_mae_vs_mean_28d"] = tally.vs_recent_mean
    print(f"  (accuracy evaluated in {time.perf_counter() - started:,.0f} s)")
    if skus:
        timing = fit_time(skus)
        print(
            f"  one location of {skus:,} SKUs × {timing['history_days']:.0f} days: fitted and backtested in "
            f"{timing['fit_seconds']:.1f} s, every forecast read in {timing['read_every_forecast_seconds']:.1f} s"
        )
        figures.update({f"location_{name}": value for name, value in timing.items()})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.forecast_accuracy", description=__doc__)
    parser.add_argument("--series", type=int, default=60, help="synthetic series per shape in one location")
    parser.add_argument("--alone", type=int, default=10, help="series per shape each alone in a location (0: skip)")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo retailer")
    parser.add_argument("--skus", type=int, default=5_000, help="SKUs of the timed location (0: skip)")
    args = parser.parse_args()
    bench_forecast(args.series, alone_per_shape=args.alone, demo=not args.no_demo, skus=args.skus)


if __name__ == "__main__":
    main()
