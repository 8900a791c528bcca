"""False alarms of the sales-anomaly detector on generated lumpy data, on a time split.

A synthetic store of leaf categories, each holding a few SKUs of the shapes of
``bench.demand_shapes`` (a generator written independently of the forecaster and of the
detector: wandering levels, noisy weekday profiles, over-dispersed counts, slow movers
selling on few days, lumpy lots), minus the ``promotions`` shape (unannounced promotions
are exactly what the detector is meant to see, not a false alarm). Every day of the
evaluation window (the last ``--days`` days) is judged as the service judges a closed day:
the location fitted on the days before it only, each category's band made from its SKUs'
intervals for the day (``forecast``) and from the same weekday of the previous weeks
(``seasonal_baseline``), with the service's default policy. Nothing is injected, so every
alert is a false alarm; it prints the rate per category-day that was judged (expected
volume at or above the policy's minimum), for the 99% band the service uses and for a 95%
band beside it, and how often a day whose sales are cut by 40% (what a 30% price rise can
do to an elastic category) would have been caught.

``python -m bench.sales_anomalies`` (no servers needed; about a minute).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from bench.demand_shapes import SHAPES, SyntheticSeries, Timeline, generate
from services.inventory.domain.forecasting import DemandHistory, fit_location_forecasts
from services.inventory.domain.sales_anomalies import AnomalyPolicy, Band, forecast_band, judge, seasonal_band

NORMAL_SHAPES = tuple(shape for shape in SHAPES if shape != "promotions")
DROP = Decimal("0.6")  # a day selling 40% less than it would have


@dataclass
class Tally:
    judged: int = 0  # category-days with enough expected volume to be judged
    alarms: int = 0
    caught_drops: int = 0
    below_minimum: int = 0  # category-days too small to judge

    def line(self, name: str) -> str:
        judged = max(self.judged, 1)
        return (
            f"{name:<34} judged {self.judged:5d}  false alarms {self.alarms:4d} ({self.alarms / judged:6.2%})  "
            f"40% drops caught {self.caught_drops / judged:6.1%}  too small to judge {self.below_minimum}"
        )


def store(categories: int, skus_per_category: int, seed: int, timeline: Timeline) -> dict[str, list[SyntheticSeries]]:
    """Categories of SKUs of mixed shapes: each SKU drawn from a shape's own generated series."""
    rng = random.Random(seed)
    pools = {
        shape: generate(shape, categories * skus_per_category, seed=seed, timeline=timeline) for shape in NORMAL_SHAPES
    }
    taken: dict[str, int] = defaultdict(int)
    result: dict[str, list[SyntheticSeries]] = {}
    for number in range(categories):
        members = []
        for _ in range(skus_per_category):
            shape = rng.choice(NORMAL_SHAPES)
            members.append(pools[shape][taken[shape]])
            taken[shape] += 1
        result[f"CAT{number:02d}"] = members
    return result


def judge_all(tallies: dict[str, Tally], name: str, band: Band | None, actual: Decimal, policy: AnomalyPolicy) -> None:
    tally = tallies[name]
    if band is None or band.expected < policy.min_expected_units:
        tally.below_minimum += 1
        return
    tally.judged += 1
    tally.alarms += judge(actual, band, policy) is not None
    tally.caught_drops += judge(actual * DROP, band, policy) is not None


def backtest(categories: int, skus_per_category: int, days: int, seed: int) -> dict[str, Tally]:
    timeline = Timeline(first_origin=date(2025, 12, 1), history_days=364, horizon_days=days, origins=1)
    shop = store(categories, skus_per_category, seed, timeline)
    policy = AnomalyPolicy()
    policy_95 = replace(policy, band_probability=0.95)
    tallies: dict[str, Tally] = defaultdict(Tally)
    series = [(category, member) for category, members in shop.items() for member in members]
    first_day = timeline.first_day
    for offset in range(days):
        day = timeline.first_origin + timedelta(days=offset)
        column = (day - first_day).days
        histories = [
            DemandHistory(
                f"{category}/{member.sku}",
                "S",
                {first_day + timedelta(days=step): float(member.sales[step]) for step in range(column)},
            )
            for category, member in series
        ]
        forecasts = fit_location_forecasts(histories, start=day)
        for category, members in shop.items():
            actual = Decimal(int(sum(member.sales[column] for member in members)))
            intervals = []
            for member in members:
                forecast = forecasts.forecast(f"{category}/{member.sku}", 1)
                if forecast is not None and forecast.intervals:
                    intervals.append(forecast.intervals[0])
            weeks = [
                Decimal(int(sum(member.sales[column - 7 * week] for member in members)))
                for week in range(1, policy.baseline_weeks + 1)
            ]
            for name, chosen in (("forecast, 99% band (service)", policy), ("forecast, 95% band", policy_95)):
                judge_all(tallies, name, forecast_band(intervals, chosen.band_probability), actual, chosen)
            for name, chosen in (("seasonal baseline, 99% band", policy), ("seasonal baseline, 95% band", policy_95)):
                judge_all(tallies, name, seasonal_band(weeks, chosen), actual, chosen)
    return dict(tallies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--categories", type=int, default=16)
    parser.add_argument("--skus", type=int, default=6, help="SKUs per category")
    parser.add_argument("--days", type=int, default=28, help="days judged after the split")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    started = time.perf_counter()
    tallies = backtest(args.categories, args.skus, args.days, args.seed)
    print(
        f"{args.categories} categories × {args.skus} SKUs ({', '.join(NORMAL_SHAPES)}), "
        f"{args.days} days judged after a year of history, nothing injected:"
    )
    for name, tally in tallies.items():
        print(tally.line(name))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
