"""The uplift model: trained by a background job from ended campaigns, served from precomputed scores.

Like the repurchase model (:mod:`.models`): a request queues a run (one at a time; asking while one
is queued or training answers with that run); a replica's job claims it, reads every treated and
control member of the campaigns whose attribution window is over, with their features at launch
and their outcome, and trains off the event loop (:func:`~services.marketing.domain.uplift.train_uplift`:
two learners judged by their Qini on the most recent campaigns, held out). A run whose winner beats
random targeting on them scores every member as of now and becomes the serving run in the same
transaction; otherwise the run fails with the reason (and its backtest), and the serving run —
if there is one — stays. While none serves, campaigns cannot target by uplift
(:class:`~services.marketing.domain.campaigns.UpliftModelUnavailable`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import FailedPrecondition
from servicekit.idempotency import ReplyCodec, RequestFingerprint, keep_reply, replay
from services.marketing.adapters import model_store, uplift_store
from services.marketing.adapters.model_store import ModelRun
from services.marketing.domain.uplift import RANDOM, CampaignOutcomes, UpliftTraining, predict_uplift, train_uplift

log = logging.getLogger("marketing.uplift")

KIND = "uplift"
STALE_AFTER = timedelta(hours=1)  # a run training since longer than this lost its trainer
VERSION: ReplyCodec[str] = ReplyCodec(str.encode, bytes.decode)
_CST = ZoneInfo("Asia/Shanghai")


def new_uplift_version(now: datetime) -> str:
    return f"uplift-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class TrainUpliftModel:
    request: RequestFingerprint
    requested_by: str


@dataclass(frozen=True, slots=True)
class UpliftStatus:
    latest: ModelRun | None
    serving: ModelRun | None


class UpliftModels:
    def __init__(self, unit_of_work: Callable[[], UnitOfWork], executor: Executor, *, clock: Clock = utc_now) -> None:
        self._unit_of_work = unit_of_work
        self._executor = executor
        self._clock = clock

    async def request_training(self, command: TrainUpliftModel) -> ModelRun:
        """Queue a training run, or answer with the one already queued or training."""
        now = self._clock()
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, VERSION)) is not None:
                run = await model_store.get_run(uow.session, KIND, first)
            else:
                version = new_uplift_version(now)
                if not await model_store.queue_run(uow.session, version, KIND, None, command.requested_by, now):
                    already = await model_store.open_run(uow.session, KIND)
                    if already is None:
                        raise FailedPrecondition("a training run just ended; ask again", reason="model-run-busy")
                    version = already.model_version
                await keep_reply(uow.session, command.request, VERSION, version)
                run = await model_store.get_run(uow.session, KIND, version)
                await uow.commit()
        assert run is not None
        return run

    async def status(self) -> UpliftStatus:
        async with self._unit_of_work() as uow:
            return UpliftStatus(
                await model_store.latest_run(uow.session, KIND), await model_store.serving_run(uow.session, KIND)
            )

    async def train_next(self) -> bool:
        """Train the queued run, if there is one (the periodic job); whether one was trained."""
        now = self._clock()
        loop = asyncio.get_running_loop()
        async with self._unit_of_work() as uow:
            run = await model_store.claim_run(uow.session, KIND, now, now - STALE_AFTER)
            if run is None:
                return False
            await uow.commit()  # claimed: another replica's job skips it
        reading = loop.time()
        async with self._unit_of_work() as uow:
            outcomes = await uplift_store.campaign_outcomes(uow.session, now)
            members, features = await uplift_store.member_features(uow.session, now)
        started = loop.time()
        try:
            training, scores = await loop.run_in_executor(self._executor, _train, outcomes, features)
        except Exception as exc:  # the serving model, if any, stays
            log.exception("uplift training failed", extra={"model_version": run.model_version})
            await self._finish(run, now, error=f"{type(exc).__name__}: {exc}"[:500], members=outcomes.rows)
            return True
        report = training.report() | {
            "reading_seconds": round(started - reading, 3),
            "training_seconds": round(loop.time() - started, 3),
        }
        if scores is None:
            qini = ", ".join(f"{name} {value:.3f}" for name, value in training.backtest.qini.items())
            error = (
                f"no learner beat random targeting on the held-out campaigns by a Qini of {training.min_qini} "
                f"({qini}); targeting by uplift stays unavailable"
            )
            await self._finish(run, now, error=error, members=outcomes.rows, report=report)
            return True
        async with self._unit_of_work() as uow:
            await uplift_store.write_uplift(uow.session, run.model_version, members, scores, self._clock())
            await model_store.finish_run(
                uow.session,
                run.model_version,
                now=self._clock(),
                succeeded=True,
                as_of=now.astimezone(_CST).date(),
                training_members=outcomes.rows,
                served_model=training.learner,
                backtest=report,
            )
            await uow.commit()
        log.info("uplift model trained", extra={"model_version": run.model_version, "served": training.learner})
        return True

    async def _finish(
        self, run: ModelRun, now: datetime, *, error: str, members: int, report: dict[str, object] | None = None
    ) -> None:
        async with self._unit_of_work() as uow:
            await model_store.finish_run(
                uow.session,
                run.model_version,
                now=self._clock(),
                succeeded=False,
                as_of=now.astimezone(_CST).date(),
                training_members=members,
                served_model=RANDOM if report is not None else None,
                backtest=report,
                error=error,
            )
            await uow.commit()


async def uplift_model_serving(uow: UnitOfWork) -> bool:
    """Whether an uplift model serves (what targeting by uplift needs)."""
    return await model_store.serving_run(uow.session, KIND) is not None


def _train(
    outcomes: CampaignOutcomes, features: npt.NDArray[np.float64]
) -> tuple[UpliftTraining, npt.NDArray[np.float64] | None]:
    training = train_uplift(outcomes)
    if training.model is None:
        return training, None
    return training, predict_uplift(training.model, features) if len(features) else np.zeros(0)
