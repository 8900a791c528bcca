"""Read models of points and tiers: the ledger page with what expires when, the ledger check,
and the tier history. Reads of a merged member answer with its survivor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from services.member.adapters import loyalty_store
from services.member.domain.model import MemberNotFound, check_member_id
from services.member.domain.points import points_balance_problems
from services.member.service_layer.loyalty import readable


@dataclass(frozen=True)
class PointsOverview:
    member_id: str
    balance: int
    expiring: list[tuple[datetime, int]]
    entries: list[loyalty_store.LedgerEntry]
    next_page_token: str


@dataclass(frozen=True)
class LedgerCheckOutcome:
    balance: int
    ledger_total: int
    lots_remaining: int
    debt: int
    problems: list[str]


class LoyaltyQueries:
    """Answers questions about members' points and tiers, each in a transaction of its own."""

    def __init__(self, unit_of_work: Callable[[], UnitOfWork]) -> None:
        self._uow = unit_of_work

    async def points(self, member_id: str, *, page_token: str, page_size: int) -> PointsOverview:
        check_member_id(member_id)
        before = None
        if page_token:
            if not page_token.isdigit():
                raise InvalidArgument("page_token is not one this service issued", reason="invalid-page-token")
            before = int(page_token)
        async with self._uow() as uow:
            member = await readable(uow, member_id)
            entries = await loyalty_store.ledger_page(
                uow.session, member.member_id, before_entry_id=before, limit=page_size + 1
            )
            soon = await loyalty_store.expiring(uow.session, member.member_id)
        page, more = entries[:page_size], len(entries) > page_size
        return PointsOverview(
            member.member_id, member.points_balance, soon, page, str(page[-1].entry_id) if more else ""
        )

    async def check_ledger(self, member_id: str) -> LedgerCheckOutcome:
        check_member_id(member_id)
        async with self._uow() as uow:
            check = await loyalty_store.check_ledger(uow.session, member_id)
        if check is None:
            raise MemberNotFound(f"member {member_id} does not exist")
        problems = points_balance_problems(check.balance, check.ledger_total, check.lots_remaining, check.debt)
        if check.lots_drawn_mismatch:
            problems.append(f"{check.lots_drawn_mismatch} lots differ from their points minus their draws")
        return LedgerCheckOutcome(check.balance, check.ledger_total, check.lots_remaining, check.debt, problems)

    async def tier_changes(self, member_id: str, *, page_token: str, page_size: int) -> tuple[list[Any], str]:
        check_member_id(member_id)
        if page_token and not page_token.isdigit():
            raise InvalidArgument("page_token is not one this service issued", reason="invalid-page-token")
        async with self._uow() as uow:
            member = await readable(uow, member_id)
            rows = await loyalty_store.tier_changes(
                uow.session, member.member_id, before_id=int(page_token) if page_token else None, limit=page_size + 1
            )
        page, more = rows[:page_size], len(rows) > page_size
        return list(page), str(page[-1].id) if more else ""
