"""A supplier's delivery scorecard over a period, from its orders, receipts and invoices
(:func:`services.supply.domain.scorecards.scorecard`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from services.supply.adapters import receipt_store, supplier_store
from services.supply.domain.scorecards import DueLine, Scorecard, scorecard
from services.supply.domain.suppliers import Actor, UnknownSupplier
from services.supply.service_layer.purchase_orders import BUSINESS_TIME, business_day

DEFAULT_DAYS = 90
MAX_DAYS = 731


@dataclass(frozen=True, slots=True)
class SupplierScorecard:
    supplier_id: str
    first: date
    last: date
    scorecard: Scorecard


def _day(at: datetime | None) -> date | None:
    return None if at is None else business_day(at)


class Scorecards:
    def __init__(self, unit_of_work: Callable[[], UnitOfWork], *, clock: Clock = utc_now) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def of(self, actor: Actor, supplier_id: str, first: date | None, last: date | None) -> SupplierScorecard:
        if not actor.sees(supplier_id):
            raise UnknownSupplier("no such supplier", details={"supplier_id": supplier_id})
        last = last or business_day(self._clock())
        first = first or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last or (last - first).days >= MAX_DAYS:
            raise InvalidArgument(f"a period is 1 to {MAX_DAYS} days, first to last", details={"field": "from_date"})
        async with self._unit_of_work() as uow:
            if await supplier_store.get_supplier(uow.session, supplier_id) is None:
                raise UnknownSupplier("no such supplier", details={"supplier_id": supplier_id})
            card = await supplier_scorecard(uow.session, supplier_id, first, last)
        return SupplierScorecard(supplier_id, first, last, card)


async def supplier_scorecard(session: AsyncSession, supplier_id: str, first: date, last: date) -> Scorecard:
    """The scorecard of ``supplier_id`` over the business days [first, last], in the caller's session
    (settlement reads the quality score of a statement's period with it)."""
    rows = await receipt_store.lines_due(session, supplier_id, first, last)
    since = datetime.combine(first, time(0), tzinfo=BUSINESS_TIME)
    until = datetime.combine(last + timedelta(days=1), time(0), tzinfo=BUSINESS_TIME)
    invoice_lines, matched = await receipt_store.invoice_lines_between(session, supplier_id, since, until)
    due = [
        DueLine(
            ordered=row.ordered,
            accepted=row.accepted,
            rejected=row.rejected,
            confirmed_on=_day(row.confirmed_at),
            promised_on=row.promised_date,
            last_arrival_on=_day(row.last_arrival_at),
            fully_delivered_on=_day(row.fully_delivered_at),
        )
        for row in rows
    ]
    return scorecard(due, invoice_lines=invoice_lines, invoice_lines_matched=matched)
