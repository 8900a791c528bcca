"""Synthetic daily demand whose true process is known: the shapes real retail series have.

This generator is deliberately independent of ``demodata`` (the demo retailer's own sales
generator, which the old forecaster was designed around) and of the forecaster's
methods: each shape is written down from what a store's sales look like, not from what a
model can fit. Every series is a count process around a known expected demand

    expected(t) = base × level(t) × weekday(t) × events(t)

observed with over-dispersed (negative-binomial, i.e. Poisson-gamma) noise, on a level
that also wanders as a random walk (a real SKU's level drifts for reasons nobody
records) and a weekday profile that is noisy from week to week. The shapes add one
feature each on top of that:

* ``declining`` / ``growing``: the level drifts a long way over the history (a category
  in decline, a store after a competitor opened; a new line catching on);
* ``step_down`` / ``step_up``: the level halves (or doubles) once, two to four months
  before the first forecast, and stays there;
* ``strong_weekly`` / ``no_weekly``: a pronounced weekend peak, or none at all;
* ``intermittent`` / ``lumpy``: slow movers selling on few days, a unit or two at a time,
  or in irregular large lots (a caterer's order);
* ``promotions``: price promotions of a few days lifting demand two to three times, with
  the pantry-loading dip after them (none announced to the forecaster);
* ``spring_festival``: the 年货 shopping before 春节 and the quiet festival week, whose
  date moves between late January and mid February from year to year, plus golden week.

Nothing here is tuned to make a method look good: ranges are wide and fixed in advance,
seeds are fixed so runs are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

SHAPES = (
    "declining",
    "growing",
    "step_down",
    "step_up",
    "strong_weekly",
    "no_weekly",
    "intermittent",
    "lumpy",
    "promotions",
    "spring_festival",
)
HISTORY_DAYS = 548  # eighteen months before the first forecast
HORIZON_DAYS = 28
ORIGINS = 4  # rolling origins, one horizon apart: the history grows by 28 days each time
FIRST_ORIGIN = date(2025, 12, 1)  # the windows run to late March 2026, over 春节 2026 (17 February)

# 春节 (the first day of the lunar year): late January to mid February.
SPRING_FESTIVALS = (date(2023, 1, 22), date(2024, 2, 10), date(2025, 1, 29), date(2026, 2, 17), date(2027, 2, 6))


@dataclass(frozen=True)
class SyntheticSeries:
    """One SKU's daily sales from ``first_day`` on, and the expected demand that generated them."""

    sku: str
    shape: str
    first_day: date
    sales: FloatArray
    expected: FloatArray


@dataclass(frozen=True)
class Timeline:
    """The days generated: ``history_days`` before the first origin, then every origin's horizon."""

    first_origin: date = FIRST_ORIGIN
    history_days: int = HISTORY_DAYS
    horizon_days: int = HORIZON_DAYS
    origins: int = ORIGINS

    @property
    def first_day(self) -> date:
        return self.first_origin - timedelta(days=self.history_days)

    @property
    def days(self) -> int:
        return self.history_days + self.horizon_days * self.origins

    def origin_days(self) -> list[date]:
        return [self.first_origin + timedelta(days=self.horizon_days * step) for step in range(self.origins)]


def generate(shape: str, count: int, *, seed: int, timeline: Timeline | None = None) -> list[SyntheticSeries]:
    """``count`` series of one shape; the same seed gives the same series."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    timeline = timeline or Timeline()
    rng = np.random.default_rng([seed, SHAPES.index(shape)])
    days = [timeline.first_day + timedelta(days=step) for step in range(timeline.days)]
    weekdays = np.array([day.weekday() for day in days])
    series = []
    for number in range(count):
        if shape in ("intermittent", "lumpy"):
            sales, expected = _slow_mover(shape, rng, weekdays)
        else:
            expected = _expected(shape, rng, timeline, days, weekdays)
            sales = _observe(rng, expected)
        series.append(SyntheticSeries(f"{shape.upper()}-{number:03d}", shape, timeline.first_day, sales, expected))
    return series


def _expected(
    shape: str, rng: np.random.Generator, timeline: Timeline, days: list[date], weekdays: npt.NDArray[np.int_]
) -> FloatArray:
    span = len(days)
    base = float(np.exp(rng.uniform(np.log(3.0), np.log(80.0))))
    strength = {"strong_weekly": rng.uniform(0.8, 1.4), "no_weekly": 0.0}.get(shape, rng.uniform(0.15, 0.5))
    weekday = _weekday_profile(rng, strength)[weekdays]
    # A noisy weekday structure: each week's days deviate from the profile on their own.
    weekday = weekday * np.exp(rng.normal(0.0, 0.08, span))
    # The level wanders as a random walk in logs (a few per cent a week).
    wander = np.exp(np.cumsum(rng.normal(0.0, rng.uniform(0.004, 0.012), span)))
    level = wander / wander.mean()
    step = np.arange(span, dtype=np.float64)
    first_origin = timeline.history_days
    if shape == "declining":
        level = level * np.exp(np.log(rng.uniform(0.3, 0.6)) * step / span)
    elif shape == "growing":
        level = level * np.exp(np.log(rng.uniform(1.6, 3.0)) * step / span)
    elif shape in ("step_down", "step_up"):
        change = first_origin - int(rng.integers(60, 121))
        factor = rng.uniform(0.35, 0.6) if shape == "step_down" else rng.uniform(1.6, 2.5)
        level = level * np.where(step >= change, factor, 1.0)
    events = np.ones(span)
    if shape == "promotions":
        events = _promotions(rng, span)
    elif shape == "spring_festival":
        events = _festivals(rng, days)
    return np.asarray(base * level * weekday * events, dtype=np.float64)


def _weekday_profile(rng: np.random.Generator, strength: float) -> FloatArray:
    """Monday..Sunday multipliers averaging one: quiet early week, busier Friday, weekend peak."""
    shape = np.array([-0.35, -0.4, -0.3, -0.2, 0.05, 0.65, 0.55]) + rng.normal(0.0, 0.12, 7)
    profile = np.exp(strength * shape)
    return np.asarray(profile / profile.mean(), dtype=np.float64)


def _promotions(rng: np.random.Generator, span: int) -> FloatArray:
    """A promotion every five weeks or so, lifting demand 1.8-3.5 times, then a week of pantry-loading dip."""
    events = np.ones(span)
    day = int(rng.integers(0, 35))
    while day < span:
        length = int(rng.integers(3, 11))
        events[day : day + length] *= rng.uniform(1.8, 3.5)
        events[day + length : day + length + 7] *= rng.uniform(0.7, 0.9)
        day += length + 7 + int(rng.exponential(28.0))
    return events


def _festivals(rng: np.random.Generator, days: list[date]) -> FloatArray:
    """年货 shopping rising over three weeks before 春节, a quiet festival week, a slow week back; golden week."""
    peak = rng.uniform(1.8, 3.0)
    quiet = rng.uniform(0.3, 0.7)
    golden = rng.uniform(1.15, 1.5)
    events = np.ones(len(days))
    for index, day in enumerate(days):
        for festival in SPRING_FESTIVALS:
            before = (festival - day).days
            if 1 <= before <= 21:
                events[index] *= 1.0 + (peak - 1.0) * (22 - before) / 21
            elif 0 <= -before <= 6:
                events[index] *= quiet
            elif 7 <= -before <= 13:
                events[index] *= 0.85
        if day.month == 10 and day.day <= 7:
            events[index] *= golden
    return events


def _slow_mover(shape: str, rng: np.random.Generator, weekdays: npt.NDArray[np.int_]) -> tuple[FloatArray, FloatArray]:
    """Sales on some days only: a unit or two at a time (intermittent) or in irregular lots (lumpy)."""
    rate = rng.uniform(0.04, 0.35) if shape == "intermittent" else rng.uniform(0.03, 0.2)
    chance = np.clip(rate * _weekday_profile(rng, strength=rng.uniform(0.0, 0.3))[weekdays], 0.0, 0.9)
    sells = rng.random(chance.size) < chance
    if shape == "intermittent":
        extra = rng.uniform(0.0, 0.8)
        sizes = 1 + rng.poisson(extra, chance.size)
    else:
        extra = rng.uniform(2.0, 10.0)
        sizes = 1 + rng.poisson(rng.gamma(1.0, extra, chance.size))  # a geometric-like spread of lot sizes
    return np.asarray(sells * sizes, dtype=np.float64), np.asarray(chance * (1 + extra), dtype=np.float64)


def _observe(rng: np.random.Generator, expected: FloatArray) -> FloatArray:
    """Units sold: negative-binomial (Poisson with a gamma-distributed mean) around the expected demand."""
    dispersion = rng.uniform(4.0, 30.0)  # gamma shape of the Poisson mean: lower is noisier
    return np.asarray(rng.poisson(expected * rng.gamma(dispersion, 1.0 / dispersion, expected.size)), dtype=np.float64)
