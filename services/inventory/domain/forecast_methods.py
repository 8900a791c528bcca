"""Per-series forecasting methods, each computed for every SKU of a location at once.

Every method answers the same question — given the days before an origin, the expected
units of each of the following days — for all series together with numpy, so a
location of thousands of SKUs costs a handful of array operations per method and origin
rather than a model fit per SKU. Methods whose state runs through the history (ETS,
Croston, TSB) make one pass over the days and keep their state at every origin asked
for, so a rolling-origin backtest costs no more than one fit.

The methods, by name (see :data:`CANDIDATES`):

* ``seasonal_naive`` — each day sells what the same weekday sold in the last week; and
  ``mean_28d`` — the mean of the last 28 days, flat. These are the baselines every
  other method must beat on a series before it may serve it.
* ``weekday_mean_14d`` / ``_28d`` / ``_56d`` — the mean of the last two, four or eight
  weeks times the series' weekday profile; ``mean_56d`` the same without a profile.
* ``seasonal_mean_4w`` — the mean of the same weekday over the last four weeks.
* ``level_since_change`` — the level since the series' last significant level shift
  (a two-sample t statistic over the split of the last year's weekly sales; |t| > 4),
  else over the last 13 weeks, times the weekday profile: a series that halved three
  months ago is forecast at what it sells now, and a steady one at a long, quiet mean.
* ``ets_level`` / ``ets_damped_trend`` — exponential smoothing (Holt-Winters) with a
  multiplicative weekly season, without and with a damped additive trend; smoothing
  parameters chosen per series from a small grid by the one-step errors of the last 26
  weeks before the origin (so they follow what the series does now).
* ``croston`` / ``sba`` / ``tsb`` — the intermittent-demand methods: Croston's size
  over interval, its Syntetos-Boylan bias correction, and Teunter-Syntetos-Babai's
  demand probability times size (which, unlike Croston, decays when an item stops
  selling).

The weekday profile is each weekday's sales over the average day's in the last 26 weeks,
shrunk towards a flat week as far as its own week-to-week noise says (James-Stein): a
slow mover's handful of sales says little about its weekday pattern, a fast mover's
thousands say a lot. Over whole weeks it does not depend on the series' level, so a
level shift inside the window leaves it intact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.inventory.domain.demand_history import FloatArray

SEASONAL_NAIVE = "seasonal_naive"
RECENT_MEAN = "mean_28d"
BASELINES = (SEASONAL_NAIVE, RECENT_MEAN)
CANDIDATES = (
    "weekday_mean_14d",
    "weekday_mean_28d",
    "weekday_mean_56d",
    "mean_56d",
    "seasonal_mean_4w",
    "level_since_change",
    "ets_level",
    "ets_damped_trend",
    "croston",
    "sba",
    "tsb",
)

PROFILE_WEEKS = 26
CHANGE_WINDOW_WEEKS = 52
CHANGE_MIN_T = 4.0  # |t| of the level shift; a year of weekly splits needs a strict bar
QUIET_LEVEL_WEEKS = 13

# ETS: a small grid per series, chosen by in-sample one-step errors over the recent window.
ETS_ALPHAS = (0.03, 0.08, 0.2)
ETS_GAMMAS = (0.02, 0.08)
ETS_BETA = 0.03
ETS_PHIS = (0.9, 0.98)
ETS_SELECTION_DAYS = 182
ETS_MAX_HISTORY_DAYS = 728  # the recursion starts at most two years before the last origin
_ETS_SEASON_RANGE = (0.05, 5.0)  # a day's seasonal factor stays within these (slow movers' zeros)
_TINY = 1e-3

CROSTON_ALPHA = 0.1
TSB_ALPHA = 0.1
TSB_BETA = 0.05
_INIT_DAYS = 28


@dataclass(frozen=True)
class Origin:
    """Forecast ``leads`` days from column ``column`` of the sales matrix, knowing only the columns before it."""

    column: int
    leads: int


def candidate_forecasts(
    sales: FloatArray, first_weekday: int, origins: Sequence[Origin]
) -> dict[str, list[FloatArray]]:
    """Every baseline and candidate method's expected demand, per origin an array (series × leads)."""
    if not origins:
        return {name: [] for name in (*BASELINES, *CANDIDATES)}
    window_methods: dict[str, Callable[[FloatArray, int, int, int], FloatArray]] = {
        SEASONAL_NAIVE: seasonal_naive,
        RECENT_MEAN: lambda s, o, h, w: _flat_mean(s, o, h, 28),
        "weekday_mean_14d": lambda s, o, h, w: _weekday_mean(s, o, h, w, 14),
        "weekday_mean_28d": lambda s, o, h, w: _weekday_mean(s, o, h, w, 28),
        "weekday_mean_56d": lambda s, o, h, w: _weekday_mean(s, o, h, w, 56),
        "mean_56d": lambda s, o, h, w: _flat_mean(s, o, h, 56),
        "seasonal_mean_4w": _seasonal_mean,
        "level_since_change": level_since_change,
    }
    forecasts: dict[str, list[FloatArray]] = {
        name: [method(sales, origin.column, origin.leads, first_weekday) for origin in origins]
        for name, method in window_methods.items()
    }
    forecasts.update(_ets(sales, origins))
    forecasts.update(_intermittent(sales, origins))
    return forecasts


def seasonal_naive(sales: FloatArray, origin: int, leads: int, first_weekday: int = 0) -> FloatArray:
    """Each day sells what the same weekday sold in the last known week (nothing known: nothing)."""
    last_week = sales[:, max(0, origin - 7) : origin]
    if last_week.shape[1] < 7:
        last_week = np.concatenate([np.zeros((sales.shape[0], 7 - last_week.shape[1])), last_week], axis=1)
    return np.asarray(last_week[:, np.arange(leads) % 7], dtype=np.float64)


def weekday_profile(sales: FloatArray, origin: int, first_weekday: int) -> FloatArray:
    """Each series' demand per weekday relative to its average day (series × 7, Monday first)."""
    weeks = min(PROFILE_WEEKS, origin // 7)
    profile = np.ones((sales.shape[0], 7))
    if weeks:
        # Column origin − 7·weeks + p falls on weekday (first_weekday + origin + p) mod 7.
        block = sales[:, origin - 7 * weeks : origin].reshape(sales.shape[0], weeks, 7)
        profile[:, (first_weekday + origin + np.arange(7)) % 7] = position_profile(block)
    return profile


def position_profile(block: FloatArray) -> FloatArray:
    """The weekday profile of whole weeks (series × weeks × 7 days), by day position, shrunk by its noise.

    Each day's index is its sales over the weeks' average day (a ratio estimate); how far it
    may stray from a flat week is decided by James-Stein shrinkage: the seven indexes move
    towards one by the share of their spread that their own week-to-week noise explains. A
    slow mover's or an unseasonal item's profile ends up flat; a clear weekend peak stays.
    """
    series, weeks, _ = block.shape
    if weeks < 2:
        return np.ones((series, 7))
    average_day = block.mean(axis=2)  # (series, weeks)
    total = np.maximum(average_day.sum(axis=1), _TINY)
    raw = block.sum(axis=1) / total[:, None]  # (series, 7)
    residual = block - raw[:, None, :] * average_day[:, :, None]
    noise = (residual**2).sum(axis=1) * weeks / (weeks - 1) / total[:, None] ** 2  # variance of each index
    spread = ((raw - 1.0) ** 2).sum(axis=1)
    # Six free indexes (they average one): positive-part James-Stein with 6 − 2 = 4.
    keep = np.clip(1.0 - 4.0 * noise.mean(axis=1) / np.maximum(spread, 1e-12), 0.0, 1.0)
    return np.asarray(1.0 + keep[:, None] * (raw - 1.0), dtype=np.float64)


def _lead_weekdays(origin: int, leads: int, first_weekday: int) -> npt.NDArray[np.int_]:
    return np.asarray((first_weekday + origin + np.arange(leads)) % 7)


def _recent_mean(sales: FloatArray, origin: int, days: int) -> FloatArray:
    window = sales[:, max(0, origin - days) : origin]
    if window.shape[1] == 0:
        return np.zeros(sales.shape[0])
    return np.asarray(window.mean(axis=1), dtype=np.float64)


def _flat_mean(sales: FloatArray, origin: int, leads: int, days: int) -> FloatArray:
    return np.repeat(_recent_mean(sales, origin, days)[:, None], leads, axis=1)


def _weekday_mean(sales: FloatArray, origin: int, leads: int, first_weekday: int, days: int) -> FloatArray:
    # Whole weeks only, so every weekday weighs the same in the level.
    whole = min(days, 7 * (origin // 7)) or origin
    level = _recent_mean(sales, origin, whole)
    profile = weekday_profile(sales, origin, first_weekday)
    return np.asarray(level[:, None] * profile[:, _lead_weekdays(origin, leads, first_weekday)], dtype=np.float64)


def _seasonal_mean(sales: FloatArray, origin: int, leads: int, first_weekday: int) -> FloatArray:
    weeks = min(4, origin // 7)
    if weeks == 0:
        return _flat_mean(sales, origin, leads, origin)
    by_position = sales[:, origin - 7 * weeks : origin].reshape(sales.shape[0], weeks, 7).mean(axis=1)
    return np.asarray(by_position[:, np.arange(leads) % 7], dtype=np.float64)


def level_since_change(sales: FloatArray, origin: int, leads: int, first_weekday: int) -> FloatArray:
    """The level since the last significant shift (else of the last 13 weeks) times the weekday profile."""
    series = sales.shape[0]
    weeks = min(CHANGE_WINDOW_WEEKS, origin // 7)
    profile = weekday_profile(sales, origin, first_weekday)[:, _lead_weekdays(origin, leads, first_weekday)]
    if weeks < 6:
        return np.asarray(_recent_mean(sales, origin, 7 * weeks or origin)[:, None] * profile, dtype=np.float64)
    weekly = sales[:, origin - 7 * weeks : origin].reshape(series, weeks, 7).sum(axis=2)
    total = np.concatenate([np.zeros((series, 1)), np.cumsum(weekly, axis=1)], axis=1)
    squares = np.concatenate([np.zeros((series, 1)), np.cumsum(weekly**2, axis=1)], axis=1)
    splits = np.arange(4, weeks - 1)  # at least four weeks before, two after
    before, after = splits.astype(np.float64), (weeks - splits).astype(np.float64)
    mean_before = total[:, splits] / before
    mean_after = (total[:, [weeks]] - total[:, splits]) / after
    spread = (squares[:, splits] - before * mean_before**2) + (
        squares[:, [weeks]] - squares[:, splits] - after * mean_after**2
    )
    variance = np.maximum(spread / (weeks - 2), 1e-9)
    t_squared = (mean_after - mean_before) ** 2 / (variance * (1.0 / before + 1.0 / after))
    best = np.argmax(t_squared, axis=1)
    shifted = t_squared[np.arange(series), best] > CHANGE_MIN_T**2
    level_after = mean_after[np.arange(series), best] / 7.0
    quiet = weekly[:, -min(QUIET_LEVEL_WEEKS, weeks) :].mean(axis=1) / 7.0
    level = np.where(shifted, level_after, quiet)
    return np.asarray(level[:, None] * profile, dtype=np.float64)


def _ets_grid() -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Smoothing parameters (alpha, beta, gamma, phi) of every grid point, and which have a trend."""
    rows = [(alpha, 0.0, gamma, 0.0, False) for alpha in ETS_ALPHAS for gamma in ETS_GAMMAS]
    rows += [(alpha, ETS_BETA, gamma, phi, True) for alpha in ETS_ALPHAS for gamma in ETS_GAMMAS for phi in ETS_PHIS]
    alpha, beta, gamma, phi, trended = (np.array(column) for column in zip(*rows, strict=True))
    return alpha, beta, gamma, phi, trended.astype(np.bool_)


def _ets(sales: FloatArray, origins: Sequence[Origin]) -> dict[str, list[FloatArray]]:
    """Holt-Winters with a multiplicative weekly season, level-only and damped-trend, one pass for every origin."""
    series = sales.shape[0]
    alpha, beta, gamma, phi, trended = _ets_grid()
    columns = sorted({origin.column for origin in origins})
    begin = max(0, columns[-1] - ETS_MAX_HISTORY_DAYS)
    # Initial state from the first weeks before the earliest origin only: nothing after an origin leaks in.
    warm_up = max(1, min(_INIT_DAYS, columns[0] - begin))
    initial = sales[:, begin : begin + warm_up]
    level = np.repeat(np.maximum(initial.mean(axis=1), 0.0)[:, None], alpha.size, axis=1)
    trend = np.zeros_like(level)
    season = np.ones((series, alpha.size, 7))  # indexed by column mod 7
    if warm_up >= 14:
        whole = 7 * (warm_up // 7)
        slots = (begin + np.arange(7)) % 7
        season[:, :, slots] = position_profile(initial[:, :whole].reshape(series, whole // 7, 7))[:, None, :]
    squared_errors = np.zeros((series, alpha.size))
    checkpoints: dict[int, FloatArray] = {}
    wanted = set(columns) | {max(begin + warm_up, column - ETS_SELECTION_DAYS) for column in columns}
    states: dict[int, tuple[FloatArray, FloatArray, FloatArray]] = {}
    for column in range(begin, columns[-1] + 1):
        if column in wanted:
            checkpoints[column] = squared_errors.copy()
        if column in columns:
            states[column] = (level.copy(), trend.copy(), season.copy())
        if column == columns[-1]:
            break
        slot = column % 7
        seasonal = season[:, :, slot]
        base = level + phi * trend
        actual = sales[:, column][:, None]
        if column >= begin + warm_up:
            squared_errors += (actual - base * seasonal) ** 2
        new_level = np.maximum(alpha * actual / np.maximum(seasonal, _ETS_SEASON_RANGE[0]) + (1 - alpha) * base, 0.0)
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        season[:, :, slot] = np.clip(
            gamma * actual / np.maximum(base, _TINY) + (1 - gamma) * seasonal, *_ETS_SEASON_RANGE
        )
        level = new_level
    result: dict[str, list[FloatArray]] = {"ets_level": [], "ets_damped_trend": []}
    rows = np.arange(series)
    for origin in origins:
        column = origin.column
        recent = checkpoints[column] - checkpoints[max(begin + warm_up, column - ETS_SELECTION_DAYS)]
        level_at, trend_at, season_at = states[column]
        slots = (column + np.arange(origin.leads)) % 7
        steps = np.arange(1, origin.leads + 1)
        for name, members in (("ets_level", ~trended), ("ets_damped_trend", trended)):
            indices = np.flatnonzero(members)
            best = indices[np.argmin(recent[:, indices], axis=1)]
            damping = phi[best][:, None]
            # Σ φ^i for i = 1..h: how much of the trend each step ahead still carries.
            carried = np.where(damping > 0, damping * (1 - damping**steps) / np.maximum(1 - damping, 1e-12), 0.0)
            expected = (level_at[rows, best][:, None] + carried * trend_at[rows, best][:, None]) * season_at[
                rows, best
            ][:, slots]
            result[name].append(np.maximum(expected, 0.0))
    return result


def _intermittent(sales: FloatArray, origins: Sequence[Origin]) -> dict[str, list[FloatArray]]:
    """Croston, SBA and TSB, one pass over the days for every origin."""
    columns = sorted({origin.column for origin in origins})
    begin = max(0, columns[-1] - ETS_MAX_HISTORY_DAYS)
    warm_up = max(1, min(_INIT_DAYS, columns[0] - begin))
    initial = sales[:, begin : begin + warm_up]
    selling_days = (initial > 0).sum(axis=1)
    size = np.where(selling_days > 0, initial.sum(axis=1) / np.maximum(selling_days, 1), 1.0)
    interval = warm_up / np.maximum(selling_days, 1)
    since = np.zeros(sales.shape[0])
    probability = selling_days / warm_up
    tsb_size = size.copy()
    states: dict[int, tuple[FloatArray, FloatArray, FloatArray, FloatArray]] = {}
    for column in range(begin + warm_up, columns[-1] + 1):
        if column in columns:
            states[column] = (size.copy(), interval.copy(), probability.copy(), tsb_size.copy())
        if column == columns[-1]:
            break
        actual = sales[:, column]
        sold = actual > 0
        since = since + 1
        size = np.where(sold, size + CROSTON_ALPHA * (actual - size), size)
        interval = np.where(sold, interval + CROSTON_ALPHA * (since - interval), interval)
        since = np.where(sold, 0.0, since)
        probability = probability + TSB_BETA * (sold - probability)
        tsb_size = np.where(sold, tsb_size + TSB_ALPHA * (actual - tsb_size), tsb_size)
    for column in columns:
        states.setdefault(column, (size, interval, probability, tsb_size))  # origins inside the warm-up
    result: dict[str, list[FloatArray]] = {"croston": [], "sba": [], "tsb": []}
    for origin in origins:
        size_at, interval_at, probability_at, tsb_size_at = states[origin.column]
        rate = size_at / np.maximum(interval_at, 1.0)
        result["croston"].append(np.repeat(rate[:, None], origin.leads, axis=1))
        result["sba"].append(np.repeat(((1 - CROSTON_ALPHA / 2) * rate)[:, None], origin.leads, axis=1))
        result["tsb"].append(np.repeat((probability_at * tsb_size_at)[:, None], origin.leads, axis=1))
    return result
