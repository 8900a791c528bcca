"""Settlement's statements: a run drafts, for every contract, the statement of the period containing a day;
then each statement's life (issue, confirm, dispute, approve, pay) and its reads.

Drafting is set-based (see :mod:`~services.supply.adapters.statement_store`); issuing redrafts
and freezes a statement under its row lock, which a run also takes, so an accrual
(:mod:`~services.supply.service_layer.accruals`) can never slip into an issued statement.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument, NotFound, PermissionDenied
from servicekit.idempotency import ReplyCodec, RequestFingerprint, keep_reply, replay
from services.supply.adapters import accrual_store, settlement_reports, statement_store
from services.supply.adapters.settlement_events import statement_status_changed
from services.supply.adapters.settlement_reports import Problem, StoreSkuSales
from services.supply.adapters.statement_store import LineRow, PeriodBases, StatementRow
from services.supply.domain.scorecards import scorecard
from services.supply.domain.settlement import Accrual, AccrualKind
from services.supply.domain.statements import (
    SettlementTerms,
    StatementAction,
    StatementNotFound,
    StatementStatus,
    StatementWindow,
    check_disputes,
    check_payment_reference,
    next_status,
    period_adjustments,
    statement_id,
    statement_window,
)

log = logging.getLogger("supply.settlement")

MAX_PROBLEMS = 100


class UnknownSupplier(NotFound):
    reason = "supplier-not-found"


class StatementsAreHeadquarters(PermissionDenied):
    reason = "statement-headquarters-only"


class InvalidDisputeLine(InvalidArgument):
    reason = "dispute-line-not-on-statement"


@dataclass(frozen=True, slots=True)
class RunStatements:
    request: RequestFingerprint
    period_date: date
    supplier_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    statements: int
    lines: int
    total_fen: int


@dataclass(frozen=True, slots=True)
class MoveStatement:
    request: RequestFingerprint
    statement_id: str
    action: StatementAction
    actor_id: str
    supplier_scope: str | None = None  # a supplier's user: its own statements only
    disputes: tuple[tuple[str, str], ...] = ()  # DISPUTE: (source_id, comment) per line
    payment_reference: str = ""  # PAY


@dataclass(frozen=True, slots=True)
class StatementPage:
    statement: StatementRow
    lines: list[LineRow]
    next_after: tuple[date, str] | None


@dataclass(frozen=True, slots=True)
class SettlementCheck:
    accruals: int
    statements: int
    open_accruals: int
    problems: list[Problem]

    @property
    def consistent(self) -> bool:
        return not self.problems


def _run_json(result: RunResult) -> bytes:
    return json.dumps([result.statements, result.lines, result.total_fen]).encode()


def _run_from_json(data: bytes) -> RunResult:
    statements, lines, total = json.loads(data)
    return RunResult(statements, lines, total)


def _statement_json(row: StatementRow) -> bytes:
    return json.dumps(
        {
            "statement_id": row.statement_id,
            "supplier_id": row.supplier_id,
            "contract_id": row.contract_id,
            "mode": row.mode.value,
            "period_start": row.period_start.isoformat(),
            "period_end": row.period_end.isoformat(),
            "status": row.status.value,
            "total_fen": row.total_fen,
            "line_count": row.line_count,
            "late_line_count": row.late_line_count,
            "issued_at": row.issued_at.isoformat() if row.issued_at else None,
            "payment_reference": row.payment_reference,
            "version": row.version,
        }
    ).encode()


def _statement_from_json(data: bytes) -> StatementRow:
    from services.supply.domain.contracts import SettlementMode

    f = json.loads(data)
    return StatementRow(
        f["statement_id"],
        f["supplier_id"],
        f["contract_id"],
        SettlementMode(f["mode"]),
        date.fromisoformat(f["period_start"]),
        date.fromisoformat(f["period_end"]),
        StatementStatus(f["status"]),
        f["total_fen"],
        f["line_count"],
        f["late_line_count"],
        datetime.fromisoformat(f["issued_at"]) if f["issued_at"] else None,
        f["payment_reference"],
        f["version"],
    )


RUN_JSON: ReplyCodec[RunResult] = ReplyCodec(_run_json, _run_from_json)
STATEMENT_JSON: ReplyCodec[StatementRow] = ReplyCodec(_statement_json, _statement_from_json)


class Statements:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        run_codec: ReplyCodec[RunResult] | None = None,
        statement_codec: ReplyCodec[StatementRow] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._run_codec = run_codec or RUN_JSON
        self._statement_codec = statement_codec or STATEMENT_JSON
        self._clock = clock

    async def run(self, command: RunStatements) -> RunResult:
        """Draft (or redraft) every contract's statement for the period containing ``period_date``."""
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, self._run_codec)) is not None:
                return first
            ids = await self._draft(uow, command.period_date, supplier_id=command.supplier_id)
            lines, total = await statement_store.run_summary(uow.session, ids)
            result = RunResult(len(ids), lines, total)
            await keep_reply(uow.session, command.request, self._run_codec, result)
            await uow.commit()
        log.info("statement run", extra={"period_date": command.period_date.isoformat(), "statements": len(ids)})
        return result

    async def _draft(
        self,
        uow: UnitOfWork,
        period_date: date,
        *,
        supplier_id: str | None = None,
        contract_id: str | None = None,
        freeze: bool = False,
    ) -> list[str]:
        """The drafting itself, in the caller's transaction; the ids of the statements (re)drafted.

        A draft is not written onto its accruals (it shows the open ones in its window, read live), so a
        month-end run aggregates the month's lines once instead of updating each; ``freeze`` (issuing)
        puts the window's open accruals on the statement for good before its period lines are computed."""
        session = uow.session
        now = self._clock()
        candidates = await statement_store.run_candidates(session, supplier_id, contract_id)
        contract_ids = [terms.contract_id for terms, _, _ in candidates]
        issued = await statement_store.issued_periods(session, contract_ids)
        with_open = await statement_store.contracts_with_open_accruals(session, contract_ids)
        planned: list[tuple[str, SettlementTerms, StatementWindow]] = []
        for terms, valid_from, valid_until in candidates:
            window = statement_window(
                terms.cycle,
                period_date,
                lambda start, c=terms.contract_id: (c, start) in issued,  # type: ignore[misc]
            )
            if window is None:
                continue
            in_force = valid_from < window.end and (valid_until is None or valid_until > window.start)
            if in_force or terms.contract_id in with_open or contract_id is not None:
                planned.append((statement_id(terms.contract_id, window.start), terms, window))
        drafts = {row.statement_id: row for row in await statement_store.ensure_drafts(session, planned, now)}
        planned = [plan for plan in planned if plan[0] in drafts]
        if not planned:
            return []
        ids = [sid for sid, _, _ in planned]
        await statement_store.set_windows(session, [(sid, window) for sid, _, window in planned])
        if freeze:
            await statement_store.freeze_lines(session, ids)
        bases = await statement_store.period_bases(session, ids, live=not freeze)
        bases = {sid: bases.get(sid, PeriodBases()) for sid in ids}
        adjustments: list[Accrual] = []
        scores: dict[tuple[str, date], Decimal | None] = {}
        for sid, terms, window in planned:
            purchases, payable = bases[sid].purchases_fen, bases[sid].payable_fen
            score = None
            if terms.quality_bands:
                key = (terms.supplier_id, window.start)
                if key not in scores:
                    due = await statement_store.due_lines(session, terms.supplier_id, window.start, window.end)
                    scores[key] = scorecard(due).quality_score
                score = scores[key]
            last_day = window.end - timedelta(days=1)
            adjustments += [
                Accrual(
                    source_id=line.source_id,
                    supplier_id=terms.supplier_id,
                    contract_id=terms.contract_id,
                    kind=line.kind,
                    occurred_on=last_day,
                    amount_fen=line.amount_fen,
                    base_fen=purchases if line.kind is AccrualKind.REBATE else payable,
                )
                for line in period_adjustments(
                    terms, window.start, purchases_fen=purchases, payable_fen=payable, quality_score=score
                )
            ]
        by_contract = {terms.contract_id: sid for sid, terms, _ in planned}
        on_statement = [by_contract[accrual.contract_id] for accrual in adjustments]
        # The totals: the lines' (one pass above) and the period lines added now.
        totals = dict(bases)
        for sid, accrual in zip(on_statement, adjustments, strict=True):
            had = totals[sid]
            totals[sid] = replace(had, total_fen=had.total_fen + accrual.amount_fen, lines=had.lines + 1)
        if adjustments:
            await accrual_store.insert_accruals(session, adjustments, now, statement_ids=on_statement)
        await statement_store.write_totals(session, list(totals.items()), now)
        return ids

    async def move(self, command: MoveStatement) -> StatementRow:
        """Issue, confirm, dispute, approve or pay a statement (each a request-once command)."""
        now = self._clock()
        disputes = check_disputes(command.disputes) if command.action is StatementAction.DISPUTE else {}
        reference = check_payment_reference(command.payment_reference) if command.action is StatementAction.PAY else ""
        async with self._unit_of_work() as uow:
            session = uow.session
            if (first := await replay(session, command.request, self._statement_codec)) is not None:
                return first
            current = await statement_store.statement(session, command.statement_id, lock=True)
            if current is None or (
                command.supplier_scope is not None and current.supplier_id != command.supplier_scope
            ):
                raise StatementNotFound("no such statement", details={"statement_id": command.statement_id})
            if command.supplier_scope is not None and command.action not in (
                StatementAction.CONFIRM,
                StatementAction.DISPUTE,
            ):
                raise StatementsAreHeadquarters(f"only headquarters may {command.action.value} a statement")
            to = next_status(current.status, command.action)
            if command.action is StatementAction.ISSUE:
                # The last drafting, under the row lock every run takes too: nothing slips in after it.
                await self._draft(uow, current.period_start, contract_id=current.contract_id, freeze=True)
            if disputes:
                found = await statement_store.line_sources(session, current.statement_id, list(disputes))
                missing = sorted(set(disputes) - found)
                if missing:
                    raise InvalidDisputeLine(
                        f"line {missing[0]} is not on the statement", details={"source_id": missing[0]}
                    )
                await statement_store.comment_lines(session, current.statement_id, disputes)
            after = await statement_store.move_statement(
                session, current.statement_id, to, now, actor_id=command.actor_id, payment_reference=reference
            )
            if command.action is StatementAction.ISSUE:
                # Its total from the lines now on it for good (not what arrived since the drafting began).
                await statement_store.refresh_totals(session, [current.statement_id], now)
                after = await statement_store.statement(session, current.statement_id) or after
            uow.publish(statement_status_changed(current.status, after, command.actor_id, now))
            await keep_reply(session, command.request, self._statement_codec, after)
            await uow.commit()
        return after

    async def get(
        self,
        statement_id_: str,
        *,
        supplier_scope: str | None,
        after: tuple[date, str] | None = None,
        limit: int | None = None,
    ) -> StatementPage:
        async with self._unit_of_work() as uow:
            found = await statement_store.statement(uow.session, statement_id_)
            if found is None or (supplier_scope is not None and found.supplier_id != supplier_scope):
                raise StatementNotFound("no such statement", details={"statement_id": statement_id_})
            lines = await statement_store.statement_lines(
                uow.session, statement_id_, after=after, limit=None if limit is None else limit + 1
            )
            if found.status is StatementStatus.DRAFT:
                # A draft shows its lines as they stand: its total is theirs now, not as last drafted.
                total, count, late = await statement_store.live_totals(uow.session, statement_id_)
                found = replace(found, total_fen=total, line_count=count, late_line_count=late)
        more = limit is not None and len(lines) > limit
        lines = lines[:limit] if limit is not None else lines
        last = lines[-1].accrual if more and lines else None
        return StatementPage(found, lines, (last.occurred_on, last.source_id) if last else None)

    async def list_statements(
        self,
        *,
        supplier_id: str | None,
        statuses: Sequence[StatementStatus],
        after: tuple[date, str] | None,
        limit: int,
    ) -> tuple[list[StatementRow], tuple[date, str] | None]:
        async with self._unit_of_work() as uow:
            rows = await statement_store.list_statements(
                uow.session, supplier_id=supplier_id, statuses=statuses, after=after, limit=limit + 1
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].period_start, rows[-1].statement_id) if more and rows else None

    async def check(self, supplier_id: str | None) -> SettlementCheck:
        """The reconciliation check (see :func:`~services.supply.adapters.settlement_reports.check`)."""
        async with self._unit_of_work() as uow:
            accruals, statements, open_accruals, problems = await settlement_reports.check(
                uow.session, supplier_id, MAX_PROBLEMS
            )
        return SettlementCheck(accruals, statements, open_accruals, problems)

    async def supplier_sales(
        self, supplier_id: str, first: date, last: date, store_id: str | None, *, supplier_scope: str | None
    ) -> list[StoreSkuSales]:
        if last < first:
            raise InvalidArgument("from_date is on or before to_date", details={"field": "from_date"})
        if (last - first).days > 366:
            raise InvalidArgument("a sales window is at most 367 days", details={"field": "from_date"})
        async with self._unit_of_work() as uow:
            if (
                supplier_scope is not None and supplier_id != supplier_scope
            ) or not await settlement_reports.supplier_exists(uow.session, supplier_id):
                raise UnknownSupplier("no such supplier", details={"supplier_id": supplier_id})
            return await settlement_reports.supplier_sales(uow.session, supplier_id, first, last, store_id)
