"""Synthetic member populations for the repurchase models' tests (not the demo's data).

Two kinds:

- :func:`bgnbd_customers` and :func:`bgnbd_population` draw from BG/NBD's own generative
  story with known parameters: what the baseline assumes, exactly. On these the
  baseline must recover its parameters, its expectations must match a Monte-Carlo of
  the same process, and the selection must not serve anything worse than it.
- :func:`retail_population` is what a chain's CRM looks like instead, written from how
  retail members behave and not from how any model here works: two thirds of members
  buy once and never return; the others buy at rates spread over two orders of
  magnitude (log-normal), some in bursts (a purchase makes the next one likelier for a
  week or two: a renovation, a party, a newborn), and leave after a lifetime of their
  own; everybody buys more at weekends and around the Spring Festival, less in the late
  summer; the chain's business slowly declines (a competitor opened); members keep
  joining throughout, more of them lately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from services.marketing.domain.bgnbd import BgNbdParameters
from services.marketing.domain.purchase_history import PurchaseLog

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SimulatedCustomers:
    """BG/NBD customers observed for ``age`` each: their (x, t_x, T), whether alive at T, and the future's count."""

    frequency: FloatArray
    recency: FloatArray
    age: FloatArray
    alive: npt.NDArray[np.bool_]
    future_purchases: FloatArray


def bgnbd_customers(
    params: BgNbdParameters, age: FloatArray, horizon: float, rng: np.random.Generator
) -> SimulatedCustomers:
    """Customers drawn from BG/NBD's generative process, each observed for their ``age``, then ``horizon`` more."""
    count = age.shape[0]
    rate = rng.gamma(params.r, 1.0 / params.alpha, count)
    dropout = rng.beta(params.a, params.b, count)
    # Repeat purchases a customer makes before dropping out (they drop right after the last of them).
    lifetime_purchases = rng.geometric(dropout)
    possible = rng.poisson(rate * age)
    frequency = np.minimum(lifetime_purchases, possible)
    # The x-th of n uniform purchase times on (0, T] is T × Beta(x, n − x + 1).
    recency = np.where(
        frequency > 0, age * rng.beta(np.maximum(frequency, 1), np.maximum(possible - frequency, 0) + 1), 0.0
    )
    alive = lifetime_purchases > possible
    future = np.where(alive, np.minimum(lifetime_purchases - possible, rng.poisson(rate * horizon)), 0)
    return SimulatedCustomers(
        frequency.astype(np.float64), recency, age.astype(np.float64), alive, future.astype(np.float64)
    )


def _member_ids(count: int) -> list[str]:
    return [f"M{index:07d}" for index in range(count)]


def bgnbd_population(params: BgNbdParameters, members: int, *, start: date, days: int, seed: int) -> PurchaseLog:
    """A purchase log drawn from BG/NBD (rates per day) for members joining uniformly over ``days`` from ``start``."""
    rng = np.random.default_rng(seed)
    joined = rng.uniform(0.0, days, members)
    rate = rng.gamma(params.r, 1.0 / params.alpha, members)
    lifetime_purchases = rng.geometric(rng.beta(params.a, params.b, members))
    possible = rng.poisson(rate * (days - joined))
    owner = np.repeat(np.arange(members), possible)
    times = np.repeat(joined, possible) + rng.uniform(0.0, 1.0, owner.size) * np.repeat(days - joined, possible)
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    # Rank of each purchase among its member's: only the first `lifetime_purchases` happen.
    first_row = np.searchsorted(owner, np.arange(members))
    rank = np.arange(owner.size) - first_row[owner]
    kept = rank < lifetime_purchases[owner]
    member = np.concatenate([np.arange(members), owner[kept]])
    day = np.floor(np.concatenate([joined, times[kept]])).astype(np.int64) + start.toordinal()
    amount = rng.integers(1_000, 50_000, member.size)
    return PurchaseLog.from_arrays(_member_ids(members), member, day, amount)


def retail_population(members: int, *, start: date, days: int, seed: int) -> PurchaseLog:
    """A chain's members over ``days`` from ``start``: mostly one-time buyers, lumpy, seasonal, drifting, joining."""
    rng = np.random.default_rng(seed)
    # More members join lately (the programme grows): join day density rises over the period.
    joined = np.floor(days * rng.uniform(0.0, 1.0, members) ** 0.75).astype(np.int64)
    one_time = rng.uniform(size=members) < 0.65
    # Purchases a day while alive: median one every ~70 days, a heavy tail of weekly shoppers and more.
    rate = np.exp(rng.normal(math.log(1 / 70), 1.1, members))
    # Lifetimes: most repeat buyers stay a year or two, some for good.
    leaves = joined + np.ceil(rng.exponential(rng.choice([250.0, 700.0, 5000.0], members, p=[0.4, 0.4, 0.2]))).astype(
        np.int64
    )
    bursty = rng.uniform(size=members) < 0.3
    # A third of the repeat buyers shop on a routine (the weekly or monthly grocery run): their gaps vary
    # around their own mean (Gamma with shape 4) instead of being memoryless.
    routine = ~bursty & (rng.uniform(size=members) < 0.45)
    due = joined + np.ceil(rng.gamma(4.0, 0.25 / rate)).astype(np.int64)
    excitement = np.zeros(members)
    basket = np.exp(rng.normal(math.log(8_000), 0.7, members))
    bought_member: list[npt.NDArray[np.int64]] = []
    bought_day: list[npt.NDArray[np.int64]] = []
    # Everybody's first purchase is the day they join.
    bought_member.append(np.arange(members))
    bought_day.append(joined)
    for day in range(days):
        calendar_day = start + timedelta(days=day)
        weekend = 1.5 if calendar_day.weekday() >= 5 else 0.9
        # Peak around the Spring Festival (late January / February), trough in late summer.
        season = 1.0 + 0.3 * math.cos(2 * math.pi * (calendar_day.timetuple().tm_yday - 35) / 365.25)
        # The chain slowly loses business: about a quarter less at the end than at the start.
        level = math.exp(-0.3 * day / days)
        alive = (joined < day) & (day < leaves) & ~one_time
        intensity = (rate + excitement) * (weekend * season * level)
        chance = rng.uniform(size=members) < -np.expm1(-intensity)
        # A routine shopper buys when their next trip is due (sooner in busy seasons), else only in a burst.
        buys = alive & np.where(routine, due <= day, chance)
        shopped = buys & routine
        pace = weekend * season * level
        due[shopped] = day + np.maximum(np.round(rng.gamma(4.0, 0.25 / (rate[shopped] * pace))), 1).astype(np.int64)
        buyers = np.flatnonzero(buys)
        if buyers.size:
            bought_member.append(buyers)
            bought_day.append(np.full(buyers.size, day, dtype=np.int64))
        excitement *= 0.85
        # A bursty member's purchase brings on average about half a purchase more within two weeks.
        excitement[buys & bursty] += 0.08
    member = np.concatenate(bought_member)
    day_index = np.concatenate(bought_day)
    amount = np.maximum(np.round(basket[member] * np.exp(rng.normal(0.0, 0.5, member.size))), 100).astype(np.int64)
    return PurchaseLog.from_arrays(_member_ids(members), member, day_index + start.toordinal(), amount)
