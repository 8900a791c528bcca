"""千人千面: the items each member is likely to buy next, among those listed in their store.

Candidates, each scored per member over the items their store lists:

* ``store_popular`` — the baseline: the items bought most in the member's home store over the
  recent window (what a store without personalisation would show everyone);
* ``repeat`` — the member's own purchases, weighted by how recently and how often (in
  groceries, buying again is the strongest signal there is), then the store's popular items;
* ``item_neighbours`` — item-to-item co-purchase similarity (cosine over members), scored from
  the member's own recency-weighted history, blended with ``repeat`` and the store's popularity.
  The blend weights are chosen on an earlier validation cut of the chain's own history.

``exclude_habitual`` leaves out what the member buys almost every week anyway (bought in at
least ``habit_weeks`` of the last eight weeks): a campaign should not pay for those.

The backtest is a time split: everything before the cut-off trains, the following
``horizon_days`` test. **Hit rate @10** is the share of members who bought anything in the test
window for whom at least one of their ten recommendations was bought. The method that wins
the backtest serves; if none beats ``store_popular``, ``store_popular`` serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

STORE_POPULAR = "store_popular"
REPEAT = "repeat"
ITEM_NEIGHBOURS = "item_neighbours"
RECENT_DAYS = 90
HALF_LIFE_DAYS = 60.0
HABIT_WEEKS = 6

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PurchaseLines:
    """Purchase lines of a population as parallel arrays (indices into members and items)."""

    member: IntArray
    item: IntArray
    day: IntArray  # days since an epoch
    store: IntArray
    members: int
    items: int
    stores: int
    home_store: IntArray  # per member
    listed: NDArray[np.bool_]  # stores × items: whether the store lists the item

    def before(self, day: int) -> PurchaseLines:
        keep = self.day < day
        return self._subset(keep)

    def between(self, start: int, end: int) -> PurchaseLines:
        keep = (self.day >= start) & (self.day < end)
        return self._subset(keep)

    def _subset(self, keep: NDArray[np.bool_]) -> PurchaseLines:
        return PurchaseLines(
            self.member[keep],
            self.item[keep],
            self.day[keep],
            self.store[keep],
            self.members,
            self.items,
            self.stores,
            self.home_store,
            self.listed,
        )


@dataclass
class Recommender:
    method: str
    as_of: int
    store_popularity: FloatArray  # stores × items, each row scaled to a max of 1
    history: sparse.csr_matrix  # members × items, recency-weighted purchase counts
    habitual: sparse.csr_matrix  # members × items, 1 where the item is a weekly habit
    similarity: sparse.csr_matrix | None = None  # items × items
    weights: tuple[float, float, float] = (1.0, 0.0, 0.0)  # repeat, neighbours, popularity
    listed: NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    home_store: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def scores(self, members: IntArray) -> FloatArray:
        popularity = self.store_popularity[self.home_store[members]]
        if self.method == STORE_POPULAR:
            scores = popularity.copy()
        else:
            own = _row_scaled(self.history[members])
            w_repeat, w_neighbours, w_popular = self.weights
            scores = w_repeat * own.toarray() + w_popular * popularity
            if self.similarity is not None and w_neighbours > 0:
                scores += w_neighbours * _row_scaled_dense(np.asarray((own @ self.similarity).todense()))
            # Popularity breaks ties among items with no personal signal.
            scores += 1e-6 * popularity
        scores[~self.listed[self.home_store[members]]] = -np.inf
        return np.asarray(scores, dtype=np.float64)

    def recommend(self, members: IntArray, limit: int = 10, *, exclude_habitual: bool = False) -> IntArray:
        scores = self.scores(members)
        if exclude_habitual:
            scores[self.habitual[members].toarray() > 0] = -np.inf
        limit = min(limit, scores.shape[1])
        top = np.argpartition(-scores, limit - 1, axis=1)[:, :limit]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        return np.asarray(np.take_along_axis(top, order, axis=1), dtype=np.int64)


def _row_scaled(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    peak = np.asarray(matrix.max(axis=1).todense()).ravel()
    peak[peak == 0] = 1
    return sparse.csr_matrix(sparse.diags(1 / peak) @ matrix)


def _row_scaled_dense(matrix: FloatArray) -> FloatArray:
    peak = matrix.max(axis=1, keepdims=True)
    peak[peak <= 0] = 1
    return np.asarray(matrix / peak, dtype=np.float64)


def _history(lines: PurchaseLines, as_of: int) -> sparse.csr_matrix:
    weight = 0.5 ** ((as_of - lines.day) / HALF_LIFE_DAYS)
    return sparse.csr_matrix((weight, (lines.member, lines.item)), shape=(lines.members, lines.items))


def _habitual(lines: PurchaseLines, as_of: int) -> sparse.csr_matrix:
    recent = lines.between(as_of - 56, as_of)
    week = (as_of - 1 - recent.day) // 7
    pairs = np.unique(np.stack([recent.member, recent.item, week]), axis=1)
    weeks = sparse.csr_matrix((np.ones(pairs.shape[1]), (pairs[0], pairs[1])), shape=(lines.members, lines.items))
    weeks.data = (weeks.data >= HABIT_WEEKS).astype(np.float64)
    weeks.eliminate_zeros()
    return weeks


def _store_popularity(lines: PurchaseLines, as_of: int) -> FloatArray:
    recent = lines.between(as_of - RECENT_DAYS, as_of)
    counts = np.zeros((lines.stores, lines.items))
    np.add.at(counts, (recent.store, recent.item), 1.0)
    chain = counts.sum(axis=0, keepdims=True)
    # A store with little history borrows the chain's ranking (a tiny weight: its own comes first).
    counts = counts + 1e-3 * chain / max(float(chain.max()), 1.0)
    peak = counts.max(axis=1, keepdims=True)
    peak[peak == 0] = 1
    return np.asarray(counts / peak, dtype=np.float64)


def _similarity(lines: PurchaseLines, neighbours: int = 50) -> sparse.csr_matrix:
    """Item-to-item cosine similarity over members (who bought it), keeping each item's top neighbours."""
    bought = sparse.csr_matrix(
        (np.ones(len(lines.member)), (lines.member, lines.item)), shape=(lines.members, lines.items)
    )
    bought.data = np.log1p(bought.data)
    norms = np.sqrt(np.asarray(bought.multiply(bought).sum(axis=0)).ravel())
    norms[norms == 0] = 1
    scaled = sparse.csr_matrix(bought @ sparse.diags(1 / norms))
    similarity = (scaled.T @ scaled).tocsr()
    similarity.setdiag(0)
    similarity.eliminate_zeros()
    rows, cols, values = [], [], []
    for item in range(similarity.shape[0]):
        start, end = similarity.indptr[item], similarity.indptr[item + 1]
        if end == start:
            continue
        data, index = similarity.data[start:end], similarity.indices[start:end]
        keep = np.argsort(-data)[:neighbours]
        rows.append(np.full(len(keep), item))
        cols.append(index[keep])
        values.append(data[keep])
    if not rows:
        return sparse.csr_matrix((lines.items, lines.items))
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=similarity.shape
    )


BLENDS = ((1.0, 0.5, 0.1), (1.0, 1.0, 0.1), (0.5, 1.0, 0.2), (1.0, 0.25, 0.05), (0.2, 1.0, 0.2))


def fit(
    lines: PurchaseLines, as_of: int, method: str, weights: tuple[float, float, float] = (1.0, 0.0, 0.1)
) -> Recommender:
    history = lines.before(as_of)
    return Recommender(
        method=method,
        as_of=as_of,
        store_popularity=_store_popularity(history, as_of),
        history=_history(history, as_of),
        habitual=_habitual(history, as_of),
        similarity=_similarity(history) if method == ITEM_NEIGHBOURS else None,
        weights=weights,
        listed=lines.listed,
        home_store=lines.home_store,
    )


def hit_rate(recommender: Recommender, test: PurchaseLines, limit: int = 10, batch: int = 20_000) -> float:
    """Share of members who bought in ``test`` with at least one of their ``limit`` recommendations bought."""
    buyers = np.unique(test.member)
    if len(buyers) == 0:
        return 0.0
    bought = sparse.csr_matrix((np.ones(len(test.member)), (test.member, test.item)), shape=(test.members, test.items))
    hits = 0
    for start in range(0, len(buyers), batch):
        members = buyers[start : start + batch]
        top = recommender.recommend(members, limit)
        rows = bought[members]
        hits += int(sum(rows[i, top[i]].sum() > 0 for i in range(len(members))))
    return hits / len(buyers)


@dataclass(frozen=True)
class RecommendationBacktest:
    hit_rate_at_10: dict[str, float]
    served: str
    weights: tuple[float, float, float]


def select(lines: PurchaseLines, cutoff: int, horizon_days: int = 28) -> tuple[Recommender, RecommendationBacktest]:
    """Backtest every method on ``[cutoff, cutoff + horizon)``, then fit the winner on all history."""
    validation_cut = cutoff - horizon_days
    validation = lines.between(validation_cut, cutoff)
    best_weights = max(
        BLENDS, key=lambda w: hit_rate(fit(lines.before(cutoff), validation_cut, ITEM_NEIGHBOURS, w), validation)
    )
    test = lines.between(cutoff, cutoff + horizon_days)
    candidates = {
        STORE_POPULAR: fit(lines, cutoff, STORE_POPULAR),
        REPEAT: fit(lines, cutoff, REPEAT),
        ITEM_NEIGHBOURS: fit(lines, cutoff, ITEM_NEIGHBOURS, best_weights),
    }
    rates = {name: hit_rate(model, test) for name, model in candidates.items()}
    served = max(rates, key=lambda name: (rates[name], name == STORE_POPULAR))
    weights = best_weights if served == ITEM_NEIGHBOURS else (1.0, 0.0, 0.1)
    final = fit(lines, int(lines.day.max()) + 1, served, weights)
    return final, RecommendationBacktest(rates, served, weights)
