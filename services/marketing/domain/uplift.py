"""Who is *persuadable*: a model of the effect of an offer on each member, judged by its Qini.

A propensity model ranks members by how likely they are to buy; a campaign aimed at the top
of that list mostly pays members who would have bought anyway. An **uplift** model ranks them
by how much the offer changes that likelihood, learned from past campaigns' random control
groups (the only data that shows it).

Two learners, both on scikit-learn:

* **two-model** (T-learner): one classifier of the outcome on treated members, one on control
  members; the uplift is the difference of their predictions;
* **transformed outcome** (class transformation generalised to unequal groups): a regressor of
  ``Z = y·(w/p − (1 − w)/(1 − p))`` whose expectation given the features *is* the uplift, where
  ``p`` is the share treated (a 90/10 split is the usual case, so the 50/50 form will not do).

Evaluation is the **Qini curve** on held-out campaigns: members sorted by predicted uplift, at
each cut-off ``k`` the incremental responders ``Q(k) = R_T(k) − R_C(k) · N_T(k) / N_C(k)``; the
**Qini coefficient** is the area between that curve and random targeting's straight line,
divided by the same area of the best possible ranking (1 is perfect, 0 is no better than
random, below 0 is worse). :func:`uplift_at_k` is the plain difference of response rates in the
top ``k`` share. :func:`fit_uplift` keeps whichever learner wins the held-out Qini, and reports
when neither beats random (then targeting by uplift is not offered).

What it learns from (:class:`CampaignOutcomes`): every treated and control member of the
campaigns whose attribution window is over, with the member's purchase features **as of the
campaign's launch** (:data:`UPLIFT_FEATURES`: recency, frequency, monetary value, tenure and
lifecycle stage — what the member looked like when the offer went out, never what the offer
itself brought) and whether they bought within the window (intention to treat, as in the
campaign report). :func:`holdout_split` keeps the most recent campaigns out of training for
the Qini: a model is judged on campaigns it never saw, the way it will be used. With a single
campaign there is nothing to hold out but members, drawn at random — and the backtest says so.
:func:`train_uplift` does both and returns the model (or none) with what it was judged on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # scikit-learn's own dependency

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

TWO_MODEL = "two_model"
TRANSFORMED_OUTCOME = "transformed_outcome"
RANDOM = "random"

# What a member looked like at a moment (a campaign's launch to learn, now to score), in this
# order; NaN where there is nothing to measure (the recency of a member who never bought).
UPLIFT_FEATURES = (
    "days_since_last_purchase",
    "days_since_first_purchase",
    "purchase_days",
    "purchase_days_30",
    "purchase_days_90",
    "purchase_days_365",
    "log_spend_365",
    "log_mean_amount",
    "tenure_days",
    "lifecycle_stage",  # position in segments.LIFECYCLE_STAGES (−1 unknown)
)
MIN_QINI = 0.02
HOLDOUT_SHARE = 0.25  # at least this share of the members is held out for the Qini
HOLDOUT_CAMPAIGNS = "campaigns"
HOLDOUT_RANDOM_MEMBERS = "random_members"


def qini_curve(uplift: FloatArray, treated: IntArray, outcome: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Cut-offs (members targeted, 0 … n) and the incremental responders ``Q`` at each."""
    order = np.argsort(-uplift, kind="stable")
    w = treated[order].astype(np.float64)
    y = outcome[order].astype(np.float64)
    n_t = np.cumsum(w)
    n_c = np.cumsum(1 - w)
    r_t = np.cumsum(y * w)
    r_c = np.cumsum(y * (1 - w))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(n_c > 0, r_t - r_c * n_t / n_c, r_t)
    cutoffs = np.arange(0, len(order) + 1, dtype=np.float64)
    return cutoffs, np.concatenate([[0.0], q])


def _area(x: FloatArray, y: FloatArray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def qini_coefficient(uplift: FloatArray, treated: IntArray, outcome: FloatArray) -> float:
    """Area between the Qini curve and random targeting, over that of the perfect ranking."""
    x, q = qini_curve(uplift, treated, outcome)
    random_line = x / x[-1] * q[-1]
    # The perfect ranking: treated responders first, control responders last.
    perfect_score = outcome * np.where(treated == 1, 1.0, -1.0)
    _, q_best = qini_curve(perfect_score.astype(np.float64), treated, outcome)
    best = _area(x, q_best) - _area(x, random_line)
    if best <= 0:
        return 0.0
    return (_area(x, q) - _area(x, random_line)) / best


def uplift_at_k(uplift: FloatArray, treated: IntArray, outcome: FloatArray, share: float) -> float:
    """Response rate of treated minus control members among the top ``share`` by predicted uplift."""
    top = np.argsort(-uplift, kind="stable")[: max(1, int(len(uplift) * share))]
    w, y = treated[top], outcome[top]
    if w.sum() == 0 or (1 - w).sum() == 0:
        return 0.0
    return float(y[w == 1].mean() - y[w == 0].mean())


@dataclass
class TwoModelUplift:
    treated_model: HistGradientBoostingClassifier
    control_model: HistGradientBoostingClassifier

    def predict(self, features: FloatArray) -> FloatArray:
        p_t = self.treated_model.predict_proba(features)[:, 1]
        p_c = self.control_model.predict_proba(features)[:, 1]
        return np.asarray(p_t - p_c, dtype=np.float64)


@dataclass
class TransformedOutcomeUplift:
    model: HistGradientBoostingRegressor

    def predict(self, features: FloatArray) -> FloatArray:
        return np.asarray(self.model.predict(features), dtype=np.float64)


UpliftModel = TwoModelUplift | TransformedOutcomeUplift


def _classifier(seed: int) -> HistGradientBoostingClassifier:
    # Shallow, strongly regularised trees: uplift is a small difference of two noisy estimates.
    return HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=100,
        l2_regularization=1.0,
        random_state=seed,
    )


def fit_two_model(features: FloatArray, treated: IntArray, outcome: FloatArray, seed: int = 0) -> TwoModelUplift:
    is_treated = treated == 1
    if len(np.unique(outcome[is_treated])) < 2 or len(np.unique(outcome[~is_treated])) < 2:
        raise ValueError("each group needs responders and non-responders")
    treated_model = _classifier(seed).fit(features[is_treated], outcome[is_treated])
    control_model = _classifier(seed).fit(features[~is_treated], outcome[~is_treated])
    return TwoModelUplift(treated_model, control_model)


def fit_transformed_outcome(
    features: FloatArray, treated: IntArray, outcome: FloatArray, seed: int = 0
) -> TransformedOutcomeUplift:
    p = float(treated.mean())
    if not 0 < p < 1:
        raise ValueError("both groups are needed")
    z = outcome * (treated / p - (1 - treated) / (1 - p))
    model = HistGradientBoostingRegressor(
        max_iter=150,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=200,
        l2_regularization=1.0,
        random_state=seed,
    )
    return TransformedOutcomeUplift(model.fit(features, z))


@dataclass(frozen=True)
class UpliftBacktest:
    qini: dict[str, float]  # learner → Qini coefficient on the held-out campaigns (random is 0)
    uplift_at_10: dict[str, float]
    served: str  # the learner in production, or RANDOM when none beat random targeting


@dataclass
class FittedUplift:
    model: UpliftModel | None
    backtest: UpliftBacktest


def fit_uplift(
    train: tuple[FloatArray, IntArray, FloatArray],
    held_out: tuple[FloatArray, IntArray, FloatArray],
    *,
    min_qini: float = 0.02,
    seed: int = 0,
) -> FittedUplift:
    """Fit both learners on ``train`` campaigns, score them on ``held_out`` ones, keep the winner.

    The winner is refitted on both sets before it serves. When neither reaches ``min_qini`` on
    the held-out campaigns, no model serves: ranking by it would be no better than random.
    """
    learners: dict[str, Callable[..., UpliftModel]] = {
        TWO_MODEL: fit_two_model,
        TRANSFORMED_OUTCOME: fit_transformed_outcome,
    }
    x_h, w_h, y_h = held_out
    qini: dict[str, float] = {}
    at_10: dict[str, float] = {}
    for name, fit in learners.items():
        model = fit(*train, seed=seed)
        predicted = model.predict(x_h)
        qini[name] = qini_coefficient(predicted, w_h, y_h)
        at_10[name] = uplift_at_k(predicted, w_h, y_h, 0.1)
    best = max(qini, key=lambda name: qini[name])
    if qini[best] < min_qini:
        return FittedUplift(None, UpliftBacktest(qini, at_10, RANDOM))
    everything = tuple(np.concatenate([a, b]) for a, b in zip(train, held_out, strict=True))
    model = learners[best](everything[0], everything[1].astype(np.int64), everything[2], seed=seed)
    return FittedUplift(model, UpliftBacktest(qini, at_10, best))


class NothingToLearn(ValueError):
    """No ended campaign with treated and control members: no effect can be measured."""


@dataclass(frozen=True)
class CampaignOutcomes:
    """One row per treated or control member of an ended campaign (arrays aligned).

    ``campaign_ids`` are in launch order, oldest first; ``campaign`` is each row's position in it.
    """

    campaign_ids: tuple[str, ...]
    campaign: IntArray
    features: FloatArray  # rows × UPLIFT_FEATURES
    treated: IntArray
    outcome: FloatArray

    @property
    def rows(self) -> int:
        return int(self.treated.shape[0])


@dataclass(frozen=True)
class HoldoutSplit:
    method: str  # HOLDOUT_CAMPAIGNS or HOLDOUT_RANDOM_MEMBERS
    train: NDArray[np.bool_]
    held_out: NDArray[np.bool_]
    training_campaigns: tuple[str, ...]
    holdout_campaigns: tuple[str, ...]


def holdout_split(data: CampaignOutcomes, *, share: float = HOLDOUT_SHARE, seed: int = 0) -> HoldoutSplit:
    """The most recent campaigns, until they hold ``share`` of the members, are held out (one at
    least, and one at least left to train on); a single campaign's members are split at random."""
    if data.rows == 0 or not len(data.campaign_ids):
        raise NothingToLearn("no ended campaign has treated and control members to learn from")
    if len(data.campaign_ids) < 2:
        held_out = np.random.default_rng(seed).random(data.rows) < share
        ids = tuple(data.campaign_ids)
        return HoldoutSplit(HOLDOUT_RANDOM_MEMBERS, ~held_out, held_out, ids, ids)
    sizes = np.bincount(data.campaign, minlength=len(data.campaign_ids))
    first_held = len(data.campaign_ids) - 1
    while first_held > 1 and sizes[first_held:].sum() < share * data.rows:
        first_held -= 1
    held_out = data.campaign >= first_held
    return HoldoutSplit(
        HOLDOUT_CAMPAIGNS,
        ~held_out,
        held_out,
        tuple(data.campaign_ids[:first_held]),
        tuple(data.campaign_ids[first_held:]),
    )


@dataclass
class UpliftTraining:
    """A trained uplift model (None when none beat random targeting) and what it was judged on."""

    model: UpliftModel | None
    backtest: UpliftBacktest
    split: HoldoutSplit
    training_members: int
    holdout_members: int
    min_qini: float
    notes: list[str] = field(default_factory=list)

    @property
    def learner(self) -> str:
        return self.backtest.served

    def report(self) -> dict[str, object]:
        """The backtest as the model's status shows it (Qini of random targeting is 0 by construction)."""
        best = max(self.backtest.qini, key=lambda name: self.backtest.qini[name])
        return {
            "learner": self.backtest.served,
            "qini": self.backtest.qini[best],
            "qini_random": 0.0,
            "uplift_at_10pct": self.backtest.uplift_at_10[best],
            "qini_by_learner": dict(self.backtest.qini),
            "uplift_at_10pct_by_learner": dict(self.backtest.uplift_at_10),
            "min_qini": self.min_qini,
            "holdout": self.split.method,
            "holdout_campaigns": list(self.split.holdout_campaigns),
            "training_campaigns": list(self.split.training_campaigns),
            "training_members": self.training_members,
            "holdout_members": self.holdout_members,
            "features": list(UPLIFT_FEATURES),
            "notes": list(self.notes),
        }


def train_uplift(data: CampaignOutcomes, *, min_qini: float = MIN_QINI, seed: int = 0) -> UpliftTraining:
    """Split off the held-out campaigns, fit both learners, keep the one that wins their Qini (if it
    beats random by ``min_qini``); on one OpenMP thread, as a background job must."""
    split = holdout_split(data, seed=seed)
    notes = []
    if split.method == HOLDOUT_RANDOM_MEMBERS:
        notes.append(
            "fewer than 2 ended campaigns: the Qini is measured on members of the same campaign held out at "
            "random, not on a campaign the model never saw"
        )
    train = (data.features[split.train], data.treated[split.train], data.outcome[split.train])
    held_out = (data.features[split.held_out], data.treated[split.held_out], data.outcome[split.held_out])
    for name, (_, w, _y) in (("training", train), ("held-out", held_out)):
        if w.size == 0 or w.min() == w.max():
            raise NothingToLearn(f"the {name} members need both treated and control members")
    with threadpool_limits(limits=1, user_api="openmp"):
        fitted = fit_uplift(train, held_out, min_qini=min_qini, seed=seed)
    return UpliftTraining(
        fitted.model, fitted.backtest, split, int(split.train.sum()), int(split.held_out.sum()), min_qini, notes
    )


def predict_uplift(model: UpliftModel, features: FloatArray) -> FloatArray:
    with threadpool_limits(limits=1, user_api="openmp"):
        return model.predict(features)
