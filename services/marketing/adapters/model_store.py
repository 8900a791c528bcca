"""Training runs and the scores they leave on every member.

A run is queued by a request, claimed by one replica's training job (``FOR UPDATE SKIP
LOCKED``), and either succeeds — its scores are written for every member and it becomes the one
serving run of its kind, in one transaction — or fails, leaving the serving run as it was. At
most one run of a kind is queued or training at a time (a partial unique index).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.marketing.adapters.score_store import TIME_ZONE


@dataclass(frozen=True)
class ModelRun:
    model_version: str
    kind: str
    status: str
    horizon_days: int | None  # a repurchase run's purchase horizon; None for an uplift run
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    as_of: date | None
    training_members: int | None
    served_model: str | None
    backtest: dict[str, Any] | None
    bgnbd: dict[str, float] | None
    error: str | None
    serving: bool


_COLUMNS = (
    "model_version, kind, status, horizon_days, requested_by, requested_at, started_at, finished_at, as_of, "
    "training_members, served_model, backtest, bgnbd, error, serving"
)


def _run(row: Any) -> ModelRun:
    return ModelRun(*row)


async def queue_run(
    session: AsyncSession, model_version: str, kind: str, horizon_days: int | None, by: str, now: datetime
) -> bool:
    """Queue a run; False when one of the kind is already queued or training."""
    inserted = await session.execute(
        text(
            "INSERT INTO model_run (model_version, kind, status, horizon_days, requested_by, requested_at) "
            "VALUES (:version, :kind, 'queued', :horizon, :by, :now) ON CONFLICT DO NOTHING RETURNING model_version"
        ),
        {"version": model_version, "kind": kind, "horizon": horizon_days, "by": by, "now": now},
    )
    return inserted.first() is not None


async def open_run(session: AsyncSession, kind: str) -> ModelRun | None:
    row = (
        await session.execute(
            text(f"SELECT {_COLUMNS} FROM model_run WHERE kind = :kind AND status IN ('queued', 'training')"),
            {"kind": kind},
        )
    ).first()
    return None if row is None else _run(row)


async def claim_run(session: AsyncSession, kind: str, now: datetime, stale_before: datetime) -> ModelRun | None:
    """Take the queued run of ``kind`` (or one whose trainer died: training since before ``stale_before``)."""
    row = (
        await session.execute(
            text(
                f"UPDATE model_run SET status = 'training', started_at = :now WHERE model_version = ("
                "SELECT model_version FROM model_run WHERE kind = :kind AND (status = 'queued' OR "
                "(status = 'training' AND started_at < :stale)) ORDER BY requested_at LIMIT 1 FOR UPDATE SKIP LOCKED"
                f") RETURNING {_COLUMNS}"
            ),
            {"kind": kind, "now": now, "stale": stale_before},
        )
    ).first()
    return None if row is None else _run(row)


async def get_run(session: AsyncSession, kind: str, model_version: str | None = None) -> ModelRun | None:
    """A run by version; without one, the serving run, else the latest."""
    if model_version is not None:
        query, params = f"SELECT {_COLUMNS} FROM model_run WHERE model_version = :v", {"v": model_version}
    else:
        query = f"SELECT {_COLUMNS} FROM model_run WHERE kind = :kind ORDER BY serving DESC, requested_at DESC LIMIT 1"
        params = {"kind": kind}
    row = (await session.execute(text(query), params)).first()
    return None if row is None else _run(row)


async def latest_run(session: AsyncSession, kind: str) -> ModelRun | None:
    row = (
        await session.execute(
            text(f"SELECT {_COLUMNS} FROM model_run WHERE kind = :kind ORDER BY requested_at DESC LIMIT 1"),
            {"kind": kind},
        )
    ).first()
    return None if row is None else _run(row)


async def serving_run(session: AsyncSession, kind: str) -> ModelRun | None:
    row = (
        await session.execute(text(f"SELECT {_COLUMNS} FROM model_run WHERE kind = :kind AND serving"), {"kind": kind})
    ).first()
    return None if row is None else _run(row)


async def purchase_rows(session: AsyncSession, as_of: datetime) -> tuple[list[str], list[int], list[int]]:
    """Every kept purchase up to ``as_of`` as (member id, day ordinal in China Standard Time, amount in fen)."""
    rows = await session.execute(
        text(
            f"SELECT member_id, (occurred_at AT TIME ZONE '{TIME_ZONE}')::date, net_fen - returned_fen FROM purchase "
            "WHERE occurred_at <= :as_of AND NOT (net_fen > 0 AND returned_fen >= net_fen)"
        ),
        {"as_of": as_of},
    )
    members, days, amounts = [], [], []
    for member_id, day, amount in rows:
        members.append(member_id)
        days.append(day.toordinal())
        amounts.append(max(int(amount), 0))
    return members, days, amounts


async def write_scores(
    session: AsyncSession,
    model_version: str,
    member_ids: tuple[str, ...],
    expected: npt.NDArray[np.float32],
    p_active: npt.NDArray[np.float32],
    now: datetime,
) -> None:
    """Every scored member's scores (in batches), and none left from an older run for the others."""
    await session.execute(
        text(
            "UPDATE member_score SET churn_risk = NULL, p_active = NULL, expected_purchases_90d = NULL, "
            "model_version = NULL WHERE model_version IS DISTINCT FROM :version"
        ),
        {"version": model_version},
    )
    batch = 50_000
    for start in range(0, len(member_ids), batch):
        await session.execute(
            text(
                "INSERT INTO member_score (member_id, churn_risk, p_active, expected_purchases_90d, model_version, "
                "scored_at) SELECT m, 1 - p, p, e, :version, :now FROM unnest(CAST(:members AS text[]), "
                "CAST(:p AS float8[]), CAST(:e AS float8[])) AS s(m, p, e) "
                "ON CONFLICT (member_id) DO UPDATE SET churn_risk = excluded.churn_risk, p_active = excluded.p_active, "
                "expected_purchases_90d = excluded.expected_purchases_90d, model_version = excluded.model_version, "
                "scored_at = excluded.scored_at"
            ),
            {
                "version": model_version,
                "now": now,
                "members": list(member_ids[start : start + batch]),
                "p": [float(v) for v in p_active[start : start + batch]],
                "e": [float(v) for v in expected[start : start + batch]],
            },
        )


async def finish_run(
    session: AsyncSession,
    model_version: str,
    *,
    now: datetime,
    succeeded: bool,
    as_of: date | None = None,
    training_members: int | None = None,
    served_model: str | None = None,
    backtest: dict[str, Any] | None = None,
    bgnbd: dict[str, float] | None = None,
    error: str | None = None,
) -> None:
    if succeeded:
        kind = (
            await session.execute(text("SELECT kind FROM model_run WHERE model_version = :v"), {"v": model_version})
        ).scalar_one()
        await session.execute(
            text("UPDATE model_run SET serving = false WHERE kind = :kind AND serving"), {"kind": kind}
        )
    await session.execute(
        text(
            "UPDATE model_run SET status = :status, finished_at = :now, as_of = :as_of, "
            "training_members = :members, served_model = :served, backtest = CAST(:backtest AS jsonb), "
            "bgnbd = CAST(:bgnbd AS jsonb), error = :error, serving = :serving WHERE model_version = :v"
        ),
        {
            "v": model_version,
            "status": "succeeded" if succeeded else "failed",
            "now": now,
            "as_of": as_of,
            "members": training_members,
            "served": served_model,
            "backtest": None if backtest is None else json.dumps(backtest),
            "bgnbd": None if bgnbd is None else json.dumps(bgnbd),
            "error": error,
            "serving": succeeded,
        },
    )


async def member_score(session: AsyncSession, member_id: str) -> tuple[float | None, float | None, str | None]:
    """(p_active, expected purchases in the trained horizon, model version) of a member, or Nones."""
    row = (
        await session.execute(
            text("SELECT p_active, expected_purchases_90d, model_version FROM member_score WHERE member_id = :id"),
            {"id": member_id},
        )
    ).first()
    return (None, None, None) if row is None else (row[0], row[1], row[2])


async def member_days(session: AsyncSession, member_id: str, as_of: datetime) -> list[date]:
    rows = await session.execute(
        text(
            f"SELECT DISTINCT (occurred_at AT TIME ZONE '{TIME_ZONE}')::date AS day FROM purchase "
            "WHERE member_id = :id AND occurred_at <= :as_of AND NOT (net_fen > 0 AND returned_fen >= net_fen) "
            "ORDER BY day"
        ),
        {"id": member_id, "as_of": as_of},
    )
    return [row[0] for row in rows]


async def member_known(session: AsyncSession, member_id: str) -> bool:
    row = await session.execute(
        text("SELECT 1 FROM member WHERE member_id = :id AND NOT erased AND merged_into IS NULL"), {"id": member_id}
    )
    return row.first() is not None


async def purchase_lines(
    session: AsyncSession, as_of: datetime, since_days: int = 365
) -> list[tuple[str, str, int, str]]:
    """Every kept purchase line of the last ``since_days``: (member id, SKU, day ordinal, store id)."""
    rows = await session.execute(
        text(
            f"SELECT p.member_id, l.sku, (p.occurred_at AT TIME ZONE '{TIME_ZONE}')::date, p.store_id "
            "FROM purchase p JOIN purchase_line l ON l.sale_id = p.sale_id "
            "WHERE p.occurred_at <= :as_of AND p.occurred_at > :as_of - make_interval(days => :days) "
            "AND NOT (p.net_fen > 0 AND p.returned_fen >= p.net_fen)"
        ),
        {"as_of": as_of, "days": since_days},
    )
    return [(row[0], row[1], row[2].toordinal(), row[3]) for row in rows]


async def home_stores(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(text("SELECT member_id, home_store_id FROM member WHERE home_store_id IS NOT NULL"))
    return {row[0]: row[1] for row in rows}


async def write_recommendations(
    session: AsyncSession, model_version: str, member_ids: list[str], skus: list[list[str]]
) -> None:
    """Every member's ranked items, replacing what an older run left."""
    await session.execute(text("DELETE FROM member_recommendation WHERE model_version <> :v"), {"v": model_version})
    batch = 20_000
    for start in range(0, len(member_ids), batch):
        members, ranks, items = [], [], []
        for member_id, ranked in zip(member_ids[start : start + batch], skus[start : start + batch], strict=True):
            for rank, sku in enumerate(ranked, start=1):
                members.append(member_id)
                ranks.append(rank)
                items.append(sku)
        await session.execute(
            text(
                "INSERT INTO member_recommendation (member_id, rank, sku, model_version) "
                "SELECT m, r, s, :v FROM unnest(CAST(:m AS text[]), CAST(:r AS smallint[]), CAST(:s AS text[])) "
                "AS x(m, r, s) ON CONFLICT (member_id, rank) DO UPDATE SET sku = excluded.sku, "
                "model_version = excluded.model_version"
            ),
            {"v": model_version, "m": members, "r": ranks, "s": items},
        )


async def set_recommendation_backtest(session: AsyncSession, model_version: str, backtest: dict[str, Any]) -> None:
    await session.execute(
        text("UPDATE model_run SET recommendations = CAST(:b AS jsonb) WHERE model_version = :v"),
        {"v": model_version, "b": json.dumps(backtest)},
    )


async def member_recommendations(session: AsyncSession, member_id: str, limit: int) -> tuple[list[str], str | None]:
    rows = (
        await session.execute(
            text(
                "SELECT sku, model_version FROM member_recommendation WHERE member_id = :id ORDER BY rank LIMIT :limit"
            ),
            {"id": member_id, "limit": limit},
        )
    ).all()
    return [row[0] for row in rows], (rows[0][1] if rows else None)
