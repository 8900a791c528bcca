"""Settlement: accruals written as facts arrive, statements drafted per contract and period, and their life.

Accruals (each exactly once: the consumer's inbox, and ``source_id`` unique):

* :meth:`Accruals.apply_journal_entry` — a SALES journal entry. A sale line of a SKU that a
  consignment or concession contract covers on the sale's business day accrues on that
  contract's terms; a return reverses the matching line of its original sale, cumulatively,
  on the original's terms (a line returned in parts reverses exactly what it accrued). A
  return whose original sale has not arrived waits (kept, reported by the check) and is
  applied when it does; what cannot accrue is kept too, never raised. Every line also adds
  to the store × SKU × day totals the supplier portal reads.
* :meth:`Accruals.apply_goods_received` / :meth:`Accruals.apply_vendor_return` — supply's own
  receipts and returns to vendor under purchase contracts, from the SUPPLY stream, so
  accruing is independent from (and never slows) purchasing's transaction.
* :meth:`Accruals.record_fee` — a promotion or slotting fee, a deduction.

Statements (:class:`Statements`): a run drafts, for every contract, the statement of the period
containing a day, set-based (see :mod:`~services.supply.adapters.statement_store`); issuing
redrafts and freezes it under the statement's row lock, which a run also takes, so an
accrual can never slip into an issued statement.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument, NotFound, PermissionDenied
from servicekit.idempotency import ReplyCodec, RequestFingerprint, keep_reply, replay
from services.supply.adapters import accrual_store, settlement_reports, statement_store
from services.supply.adapters.accrual_store import DaySales, UnmatchedLine
from services.supply.adapters.settlement_events import statement_status_changed
from services.supply.adapters.settlement_reports import Problem, StoreSkuSales
from services.supply.adapters.statement_store import LineRow, PeriodBases, StatementRow
from services.supply.domain.contracts import Contract
from services.supply.domain.scorecards import scorecard
from services.supply.domain.settlement import (
    Accrual,
    AccrualKind,
    accrue_customer_return,
    accrue_receipt,
    accrue_sale,
    check_amount,
)
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

BUSINESS_TIME_ZONE = ZoneInfo("Asia/Shanghai")
MAX_PROBLEMS = 100
FEE_KINDS = ("promotion", "slotting")
MAX_DESCRIPTION = 200


class UnknownContract(NotFound):
    reason = "contract-not-found"


class UnknownSupplier(NotFound):
    reason = "supplier-not-found"


class InvalidFee(InvalidArgument):
    reason = "invalid-fee"


class StatementsAreHeadquarters(PermissionDenied):
    reason = "statement-headquarters-only"


class InvalidDisputeLine(InvalidArgument):
    reason = "dispute-line-not-on-statement"


def business_day(at: datetime) -> date:
    """The chain's business day of a moment (China Standard Time)."""
    return at.astimezone(BUSINESS_TIME_ZONE).date()


# ---- accruals ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalLine:
    line_number: int
    sku: str
    quantity: Decimal  # positive; a return says so by the entry's kind
    revenue_fen: int  # what the customer paid for it (line total)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    sale_id: str
    is_return: bool
    store_id: str
    occurred_at: datetime
    lines: tuple[JournalLine, ...]
    original_sale_id: str = ""


@dataclass(frozen=True, slots=True)
class RecordFee:
    request: RequestFingerprint
    contract_id: str
    fee_kind: str
    amount_fen: int
    occurred_on: date
    description: str
    supplier_scope: str | None = None  # a supplier's user: its own contracts only


def _usable(line: JournalLine) -> bool:
    exponent = line.quantity.as_tuple().exponent
    return (
        line.quantity.is_finite()
        and line.quantity > 0
        and isinstance(exponent, int)
        and exponent >= -3
        and line.quantity < Decimal(10) ** 11
        and 0 <= line.revenue_fen <= 10**12
    )


def _accrual_json(accrual: Accrual) -> bytes:
    return json.dumps(
        {
            "source_id": accrual.source_id,
            "supplier_id": accrual.supplier_id,
            "contract_id": accrual.contract_id,
            "kind": accrual.kind.value,
            "occurred_on": accrual.occurred_on.isoformat(),
            "amount_fen": accrual.amount_fen,
        }
    ).encode()


def _accrual_from_json(data: bytes) -> Accrual:
    fields = json.loads(data)
    return Accrual(
        fields["source_id"],
        fields["supplier_id"],
        fields["contract_id"],
        AccrualKind(fields["kind"]),
        date.fromisoformat(fields["occurred_on"]),
        fields["amount_fen"],
    )


ACCRUAL_JSON: ReplyCodec[Accrual] = ReplyCodec(_accrual_json, _accrual_from_json)


class Accruals:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        fee_codec: ReplyCodec[Accrual] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._fee_codec = fee_codec or ACCRUAL_JSON
        self._clock = clock

    async def apply_journal_entry(self, uow: UnitOfWork, entry: JournalEntry) -> None:
        """One SALES journal entry, in the consumer's unit of work (its inbox row commits with it)."""
        session = uow.session
        now = self._clock()
        day = business_day(entry.occurred_at)
        usable = [line for line in entry.lines if _usable(line)]
        days = [
            DaySales(entry.store_id, line.sku, day, returned=line.quantity, returned_fen=line.revenue_fen)
            if entry.is_return
            else DaySales(entry.store_id, line.sku, day, sold=line.quantity, sold_fen=line.revenue_fen)
            for line in usable
        ]
        # Noted by id first: an entry delivered again (past the inbox, under another event id) changes nothing.
        contracts: dict[str, Contract] = {}
        if entry.is_return:
            if not await accrual_store.record_journal_entry(session, entry.sale_id, entry.store_id, day, True):
                return
            await accrual_store.add_sales_days(session, days)
        else:
            skus = [line.sku for line in usable]
            noted, contracts = await accrual_store.note_sale(session, entry.sale_id, entry.store_id, day, days, skus)
            if not noted:
                return
        unusable = [line for line in entry.lines if not _usable(line)]
        if unusable:
            settled = await accrual_store.settled_by_sales(session, [line.sku for line in unusable])
            await accrual_store.keep_unmatched(
                session,
                [
                    UnmatchedLine(
                        f"{'return' if entry.is_return else 'sale'}:{entry.sale_id}:{line.line_number}",
                        entry.sale_id,
                        line.line_number,
                        entry.original_sale_id,
                        "invalid",
                        line.sku,
                        entry.store_id,
                        Decimal(0),
                        0,
                        day,
                        f"quantity {line.quantity} or amount {line.revenue_fen} fen cannot be settled",
                    )
                    for line in unusable
                    if line.sku in settled
                ],
                now,
            )
        if entry.is_return:
            await self._apply_return(uow, entry.sale_id, entry.original_sale_id, entry.store_id, day, usable, now)
            return
        accruals = [
            accrue_sale(
                contracts[line.sku],
                source_id=f"sale:{entry.sale_id}:{line.line_number}",
                sku=line.sku,
                store_id=entry.store_id,
                quantity=line.quantity,
                revenue_fen=line.revenue_fen,
                occurred_on=day,
            )
            for line in usable
            if line.sku in contracts
        ]
        # The accruals written, and the returns that arrived before this sale (an offline till replaying late)
        # taken off the waiting list, in one round trip; those returns apply now, in their order.
        waiting = await accrual_store.take_waiting_returns(session, entry.sale_id, accruals, now)
        for return_sale_id in dict.fromkeys(line.sale_id for line in waiting):
            lines = [line for line in waiting if line.sale_id == return_sale_id]
            await self._apply_return(
                uow,
                return_sale_id,
                entry.sale_id,
                lines[0].store_id,
                lines[0].occurred_on,
                [JournalLine(line.line_number, line.sku, line.quantity, line.revenue_fen) for line in lines],
                now,
            )

    async def _apply_return(
        self,
        uow: UnitOfWork,
        sale_id: str,
        original_sale_id: str,
        store_id: str,
        day: date,
        lines: Sequence[JournalLine],
        now: datetime,
    ) -> None:
        session = uow.session
        if not lines:
            return
        if not original_sale_id or not await accrual_store.journal_sale_known(session, original_sale_id):
            # The original has not arrived (or was never named): the lines of SKUs settled from sales wait for it.
            settled = await accrual_store.settled_by_sales(session, [line.sku for line in lines])
            await accrual_store.keep_unmatched(
                session,
                [
                    UnmatchedLine(
                        f"return:{sale_id}:{line.line_number}",
                        sale_id,
                        line.line_number,
                        original_sale_id,
                        "waiting",
                        line.sku,
                        store_id,
                        line.quantity,
                        line.revenue_fen,
                        day,
                        "" if original_sale_id else "the return names no original sale",
                    )
                    for line in lines
                    if line.sku in settled
                ],
                now,
            )
            return
        sold = await accrual_store.sold_lines(session, original_sale_id)
        taken: dict[str, tuple[Decimal, int]] = {}  # what this entry already took back per original line
        accruals: list[Accrual] = []
        excess: list[UnmatchedLine] = []
        for line in lines:
            left = line.quantity
            pieces = 0
            for original in sold:
                if original.accrual.sku != line.sku or left <= 0:
                    continue
                earlier_quantity, earlier_fen = taken.get(original.accrual.source_id, (Decimal(0), 0))
                returned_before = original.returned + earlier_quantity
                remaining = original.accrual.quantity - returned_before
                if remaining <= 0:
                    continue
                quantity = min(left, remaining)
                revenue = (
                    line.revenue_fen if quantity == line.quantity else int(line.revenue_fen * quantity / line.quantity)
                )
                pieces += 1
                source = f"return:{sale_id}:{line.line_number}" + ("" if pieces == 1 else f".{pieces}")
                accrual = accrue_customer_return(
                    original.accrual,
                    source_id=source,
                    quantity=quantity,
                    revenue_fen=revenue,
                    returned_before=returned_before,
                    reversed_before_fen=original.reversed_fen + earlier_fen,
                    occurred_on=day,
                )
                accruals.append(accrual)
                taken[original.accrual.source_id] = (earlier_quantity + quantity, earlier_fen - accrual.amount_fen)
                left -= quantity
            if left > 0 and (pieces or any(original.accrual.sku == line.sku for original in sold)):
                excess.append(
                    UnmatchedLine(
                        f"return:{sale_id}:{line.line_number}" + (f".{pieces + 1}" if pieces else ""),
                        sale_id,
                        line.line_number,
                        original_sale_id,
                        "excess",
                        line.sku,
                        store_id,
                        left,
                        0,
                        day,
                        f"{left} more returned than sale {original_sale_id} sold",
                    )
                )
        await accrual_store.insert_accruals(session, accruals, now, sale_id=sale_id)
        await accrual_store.keep_unmatched(session, excess, now)

    async def apply_goods_received(self, uow: UnitOfWork, receipt_id: str, received_at: datetime) -> int:
        """A receipt's lines under purchase contracts, as accruals (in the consumer's unit of work)."""
        location, lines = await accrual_store.receipt_lines(uow.session, receipt_id)
        day = business_day(received_at)
        accruals = [
            accrue_receipt(
                line.contract,
                source_id=f"receipt:{receipt_id}:{line.line_number}",
                sku=line.sku,
                store_id=location,
                accepted=line.accepted,
                rejected=line.rejected,
                occurred_on=day,
            )
            for line in lines
            if line.accepted > 0 or (line.contract.rejects_billed and line.rejected > 0)
        ]
        await accrual_store.insert_accruals(uow.session, accruals, self._clock())
        return len(accruals)

    async def apply_vendor_return(self, uow: UnitOfWork, return_id: str, returned_at: datetime) -> int:
        """A return to vendor's lines under purchase contracts, as credits."""
        location, lines = await accrual_store.vendor_return_lines(uow.session, return_id)
        day = business_day(returned_at)
        accruals = [
            accrue_receipt(
                line.contract,
                source_id=f"return_to_vendor:{return_id}:{line.line_number}",
                sku=line.sku,
                store_id=location,
                accepted=line.accepted,
                rejected=Decimal(0),
                occurred_on=day,
                to_vendor=True,
            )
            for line in lines
            if line.accepted > 0
        ]
        await accrual_store.insert_accruals(uow.session, accruals, self._clock())
        return len(accruals)

    async def record_fee(self, command: RecordFee) -> Accrual:
        """Book a promotion or slotting fee against a contract, as a negative FEE accrual."""
        if command.fee_kind not in FEE_KINDS:
            raise InvalidFee(f"fee_kind is one of {', '.join(FEE_KINDS)}", details={"field": "fee_kind"})
        if check_amount(command.amount_fen, field_name="amount") == 0:
            raise InvalidFee("a fee is more than 0 fen", details={"field": "amount"})
        description = command.description.strip()
        if len(description) > MAX_DESCRIPTION:
            raise InvalidFee(f"a description is at most {MAX_DESCRIPTION} characters", details={"field": "description"})
        async with self._unit_of_work() as uow:
            session = uow.session
            if (first := await replay(session, command.request, self._fee_codec)) is not None:
                return first
            supplier_id = await accrual_store.contract_supplier(session, command.contract_id)
            if supplier_id is None or (command.supplier_scope is not None and supplier_id != command.supplier_scope):
                raise UnknownContract("no such contract", details={"contract_id": command.contract_id})
            if command.supplier_scope is not None:
                raise StatementsAreHeadquarters("fees are booked by headquarters")
            accrual = Accrual(
                source_id=f"fee:{uuid.uuid4().hex}",
                supplier_id=supplier_id,
                contract_id=command.contract_id,
                kind=AccrualKind.FEE,
                occurred_on=command.occurred_on,
                amount_fen=-command.amount_fen,
            )
            await accrual_store.insert_accruals(
                session, [accrual], self._clock(), description=f"{command.fee_kind}: {description}".rstrip(": ")
            )
            await keep_reply(session, command.request, self._fee_codec, accrual)
            await uow.commit()
        return accrual


# ---- statements --------------------------------------------------------------------------------------------------


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
