"""Member KPIs of a store or the chain over a period of local days (活跃会员, 复购率, 客单价, member share)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from services.member.adapters import loyalty_store
from services.member.domain.kpis import MemberKpis, member_kpis
from services.member.domain.lifecycle import (
    DEFAULT_LIFECYCLE_POLICY,
    ChurnRisk,
    LifecyclePolicy,
    LifecycleStage,
    churn_risk_bounds,
)
from services.member.service_layer.loyalty import CHINA_STANDARD_TIME

MAX_KPI_DAYS = 366
# Four whole weeks: every weekday counts equally, so periods compare without a weekend bias.
DEFAULT_KPI_DAYS = 28


@dataclass(frozen=True)
class KpiReport:
    store_id: str
    from_date: date
    to_date: date
    kpis: MemberKpis
    new_members: int


@dataclass(frozen=True)
class MemberMix:
    """How many active members of a home store (or the chain) are in each lifecycle stage, tier and churn risk.

    Counts only: no member is named. Every stage and risk is present (zero included); tiers
    are the ones members hold.
    """

    store_id: str
    members: int
    lifecycle: dict[LifecycleStage, int]
    tiers: dict[str, int]
    churn_risk: dict[ChurnRisk, int]
    as_of: datetime


class MemberKpiReports:
    """Computes member KPIs from the kept sale facts, and the member mix from the members' rows."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        lifecycle: LifecyclePolicy = DEFAULT_LIFECYCLE_POLICY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = unit_of_work
        self._lifecycle = lifecycle
        self._clock = clock

    async def mix(self, store_id: str) -> MemberMix:
        """Active members of ``store_id`` (their home store; the chain when empty) by stage, tier and churn risk.

        The stage is the one the lifecycle review last set; the churn risk is the idle time now
        (since the last sale, or since registration when there is none) against
        :func:`churn_risk_bounds`.
        """
        now = self._clock()
        low, medium, high = churn_risk_bounds(self._lifecycle)
        async with self._uow() as uow:
            rows = (
                await uow.session.execute(
                    text(
                        "SELECT m.lifecycle_stage, m.tier, CASE "
                        "WHEN idle <= make_interval(days => :low) THEN 'low' "
                        "WHEN idle <= make_interval(days => :medium) THEN 'medium' "
                        "WHEN idle <= make_interval(days => :high) THEN 'high' ELSE 'lost' END AS risk, "
                        "count(*) AS members FROM (SELECT m.lifecycle_stage, m.tier, CAST(:now AS timestamptz) - "
                        "coalesce((SELECT max(f.occurred_at) FROM sale_fact f WHERE f.member_id = m.member_id "
                        "AND f.kind = 'sale' AND f.occurred_at <= :now), m.registered_at) AS idle FROM member m "
                        "WHERE m.status = 'active' AND (CAST(:store AS text) IS NULL OR m.home_store_id = :store)) "
                        "AS m GROUP BY 1, 2, 3"
                    ),
                    {"now": now, "low": low, "medium": medium, "high": high, "store": store_id or None},
                )
            ).all()
        lifecycle = dict.fromkeys(LifecycleStage, 0)
        risks = dict.fromkeys(ChurnRisk, 0)
        tiers: dict[str, int] = {}
        for row in rows:
            lifecycle[LifecycleStage(row.lifecycle_stage)] += row.members
            risks[ChurnRisk(row.risk)] += row.members
            tiers[row.tier] = tiers.get(row.tier, 0) + row.members
        return MemberMix(store_id, sum(lifecycle.values()), lifecycle, tiers, risks, now)

    async def kpis(self, store_id: str, from_date: date | None, to_date: date | None) -> KpiReport:
        """Member KPIs of ``[from_date, to_date]`` (local days) at one store or the chain; by default
        the :data:`DEFAULT_KPI_DAYS` days ending today."""
        today = self._clock().astimezone(CHINA_STANDARD_TIME).date()
        end_day = to_date or today
        start_day = from_date or end_day - timedelta(days=DEFAULT_KPI_DAYS - 1)
        if start_day > end_day:
            raise InvalidArgument("from_date must not be after to_date", reason="invalid-period")
        if (end_day - start_day).days >= MAX_KPI_DAYS:
            raise InvalidArgument(f"a period has at most {MAX_KPI_DAYS} days", reason="invalid-period")
        start = datetime.combine(start_day, datetime.min.time(), CHINA_STANDARD_TIME)
        end = datetime.combine(end_day + timedelta(days=1), datetime.min.time(), CHINA_STANDARD_TIME)
        async with self._uow() as uow:
            facts = await loyalty_store.sale_facts(uow.session, start, end, store_id or None)
            new_members = (
                await uow.session.execute(
                    text(
                        "SELECT count(*) FROM member WHERE registered_at >= :start AND registered_at < :end "
                        "AND (CAST(:store AS text) IS NULL OR home_store_id = :store)"
                    ),
                    {"start": start, "end": end, "store": store_id or None},
                )
            ).scalar_one()
        return KpiReport(
            store_id, start_day, end_day, member_kpis(facts, start, end, store_id or None), int(new_members)
        )
