"""How many purchases each member will make in the next H days, whether they will buy at all, and which model says so.

Three models answer, each for every member who has bought by the cut-off:

- ``bgnbd`` — the published baseline (:mod:`.bgnbd`), fitted on the calibration period;
  its probability of buying in the horizon is P(alive) × P(a purchase | alive).
- ``recency_frequency`` — a heuristic any analyst would write first: the member's
  purchase days over the last 365 days (the first purchase not counted, so a one-time
  buyer's rate is zero) divided by the days they were a member within that window (at
  least 30), times the horizon; zero for a member who has not bought for more than
  365 days. Its probability of buying is 1 − e^(−expected) (a Poisson guess).
- ``rfm_gradient_boosting`` — the production candidate: gradient-boosted trees over
  recency / frequency / monetary features, recent-window counts, the gaps between
  purchases, and BG/NBD's own prediction and P(alive). It learns from the chain's most
  recent past: features summarised at c − H, target the purchase days in (c − H, c],
  then applied to the features at c. The trees are boosted *from* BG/NBD: they learn a
  multiplicative correction of its expectation (a Poisson regression with BG/NBD's
  expectation as the exposure), so where they find nothing to correct BG/NBD stands.
  What there is to correct is what BG/NBD's stationary story cannot know: the latest
  level of a chain whose business drifts, the two-thirds of members who buy once and
  never return, purchases in bursts, shoppers on a routine. The chain's seasons are
  taken out of the counts and put back for the horizon (:class:`ChainSeasonality`):
  learned in the summer trough, applied to the run-up to the Spring Festival.
  Expected purchases come from the Poisson-loss regressor; whether the member buys at
  all from a classifier of the same features — the probability of an event that the
  backtest can check, unlike BG/NBD's latent "alive" (which is 1 for every one-time
  buyer, the very members a churn score is for).

- ``bgnbd_and_boosting_average`` — the mean of the two above, expectations and
  probabilities alike. Two forecasts whose errors are not the same errors are steadier
  averaged than either alone (and an average's absolute error is never above the mean
  of theirs), so the race has this entrant too.

So for every member: ``expected_purchases`` (H days), ``p_active`` = P(at least one
purchase in the next H days) and ``churn_risk`` = 1 − ``p_active`` (no purchase in the
next H days — an observable churn, scored by AUC and Brier in the backtest).

:func:`backtest_repurchase` scores every model on a time split: calibration up to c,
holdout (c, c + H]; per-member MAE of purchase days in the holdout, the error of the
cohort total, and for the churn probability AUC and Brier score. :func:`train_repurchase`
backtests with c = as_of − H, serves the winner of MAE (BG/NBD if it wins), and scores
every member at ``as_of`` with it. Per-member MAE is the published yardstick; mind that
on counts that are mostly zero it rewards forecasting too little (the median of a
one-time buyer's next quarter is 0, the mean is not), so a model that under-forecasts
the cohort total can win it — the total's error sits beside it for that reason.

Scale: everything is vectorised over members; features are float32; BG/NBD fits with
its analytic gradient, and the boosted trees train on at most ``MAX_TRAINING_MEMBERS``
members drawn at random, on one core.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # scikit-learn's own dependency

from services.marketing.domain.bgnbd import (
    BgNbdParameters,
    expected_purchases,
    fit_bgnbd,
    probability_alive,
    probability_of_purchase,
)
from services.marketing.domain.purchase_history import FloatArray, IntArray, PurchaseLog, PurchaseSummary

BGNBD = "bgnbd"
RECENCY_FREQUENCY = "recency_frequency"
GRADIENT_BOOSTING = "rfm_gradient_boosting"
COMBINED = "bgnbd_and_boosting_average"
MODELS = (BGNBD, RECENCY_FREQUENCY, GRADIENT_BOOSTING, COMBINED)

MIN_HORIZON_DAYS = 7
MAX_HORIZON_DAYS = 365
# The heuristic's window, the shortest membership it divides by, and its inactivity threshold.
HEURISTIC_WINDOW_DAYS = 365
HEURISTIC_MIN_DAYS = 30
HEURISTIC_INACTIVE_DAYS = 365
# Below these the boosted trees have too little to learn from and do not take part.
MIN_TRAINING_MEMBERS = 500
MIN_TRAINING_BUYERS = 50
MAX_TRAINING_MEMBERS = 400_000
_RANDOM_STATE = 20261206
_MIN_EXPOSURE = 1e-4  # BG/NBD's expectation for a long-silent heavy buyer underflows to 0

FloatMatrix = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class RepurchasePrediction:
    """One model's answer for the members of a summary (arrays aligned with ``members``)."""

    model: str
    members: IntArray
    expected_purchases: FloatArray
    p_active: FloatArray

    @property
    def churn_risk(self) -> FloatArray:
        return np.asarray(1.0 - self.p_active, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class ModelError:
    """One model's backtest: per-member MAE (purchase days), the cohort total's relative error, and churn scores.

    ``total_error`` is (Σ expected − Σ actual) ÷ Σ actual: negative under-predicts.
    ``churn_auc`` ranks members by ``p_active`` against whether they bought (0.5 is
    chance); ``churn_brier`` is the mean squared error of ``p_active`` (lower is better).
    """

    model: str
    mae: float
    total_error: float
    churn_auc: float
    churn_brier: float


@dataclass(frozen=True, slots=True)
class RepurchaseBacktest:
    """Every model scored on calibration up to ``cutoff`` and the holdout (cutoff, cutoff + horizon]."""

    cutoff: date
    horizon_days: int
    members: int
    actual_total: int
    errors: tuple[ModelError, ...]

    @property
    def winner(self) -> str:
        """The model with the lowest per-member MAE (the first of ``MODELS`` on a tie, so BG/NBD before the others)."""
        return min(self.errors, key=lambda error: (error.mae, MODELS.index(error.model))).model

    def error(self, model: str) -> ModelError:
        for error in self.errors:
            if error.model == model:
                return error
        raise KeyError(model)


@dataclass(frozen=True, slots=True)
class RepurchaseScores:
    """What serves: the winner's scores for every member who had bought by ``as_of``, and the backtest behind it.

    ``backtest`` is ``None`` when nobody had bought a horizon before ``as_of`` (nothing to
    backtest on): then the published baseline, BG/NBD, serves.
    """

    as_of: date
    horizon_days: int
    model: str
    member_ids: tuple[str, ...]
    expected_purchases: npt.NDArray[np.float32]
    p_active: npt.NDArray[np.float32]
    backtest: RepurchaseBacktest | None
    bgnbd: BgNbdParameters

    @property
    def churn_risk(self) -> npt.NDArray[np.float32]:
        return np.asarray(1.0 - self.p_active, dtype=np.float32)


def check_horizon(horizon_days: int) -> None:
    if not MIN_HORIZON_DAYS <= horizon_days <= MAX_HORIZON_DAYS:
        raise ValueError(f"horizon_days must be between {MIN_HORIZON_DAYS} and {MAX_HORIZON_DAYS}, not {horizon_days}")


def recency_frequency_prediction(summary: PurchaseSummary, horizon_days: int) -> RepurchasePrediction:
    """The heuristic: the repeat-purchase rate of the last 365 days times the horizon, zero after a year's silence."""
    in_window = summary.recent_purchase_days[HEURISTIC_WINDOW_DAYS]
    # The first purchase is how a member joined, not a repeat: one-time buyers get a zero rate.
    joined_in_window = summary.age < HEURISTIC_WINDOW_DAYS
    repeats = np.maximum(in_window - joined_in_window, 0.0)
    membership = np.clip(summary.age + 1.0, HEURISTIC_MIN_DAYS, HEURISTIC_WINDOW_DAYS)
    expected = repeats / membership * horizon_days
    expected = np.where(summary.days_since_last_purchase > HEURISTIC_INACTIVE_DAYS, 0.0, expected)
    return RepurchasePrediction(RECENCY_FREQUENCY, summary.members, expected, -np.expm1(-expected))


def fit_bgnbd_on(summary: PurchaseSummary) -> BgNbdParameters:
    """BG/NBD fitted on a summary's members (time in days)."""
    return fit_bgnbd(summary.frequency, summary.recency, summary.age).parameters


def bgnbd_prediction(summary: PurchaseSummary, params: BgNbdParameters, horizon_days: int) -> RepurchasePrediction:
    """BG/NBD's conditional expectation and probability of a purchase in the next ``horizon_days``."""
    x, t_x, age = summary.frequency, summary.recency, summary.age
    return RepurchasePrediction(
        BGNBD,
        summary.members,
        expected_purchases(params, horizon_days, x, t_x, age),
        probability_of_purchase(params, horizon_days, x, t_x, age),
    )


FEATURES = (
    "frequency",
    "recency",
    "age",
    "days_since_last_purchase",
    "purchase_days_30",
    "purchase_days_90",
    "purchase_days_365",
    "lifetime_rate",
    "mean_gap",
    "gap_std",
    "last_gap",
    "log_mean_amount",
    "bgnbd_expected",
    "bgnbd_p_alive",
    "bgnbd_p_purchase",
)


def repurchase_features(
    summary: PurchaseSummary, params: BgNbdParameters, horizon_days: int, seasonality: ChainSeasonality | None = None
) -> FloatMatrix:
    """The boosted trees' features for every member of the summary (members × ``FEATURES``, float32).

    The 30- and 90-day counts are divided by the chain's seasonal level of their days
    (see :class:`ChainSeasonality`), so "two visits in the last 90 days" means the
    same in the Spring Festival run-up as in the late-summer trough.
    """
    x, t_x, age = summary.frequency, summary.recency, summary.age
    as_of = summary.as_of

    def adjusted(window: int) -> FloatArray:
        level = seasonality.level(as_of - timedelta(days=window), as_of) if seasonality is not None else 1.0
        return np.asarray(summary.recent_purchase_days[window] / level, dtype=np.float64)

    columns = (
        x,
        t_x,
        age,
        summary.days_since_last_purchase,
        adjusted(30),
        adjusted(90),
        summary.recent_purchase_days[365],
        x / np.maximum(age, 1.0),
        summary.mean_gap,
        summary.gap_std,
        summary.last_gap,
        np.log1p(summary.mean_amount_fen),
        expected_purchases(params, horizon_days, x, t_x, age),
        probability_alive(params, x, t_x, age),
        probability_of_purchase(params, horizon_days, x, t_x, age),
    )
    features = np.empty((summary.count, len(columns)), dtype=np.float32)
    for index, column in enumerate(columns):
        features[:, index] = column
    return features


class ChainSeasonality:
    """How busy the chain is on a stretch of days relative to its trend, read off the same days a year before.

    The chain's seasonal index of a day is its repeat purchase days (first purchases are
    how members join, not how busy the shops are) divided by their centred 365-day
    moving average, so membership growth and a slow drift cancel out. The level of a
    stretch of days is the mean index of the same stretch 364 days earlier (52 weeks:
    the same weekdays). Only purchases up to the cut-off are read; a stretch whose
    year-earlier index is not fully known (less than about a year and a half of history)
    has level 1: no seasonal adjustment.
    """

    _HALF_WINDOW = 182
    _YEAR = 364

    def __init__(self, first_day: int, index: FloatArray) -> None:
        self._first_day = first_day
        self._index = index

    @classmethod
    def of(cls, log: PurchaseLog, cutoff: date) -> ChainSeasonality:
        known = log.day <= cutoff.toordinal()
        if not known.any():
            return cls(cutoff.toordinal(), np.full(1, np.nan))
        member, day = log.member[known], log.day[known].astype(np.int64)
        repeat = np.zeros(member.shape, dtype=np.bool_)
        repeat[1:] = member[1:] == member[:-1]
        first_day = int(day.min())
        daily = np.bincount(day[repeat] - first_day, minlength=cutoff.toordinal() - first_day + 1).astype(np.float64)
        half = cls._HALF_WINDOW
        totals = np.concatenate([[0.0], np.cumsum(daily)])
        centres = np.arange(half, daily.size - half)
        average = (totals[centres + half + 1] - totals[centres - half]) / (2 * half + 1)
        index = np.full(daily.size, np.nan)
        index[centres] = np.where(average > 0, daily[centres] / np.maximum(average, 1e-12), np.nan)
        return cls(first_day, index)

    def level(self, after: date, through: date) -> float:
        """The seasonal level of the days in ``(after, through]`` (1 when it cannot be read)."""
        start = after.toordinal() - self._YEAR + 1 - self._first_day
        stop = through.toordinal() - self._YEAR + 1 - self._first_day
        if start < 0 or stop > self._index.size or stop <= start:
            return 1.0
        days = self._index[start:stop]
        if np.isnan(days).any() or days.mean() <= 0:
            return 1.0
        # Clipped: a level beyond ×2 either way is a broken history, not a season.
        return float(np.clip(days.mean(), 0.5, 2.0))


def _one_thread() -> AbstractContextManager[object]:
    """Train on one OpenMP thread: training is a background job that must not starve the service's requests."""
    limits: AbstractContextManager[object] = threadpool_limits(limits=1, user_api="openmp")
    return limits


class RfmBoostingModel:
    """Boosted trees learned from the latest window before a cut-off, applied at the cut-off."""

    def __init__(
        self,
        horizon_days: int,
        regressor: HistGradientBoostingRegressor,
        classifier: HistGradientBoostingClassifier,
        training_members: int,
        training_level: float,
    ) -> None:
        self.horizon_days = horizon_days
        self.training_level = training_level
        self._regressor = regressor
        self._classifier = classifier
        self.training_members = training_members

    @classmethod
    def fit(cls, log: PurchaseLog, cutoff: date, horizon_days: int) -> RfmBoostingModel | None:
        """Learn from features at ``cutoff − H`` and purchase days in ``(cutoff − H, cutoff]``.

        ``None`` when that earlier window holds too few members or buyers to learn from.
        """
        start = cutoff - timedelta(days=horizon_days)
        summary = log.summary(start)
        if summary.count < MIN_TRAINING_MEMBERS:
            return None
        target = log.purchase_days_between(start, cutoff)[summary.members].astype(np.float64)
        if np.count_nonzero(target) < MIN_TRAINING_BUYERS:
            return None
        seasonality = ChainSeasonality.of(log, cutoff)
        features = repurchase_features(summary, fit_bgnbd_on(summary), horizon_days, seasonality)
        if summary.count > MAX_TRAINING_MEMBERS:
            rows = np.random.default_rng(_RANDOM_STATE).choice(summary.count, MAX_TRAINING_MEMBERS, replace=False)
            features, target = features[rows], target[rows]
        # Boosted from BG/NBD: the trees learn a multiplicative correction of its expectation (Poisson
        # regression of target ÷ BG/NBD with BG/NBD as exposure), so what they cannot learn stays BG/NBD's.
        # In the chain's seasonally adjusted units: the target window's season is part of the exposure.
        target_level = seasonality.level(start, cutoff)
        exposure = np.maximum(features[:, FEATURES.index("bgnbd_expected")].astype(np.float64), _MIN_EXPOSURE)
        exposure *= target_level
        regressor = HistGradientBoostingRegressor(
            loss="poisson",
            learning_rate=0.05,
            max_iter=100,
            max_leaf_nodes=31,
            # Leaves of at least 200 members: a rule learned from fewer is a few members' noise.
            min_samples_leaf=200,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=_RANDOM_STATE,
        )
        classifier = HistGradientBoostingClassifier(
            learning_rate=0.1,
            max_iter=100,
            max_leaf_nodes=31,
            min_samples_leaf=100,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=_RANDOM_STATE,
        )
        with _one_thread():
            regressor.fit(features, target / exposure, sample_weight=exposure)
            classifier.fit(features, target > 0)
        return cls(horizon_days, regressor, classifier, int(target.shape[0]), target_level)

    def predict(
        self, summary: PurchaseSummary, params: BgNbdParameters, seasonality: ChainSeasonality
    ) -> RepurchasePrediction:
        """Scores at the summary's cut-off; ``params`` is BG/NBD fitted on that summary, ``seasonality`` read by then.

        The expectation is the trees' correction × BG/NBD's expectation × the seasonal
        level of the horizon. The classifier learned whether members bought in a window
        of the training window's season; for the horizon's season the probability of no
        purchase is scaled as a Poisson count's would be: (1 − p)^(level ratio).
        """
        features = repurchase_features(summary, params, self.horizon_days, seasonality)
        level = seasonality.level(summary.as_of, summary.as_of + timedelta(days=self.horizon_days))
        with _one_thread():
            exposure = np.maximum(features[:, FEATURES.index("bgnbd_expected")].astype(np.float64), _MIN_EXPOSURE)
            expected = np.asarray(self._regressor.predict(features), dtype=np.float64) * exposure * level
            buys = np.asarray(self._classifier.predict_proba(features)[:, 1], dtype=np.float64)
        p_active = 1.0 - (1.0 - buys) ** (level / self.training_level)
        return RepurchasePrediction(GRADIENT_BOOSTING, summary.members, expected, p_active)


def predict_repurchase(
    log: PurchaseLog, cutoff: date, horizon_days: int, models: Collection[str] = MODELS
) -> tuple[PurchaseSummary, BgNbdParameters, dict[str, RepurchasePrediction]]:
    """Each of ``models`` (that can be trained on this log) for every member who had bought by ``cutoff``."""
    check_horizon(horizon_days)
    unknown = set(models) - set(MODELS)
    if unknown:
        raise ValueError(f"unknown repurchase models: {sorted(unknown)}")
    summary = log.summary(cutoff)
    if summary.count == 0:
        raise ValueError(f"no member had bought by {cutoff}")
    params = fit_bgnbd_on(summary)
    predictions: dict[str, RepurchasePrediction] = {}
    baseline = bgnbd_prediction(summary, params, horizon_days)
    if BGNBD in models:
        predictions[BGNBD] = baseline
    if RECENCY_FREQUENCY in models:
        predictions[RECENCY_FREQUENCY] = recency_frequency_prediction(summary, horizon_days)
    if GRADIENT_BOOSTING in models or COMBINED in models:
        boosting = RfmBoostingModel.fit(log, cutoff, horizon_days)
        if boosting is not None:
            boosted = boosting.predict(summary, params, ChainSeasonality.of(log, cutoff))
            if GRADIENT_BOOSTING in models:
                predictions[GRADIENT_BOOSTING] = boosted
            if COMBINED in models:
                predictions[COMBINED] = RepurchasePrediction(
                    COMBINED,
                    summary.members,
                    (baseline.expected_purchases + boosted.expected_purchases) / 2,
                    (baseline.p_active + boosted.p_active) / 2,
                )
    return summary, params, predictions


def score_prediction(prediction: RepurchasePrediction, actual: FloatArray) -> ModelError:
    """A prediction's errors against the purchase days that followed (aligned with its members)."""
    total = float(actual.sum())
    predicted_total = float(prediction.expected_purchases.sum())
    bought = actual > 0
    auc = float(roc_auc_score(bought, prediction.p_active)) if 0 < bought.sum() < bought.size else 0.5
    return ModelError(
        model=prediction.model,
        mae=float(np.abs(actual - prediction.expected_purchases).mean()),
        total_error=(predicted_total - total) / total if total > 0 else float(predicted_total > 0),
        churn_auc=auc,
        churn_brier=float(np.mean((prediction.p_active - bought) ** 2)),
    )


def backtest_repurchase(log: PurchaseLog, cutoff: date, horizon_days: int) -> RepurchaseBacktest:
    """Every model with calibration up to ``cutoff``, scored on the purchase days in ``(cutoff, cutoff + H]``."""
    summary, _, predictions = predict_repurchase(log, cutoff, horizon_days)
    actual = log.purchase_days_between(cutoff, cutoff + timedelta(days=horizon_days))[summary.members]
    actual_days = actual.astype(np.float64)
    return RepurchaseBacktest(
        cutoff=cutoff,
        horizon_days=horizon_days,
        members=summary.count,
        actual_total=int(actual.sum()),
        errors=tuple(score_prediction(prediction, actual_days) for prediction in predictions.values()),
    )


def train_repurchase(log: PurchaseLog, as_of: date, horizon_days: int) -> RepurchaseScores:
    """Backtest at ``as_of − H``, then score every member at ``as_of`` with the winner of that backtest.

    Without anybody to backtest on, or when the winner cannot be trained at ``as_of``
    (the latest window holds too few buyers for the trees), BG/NBD serves.
    """
    check_horizon(horizon_days)
    backtest_cutoff = as_of - timedelta(days=horizon_days)
    backtest = backtest_repurchase(log, backtest_cutoff, horizon_days) if log.summary(backtest_cutoff).count else None
    served = backtest.winner if backtest is not None else BGNBD
    summary, params, predictions = predict_repurchase(log, as_of, horizon_days, {served, BGNBD})
    prediction = predictions.get(served, predictions[BGNBD])
    return RepurchaseScores(
        as_of=as_of,
        horizon_days=horizon_days,
        model=prediction.model,
        member_ids=tuple(log.member_ids[member] for member in summary.members),
        expected_purchases=prediction.expected_purchases.astype(np.float32),
        p_active=np.clip(prediction.p_active, 0.0, 1.0).astype(np.float32),
        backtest=backtest,
        bgnbd=params,
    )
