"""Repurchase and churn models: trained by a background job, served from precomputed scores.

A training request queues a run (one at a time; asking while one is queued or training answers
with that run). Each replica's job claims a queued run, reads every kept purchase from the
projection, trains off the event loop (:func:`~services.marketing.domain.repurchase.train_repurchase`:
a backtest on a time split picks what serves, BG/NBD among the entrants), writes every member's
scores and makes the run the serving one — or records why it failed, leaving the serving run
as it was. A run whose trainer died (a killed process) is taken up again after an hour.

A member's propensity is read, never fitted per request: for the trained horizon, the stored
scores; for another horizon, the serving run's BG/NBD parameters applied to the member's own
purchase days (a closed-form expectation).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import FailedPrecondition, InvalidArgument, NotFound
from servicekit.idempotency import ReplyCodec, RequestFingerprint, keep_reply, replay
from services.marketing.adapters import model_store as store
from services.marketing.adapters.model_store import ModelRun
from services.marketing.domain.bgnbd import BgNbdParameters, expected_purchases, probability_of_purchase
from services.marketing.domain.purchase_history import PurchaseLog
from services.marketing.domain.recommendations import STORE_POPULAR, PurchaseLines, fit, select
from services.marketing.domain.repurchase import MAX_HORIZON_DAYS, MIN_HORIZON_DAYS, RepurchaseScores, train_repurchase

log = logging.getLogger("marketing.models")

KIND = "repurchase"
TRAINED_HORIZON_DAYS = 90
STALE_AFTER = timedelta(hours=1)
STORED_RECOMMENDATIONS = 20
BACKTEST_DAYS = 28
VERSION: ReplyCodec[str] = ReplyCodec(str.encode, bytes.decode)
_CST = ZoneInfo("Asia/Shanghai")  # the chain's calendar days


def new_model_version(now: datetime) -> str:
    return f"repurchase-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


class NoModel(FailedPrecondition):
    reason = "model-not-trained"


class MemberNotScored(FailedPrecondition):
    reason = "member-not-scored"


class UnknownMember(NotFound):
    reason = "member-not-found"


@dataclass(frozen=True, slots=True)
class TrainModel:
    request: RequestFingerprint
    requested_by: str


@dataclass(frozen=True, slots=True)
class Propensity:
    member_id: str
    horizon_days: int
    expected_purchases: float
    p_active: float
    model_version: str
    model: str  # what computed it: the served model for the trained horizon, else bgnbd
    as_of: date

    @property
    def churn_risk(self) -> float:
        return 1.0 - self.p_active


@dataclass(frozen=True, slots=True)
class ModelStatus:
    latest: ModelRun | None
    serving: ModelRun | None


def backtest_json(scores: RepurchaseScores) -> dict[str, Any] | None:
    if scores.backtest is None:
        return None
    backtest = scores.backtest
    return {
        "cutoff": backtest.cutoff.isoformat(),
        "horizon_days": backtest.horizon_days,
        "members": backtest.members,
        "actual_total": backtest.actual_total,
        "winner": backtest.winner,
        "errors": [asdict(error) for error in backtest.errors],
    }


class RepurchaseModels:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        executor: Executor,
        *,
        clock: Clock = utc_now,
        horizon_days: int = TRAINED_HORIZON_DAYS,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._executor = executor
        self._clock = clock
        self._horizon = horizon_days

    async def request_training(self, command: TrainModel) -> ModelRun:
        """Queue a training run, or answer with the one already queued or training."""
        now = self._clock()
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, VERSION)) is not None:
                run = await store.get_run(uow.session, KIND, first)
            else:
                version = new_model_version(now)
                if not await store.queue_run(uow.session, version, KIND, self._horizon, command.requested_by, now):
                    already = await store.open_run(uow.session, KIND)  # the run the new one collided with
                    if already is None:
                        raise FailedPrecondition("a training run just ended; ask again", reason="model-run-busy")
                    version = already.model_version
                await keep_reply(uow.session, command.request, VERSION, version)
                run = await store.get_run(uow.session, KIND, version)
                await uow.commit()
        assert run is not None
        return run

    async def status(self) -> ModelStatus:
        async with self._unit_of_work() as uow:
            return ModelStatus(await store.latest_run(uow.session, KIND), await store.serving_run(uow.session, KIND))

    async def train_next(self) -> bool:
        """Train the queued run, if there is one (the periodic job); whether one was trained."""
        now = self._clock()
        async with self._unit_of_work() as uow:
            run = await store.claim_run(uow.session, KIND, now, now - STALE_AFTER)
            if run is None:
                return False
            assert run.horizon_days is not None  # a repurchase run has one (a check in the table)
            rows = await store.purchase_rows(uow.session, now)
            lines = await store.purchase_lines(uow.session, now)
            homes = await store.home_stores(uow.session)
            await uow.commit()
        as_of = now.astimezone(_CST).date()
        try:
            scores = await asyncio.get_running_loop().run_in_executor(
                self._executor, _train, rows, as_of, run.horizon_days
            )
        except Exception as exc:  # a failed training leaves the serving model as it was
            log.exception("model training failed", extra={"model_version": run.model_version})
            async with self._unit_of_work() as uow:
                await store.finish_run(
                    uow.session,
                    run.model_version,
                    now=self._clock(),
                    succeeded=False,
                    error=f"{type(exc).__name__}: {exc}"[:500],
                )
                await uow.commit()
            return True
        async with self._unit_of_work() as uow:
            await store.write_scores(
                uow.session,
                run.model_version,
                scores.member_ids,
                scores.expected_purchases,
                scores.p_active,
                self._clock(),
            )
            await store.finish_run(
                uow.session,
                run.model_version,
                now=self._clock(),
                succeeded=True,
                as_of=as_of,
                training_members=len(scores.member_ids),
                served_model=scores.model,
                backtest=backtest_json(scores),
                bgnbd=asdict(scores.bgnbd),
            )
            await uow.commit()
        log.info("model trained", extra={"model_version": run.model_version, "served": scores.model})
        # Recommendations from the same data, best effort: their failure leaves the repurchase model serving.
        try:
            members, ranked, backtest = await asyncio.get_running_loop().run_in_executor(
                self._executor, recommend_everyone, lines, homes, as_of
            )
        except Exception:
            log.exception("recommendations failed", extra={"model_version": run.model_version})
            return True
        async with self._unit_of_work() as uow:
            await store.write_recommendations(uow.session, run.model_version, members, ranked)
            await store.set_recommendation_backtest(uow.session, run.model_version, backtest)
            await uow.commit()
        return True

    async def recommendations(self, member_id: str, limit: int) -> tuple[list[str], str]:
        """The member's recommended SKUs, best first, and the run that made them."""
        if not 1 <= limit <= STORED_RECOMMENDATIONS:
            raise InvalidArgument(f"limit is 1 to {STORED_RECOMMENDATIONS}", details={"field": "limit"})
        async with self._unit_of_work() as uow:
            if not await store.member_known(uow.session, member_id):
                raise UnknownMember("no such member")
            skus, version = await store.member_recommendations(uow.session, member_id, limit)
        if version is None:
            raise NoModel("no recommendations have been trained yet")
        return skus, version

    async def propensity(self, member_id: str, horizon_days: int) -> Propensity:
        if not MIN_HORIZON_DAYS <= horizon_days <= MAX_HORIZON_DAYS:
            raise InvalidArgument(
                f"horizon_days is {MIN_HORIZON_DAYS} to {MAX_HORIZON_DAYS}", details={"field": "horizon_days"}
            )
        async with self._unit_of_work() as uow:
            if not await store.member_known(uow.session, member_id):
                raise UnknownMember("no such member")
            run = await store.serving_run(uow.session, KIND)
            if run is None or run.as_of is None or run.bgnbd is None:
                raise NoModel("no repurchase model has been trained yet")
            p_active, expected, version = await store.member_score(uow.session, member_id)
            stored = horizon_days == run.horizon_days and version == run.model_version
            if stored and p_active is not None and expected is not None:
                served = run.served_model or "bgnbd"
                return Propensity(member_id, horizon_days, expected, p_active, run.model_version, served, run.as_of)
            as_of_end = datetime.combine(run.as_of, time.max, _CST)
            days = await store.member_days(uow.session, member_id, as_of_end)
        if not days:
            raise MemberNotScored("the member has no purchases to score")
        params = BgNbdParameters(**run.bgnbd)
        x = len(days) - 1
        t_x = (days[-1] - days[0]).days
        age = (run.as_of - days[0]).days
        expected_bgnbd = float(expected_purchases(params, horizon_days, [x], [t_x], [age])[0])
        p_bgnbd = float(probability_of_purchase(params, horizon_days, [x], [t_x], [age])[0])
        return Propensity(member_id, horizon_days, expected_bgnbd, p_bgnbd, run.model_version, "bgnbd", run.as_of)


def recommend_everyone(
    rows: list[tuple[str, str, int, str]], homes: dict[str, str], as_of: date
) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    """Every buyer's ranked items from the last year's purchase lines, by the method that won the
    backtest (hit rate @10 over the last 28 days against the store's best sellers).

    A store lists what it sold in the year (the projection keeps no assortment of its own)."""
    if not rows:
        return [], [], {}
    member_ids = sorted({row[0] for row in rows})
    skus = sorted({row[1] for row in rows})
    stores = sorted({row[3] for row in rows} | {store for member, store in homes.items() if member in set(member_ids)})
    member_at = {member_id: index for index, member_id in enumerate(member_ids)}
    sku_at = {sku: index for index, sku in enumerate(skus)}
    store_at = {store: index for index, store in enumerate(stores)}
    member = np.fromiter((member_at[row[0]] for row in rows), dtype=np.int64, count=len(rows))
    item = np.fromiter((sku_at[row[1]] for row in rows), dtype=np.int64, count=len(rows))
    day = np.fromiter((row[2] for row in rows), dtype=np.int64, count=len(rows))
    store = np.fromiter((store_at[row[3]] for row in rows), dtype=np.int64, count=len(rows))
    listed = np.zeros((len(stores), len(skus)), dtype=np.bool_)
    listed[store, item] = True
    # A member's store: their home store, else where they bought most.
    counts = np.zeros((len(member_ids), len(stores)), dtype=np.int64)
    np.add.at(counts, (member, store), 1)
    home = counts.argmax(axis=1)
    for member_id, store_id in homes.items():
        if member_id in member_at and store_id in store_at:
            home[member_at[member_id]] = store_at[store_id]
    lines = PurchaseLines(member, item, day, store, len(member_ids), len(skus), len(stores), home, listed)
    cutoff = as_of.toordinal() + 1 - BACKTEST_DAYS
    try:
        model, backtest = select(lines, cutoff=cutoff, horizon_days=BACKTEST_DAYS)
        report: dict[str, Any] = {
            "served": backtest.served,
            "hit_rate_at_10": backtest.hit_rate_at_10,
            "baseline": STORE_POPULAR,
        }
    except ValueError:  # too little history to backtest: the store's best sellers serve
        model = fit(lines, as_of.toordinal() + 1, STORE_POPULAR)
        report = {"served": STORE_POPULAR, "hit_rate_at_10": {}, "baseline": STORE_POPULAR}
    ranked: list[list[str]] = []
    for start in range(0, len(member_ids), 20_000):
        top = model.recommend(
            np.arange(start, min(start + 20_000, len(member_ids)), dtype=np.int64), STORED_RECOMMENDATIONS
        )
        ranked += [
            [skus[index] for index in row if listed[home[start + position], index]] for position, row in enumerate(top)
        ]
    return member_ids, ranked, report


def _train(rows: tuple[list[str], list[int], list[int]], as_of: date, horizon_days: int) -> RepurchaseScores:
    members, days, amounts = rows
    ids = sorted(set(members))
    position = {member_id: index for index, member_id in enumerate(ids)}
    log_ = PurchaseLog.from_arrays(ids, [position[m] for m in members], days, amounts)
    return train_repurchase(log_, as_of, horizon_days)
