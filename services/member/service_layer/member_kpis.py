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


class MemberKpiReports:
    """Computes member KPIs from the kept sale facts."""

    def __init__(
        self, unit_of_work: Callable[[], UnitOfWork], *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._uow = unit_of_work
        self._clock = clock

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
