"""Recommendations beat "most popular in the member's store" on a time split, and respect the store."""

import numpy as np

from services.marketing.domain.recommendations import (
    ITEM_NEIGHBOURS,
    REPEAT,
    STORE_POPULAR,
    PurchaseLines,
    fit,
    hit_rate,
    select,
)

ITEMS, STORES, TASTES = 400, 6, 8


def shoppers(members: int, days: int, seed: int) -> PurchaseLines:
    """Members with a taste (a group of items they like), a few staples, and noise from the store's best sellers.

    Most members visit rarely (a long tail of one-off shoppers); a few visit weekly.
    """
    rng = np.random.default_rng(seed)
    taste_of_item = rng.integers(0, TASTES, ITEMS)
    popularity = rng.pareto(1.2, ITEMS) + 0.05
    listed = rng.random((STORES, ITEMS)) < 0.85
    home = rng.integers(0, STORES, members)
    taste = rng.integers(0, TASTES, members)
    visits_per_week = rng.gamma(0.6, 0.6, members)
    rows = []
    for member in range(members):
        visits = rng.poisson(visits_per_week[member] * days / 7)
        if visits == 0:
            continue
        store_items = np.flatnonzero(listed[home[member]])
        liked = store_items[taste_of_item[store_items] == taste[member]]
        staples = rng.choice(liked, size=min(3, len(liked)), replace=False)
        weights = popularity[store_items] / popularity[store_items].sum()
        for day in np.sort(rng.integers(0, days, visits)):
            basket = list(staples[rng.random(len(staples)) < 0.5])
            basket += list(rng.choice(liked, size=rng.integers(0, 3)))
            basket += list(rng.choice(store_items, size=rng.integers(1, 3), p=weights))
            rows += [(member, item, day, home[member]) for item in basket]
    data = np.array(rows, dtype=np.int64)
    return PurchaseLines(
        member=data[:, 0],
        item=data[:, 1],
        day=data[:, 2],
        store=data[:, 3],
        members=members,
        items=ITEMS,
        stores=STORES,
        home_store=home.astype(np.int64),
        listed=listed,
    )


def test_personal_recommendations_beat_the_store_best_sellers_on_the_weeks_after_the_cut() -> None:
    lines = shoppers(4_000, 210, seed=3)
    _, backtest = select(lines, cutoff=182)
    assert backtest.served in (REPEAT, ITEM_NEIGHBOURS)
    served_rate = backtest.hit_rate_at_10[backtest.served]
    assert served_rate > backtest.hit_rate_at_10[STORE_POPULAR] + 0.1, backtest


def test_recommendations_are_listed_in_the_members_store_and_habits_can_be_left_out() -> None:
    lines = shoppers(1_500, 120, seed=4)
    model = fit(lines, 120, REPEAT)
    members = np.arange(lines.members, dtype=np.int64)
    top = model.recommend(members, 10)
    assert lines.listed[lines.home_store[members][:, None], top].all()
    habitual = model.habitual
    assert habitual.nnz > 0
    without = model.recommend(members, 10, exclude_habitual=True)
    for member in np.unique(habitual.nonzero()[0]):
        assert not set(habitual[member].indices) & set(without[member])


def test_a_model_is_scored_only_on_members_who_bought_in_the_test_window() -> None:
    lines = shoppers(800, 120, seed=5)
    model = fit(lines, 100, STORE_POPULAR)
    assert 0.0 < hit_rate(model, lines.between(100, 120)) <= 1.0
    assert hit_rate(model, lines.between(500, 600)) == 0.0
