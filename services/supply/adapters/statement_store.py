"""Settlement's statements: drafted per contract and period, issued, moved through their life, and read.

Statement runs are set-based: one statement per query for all the contracts of a run (arrays
unnested), never a query per accrual, so a month-end of millions of lines is a handful of
``UPDATE … FROM`` and ``GROUP BY`` statements in one transaction. A draft is not written onto
its accruals (:mod:`~services.supply.adapters.accrual_store`): it shows the open ones of its
window, read live; issuing freezes them on it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.supply.adapters.accrual_store import accrual_from_row
from services.supply.domain.contracts import SettlementMode
from services.supply.domain.scorecards import DueLine
from services.supply.domain.settlement import Accrual, CycleKind, QualityBand, RateTier, SettlementCycle
from services.supply.domain.statements import SettlementTerms, StatementStatus, StatementWindow

# From this many statements on, a drafting aggregates by a hash join rather than an index probe per statement.
MANY_STATEMENTS = 50


# ---- contracts a run drafts --------------------------------------------------------------------------------------


def _cycle(row: Any) -> SettlementCycle:
    if row.cycle == CycleKind.DAYS.value:
        return SettlementCycle(CycleKind.DAYS, row.cycle_days, row.cycle_anchor)
    return SettlementCycle()


def _tiers(value: Any) -> tuple[RateTier, ...]:
    items = json.loads(value) if isinstance(value, str) else (value or [])
    return tuple(RateTier(int(item["threshold_fen"]), Decimal(str(item["rate"]))) for item in items)


def _bands(value: Any) -> tuple[QualityBand, ...]:
    items = json.loads(value) if isinstance(value, str) else (value or [])
    return tuple(QualityBand(Decimal(str(item["score_below"])), Decimal(str(item["rate"]))) for item in items)


async def run_candidates(
    session: AsyncSession, supplier_id: str | None, contract_id: str | None = None
) -> list[tuple[SettlementTerms, date, date | None]]:
    """Contracts a run may draft (with their windows): all of them, or one supplier's, or one."""
    rows = await session.execute(
        text(
            "SELECT contract_id, supplier_id, mode, valid_from, valid_until, cycle, cycle_days, cycle_anchor, "
            "rebate_tiers, quality_bands FROM contract "
            "WHERE (CAST(:supplier AS text) IS NULL OR supplier_id = :supplier) "
            "AND (CAST(:contract AS text) IS NULL OR contract_id = :contract) ORDER BY contract_id"
        ),
        {"supplier": supplier_id, "contract": contract_id},
    )
    return [
        (
            SettlementTerms(
                contract_id=row.contract_id,
                supplier_id=row.supplier_id,
                mode=SettlementMode(row.mode),
                cycle=_cycle(row),
                rebate_tiers=_tiers(row.rebate_tiers),
                quality_bands=_bands(row.quality_bands),
            ),
            row.valid_from,
            row.valid_until,
        )
        for row in rows
    ]


async def contracts_with_open_accruals(session: AsyncSession, contract_ids: Sequence[str]) -> set[str]:
    rows = await session.execute(
        text(
            "SELECT c.id FROM unnest(CAST(:ids AS text[])) AS c(id) WHERE EXISTS "
            "(SELECT 1 FROM accrual a WHERE a.contract_id = c.id AND a.statement_id IS NULL)"
        ),
        {"ids": list(contract_ids)},
    )
    return {row.id for row in rows}


async def issued_periods(session: AsyncSession, contract_ids: Sequence[str]) -> set[tuple[str, date]]:
    """(contract, period start) of every statement past its draft."""
    rows = await session.execute(
        text(
            "SELECT contract_id, period_start FROM statement "
            "WHERE contract_id = ANY (CAST(:ids AS text[])) AND status <> 'draft'"
        ),
        {"ids": list(contract_ids)},
    )
    return {(row.contract_id, row.period_start) for row in rows}


# ---- statements --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementRow:
    statement_id: str
    supplier_id: str
    contract_id: str
    mode: SettlementMode
    period_start: date
    period_end: date
    status: StatementStatus
    total_fen: int
    line_count: int
    late_line_count: int
    issued_at: datetime | None
    payment_reference: str
    version: int


_STATEMENT_COLUMNS = (
    "statement_id, supplier_id, contract_id, mode, period_start, period_end, status, total_fen, line_count, "
    "late_line_count, issued_at, payment_reference, version"
)


def _statement(row: Any) -> StatementRow:
    return StatementRow(
        row.statement_id,
        row.supplier_id,
        row.contract_id,
        SettlementMode(row.mode),
        row.period_start,
        row.period_end,
        StatementStatus(row.status),
        row.total_fen,
        row.line_count,
        row.late_line_count,
        row.issued_at,
        row.payment_reference,
        row.version,
    )


async def ensure_drafts(
    session: AsyncSession, drafts: Sequence[tuple[str, SettlementTerms, StatementWindow]], now: datetime
) -> list[StatementRow]:
    """Create the missing statements, then lock them all (in id order) and return those still drafts."""
    if not drafts:
        return []
    await session.execute(
        text(
            "INSERT INTO statement (statement_id, supplier_id, contract_id, mode, period_start, period_end, first_day, "
            "status, drafted_at) SELECT id, supplier, contract, mode, ps, pe, ps, 'draft', :now FROM unnest("
            "CAST(:ids AS text[]), CAST(:suppliers AS text[]), CAST(:contracts AS text[]), CAST(:modes AS text[]), "
            "CAST(:starts AS date[]), CAST(:ends AS date[])) AS v(id, supplier, contract, mode, ps, pe) "
            "ORDER BY id ON CONFLICT DO NOTHING"
        ),
        {
            "ids": [sid for sid, _, _ in drafts],
            "suppliers": [terms.supplier_id for _, terms, _ in drafts],
            "contracts": [terms.contract_id for _, terms, _ in drafts],
            "modes": [terms.mode.value for _, terms, _ in drafts],
            "starts": [window.start for _, _, window in drafts],
            "ends": [window.end for _, _, window in drafts],
            "now": now,
        },
    )
    rows = await session.execute(
        text(
            f"SELECT {_STATEMENT_COLUMNS} FROM statement WHERE statement_id = ANY (CAST(:ids AS text[])) "
            "ORDER BY statement_id FOR UPDATE"
        ),
        {"ids": [sid for sid, _, _ in drafts]},
    )
    return [statement for statement in map(_statement, rows) if statement.status is StatementStatus.DRAFT]


# A statement's lines: those put on it (issued statements' and a draft's period lines), and for a draft the
# open accruals of its contract in its window [first_day, period_end) — a draft is read live, never copied.
_MEMBERS = (
    "SELECT a.source_id, a.supplier_id, a.contract_id, a.kind, a.occurred_on, a.amount_fen, a.sku, a.store_id, "
    "a.quantity, a.base_fen, a.unit_cost_fen, a.commission_rate, a.reverses, a.dispute_comment, a.description, "
    "a.late AS shown_late, s.statement_id AS member_of FROM statement s JOIN accrual a ON a.statement_id = "
    "s.statement_id WHERE s.statement_id = ANY (CAST(:ids AS text[])) UNION ALL "
    "SELECT a.source_id, a.supplier_id, a.contract_id, a.kind, a.occurred_on, a.amount_fen, a.sku, a.store_id, "
    "a.quantity, a.base_fen, a.unit_cost_fen, a.commission_rate, a.reverses, a.dispute_comment, a.description, "
    "a.occurred_on < s.period_start, s.statement_id FROM statement s JOIN accrual a ON a.contract_id = s.contract_id "
    "AND a.statement_id IS NULL AND a.occurred_on >= s.first_day AND a.occurred_on < s.period_end "
    "WHERE s.statement_id = ANY (CAST(:ids AS text[])) AND s.status = 'draft' AND CAST(:live AS boolean)"
)


async def set_windows(session: AsyncSession, drafts: Sequence[tuple[str, StatementWindow]]) -> None:
    """Each draft shows its contract's open accruals of ``[first_day, end)`` (those before its period late).

    Last drafting's rebate and quality lines are removed: the run computes them again."""
    ids = [sid for sid, _ in drafts]
    await session.execute(
        text(
            "DELETE FROM accrual WHERE statement_id = ANY (CAST(:ids AS text[])) "
            "AND kind IN ('rebate', 'quality_deduction')"
        ),
        {"ids": ids},
    )
    await session.execute(
        text(
            "UPDATE statement s SET first_day = v.first_day FROM unnest(CAST(:ids AS text[]), "
            "CAST(:firsts AS date[])) AS v(id, first_day) WHERE s.statement_id = v.id"
        ),
        {"ids": ids, "firsts": [window.first_day for _, window in drafts]},
    )


async def freeze_lines(session: AsyncSession, statement_ids: Sequence[str]) -> None:
    """Put the open accruals in each draft's window on it for good (issuing): late when before its period."""
    await session.execute(
        text(
            "UPDATE accrual a SET statement_id = s.statement_id, late = a.occurred_on < s.period_start "
            "FROM statement s WHERE s.statement_id = ANY (CAST(:ids AS text[])) AND s.status = 'draft' "
            "AND a.contract_id = s.contract_id AND a.statement_id IS NULL AND a.occurred_on >= s.first_day "
            "AND a.occurred_on < s.period_end"
        ),
        {"ids": list(statement_ids)},
    )


@dataclass(frozen=True, slots=True)
class PeriodBases:
    purchases_fen: int = 0  # receipts net of returns to vendor: the rebate's base
    payable_fen: int = 0  # receipts, sales and their returns: the quality deduction's base
    total_fen: int = 0
    lines: int = 0
    late_lines: int = 0


async def period_bases(
    session: AsyncSession, statement_ids: Sequence[str], *, live: bool = True
) -> dict[str, PeriodBases]:
    """Per statement, in one pass over its lines: the bases of its rebate and quality deduction, its total
    and its line counts.

    Many statements at once (a month-end) are one hash join of their windows with the open accruals — a
    sequential pass, like a plain ``GROUP BY`` — rather than an index probe per statement, whose scattered
    heap reads (a supplier's lines are spread over the month's pages) cost a page read per line."""
    many = len(statement_ids) > MANY_STATEMENTS
    if many:
        await session.execute(text("SET LOCAL enable_nestloop = off"))
    rows = await session.execute(
        text(
            "SELECT member_of, "
            "coalesce(sum(amount_fen) FILTER (WHERE kind IN ('receipt', 'return_to_vendor')), 0) AS purchases, "
            "coalesce(sum(amount_fen) FILTER (WHERE kind IN ('receipt', 'return_to_vendor', 'sale', "
            "'customer_return')), 0) AS payable, sum(amount_fen) AS total, count(*) AS lines, "
            f"count(*) FILTER (WHERE shown_late) AS late FROM ({_MEMBERS}) m GROUP BY member_of"
        ),
        {"ids": list(statement_ids), "live": live},
    )
    if many:
        await session.execute(text("RESET enable_nestloop"))
    return {
        row.member_of: PeriodBases(int(row.purchases), int(row.payable), int(row.total), int(row.lines), int(row.late))
        for row in rows
    }


async def write_totals(session: AsyncSession, totals: Sequence[tuple[str, PeriodBases]], now: datetime) -> None:
    """Each drafted statement's total and counts, as its drafting computed them from its lines."""
    await session.execute(
        text(
            "UPDATE statement s SET total_fen = v.total, line_count = v.lines, late_line_count = v.late, "
            "drafted_at = :now, version = s.version + 1 FROM unnest(CAST(:ids AS text[]), CAST(:totals AS bigint[]), "
            "CAST(:lines AS bigint[]), CAST(:lates AS bigint[])) AS v(id, total, lines, late) "
            "WHERE s.statement_id = v.id"
        ),
        {
            "ids": [sid for sid, _ in totals],
            "totals": [bases.total_fen for _, bases in totals],
            "lines": [bases.lines for _, bases in totals],
            "lates": [bases.late_lines for _, bases in totals],
            "now": now,
        },
    )


async def due_lines(session: AsyncSession, supplier_id: str, start: date, end: date) -> list[DueLine]:
    """The supplier's purchase-order lines promised in ``[start, end)`` (what its scorecard measures)."""
    rows = await session.execute(
        text(
            "SELECT l.ordered, l.accepted, l.rejected, o.confirmed_at, o.promised_date, l.last_arrival_at, "
            "l.fully_delivered_at FROM purchase_order o JOIN po_line l USING (po_id) "
            "WHERE o.supplier_id = :supplier AND o.promised_date >= :start AND o.promised_date < :end "
            "AND o.status NOT IN ('draft', 'cancelled')"
        ),
        {"supplier": supplier_id, "start": start, "end": end},
    )
    return [
        DueLine(
            ordered=row.ordered,
            accepted=row.accepted,
            rejected=row.rejected,
            confirmed_on=row.confirmed_at.date() if row.confirmed_at else None,
            promised_on=row.promised_date,
            last_arrival_on=row.last_arrival_at.date() if row.last_arrival_at else None,
            fully_delivered_on=row.fully_delivered_at.date() if row.fully_delivered_at else None,
        )
        for row in rows
    ]


async def refresh_totals(session: AsyncSession, statement_ids: Sequence[str], now: datetime) -> None:
    """Each statement's total, line and late-line counts from its lines (the sum of its lines, always)."""
    await session.execute(
        text(
            "UPDATE statement s SET total_fen = coalesce(t.total, 0), line_count = coalesce(t.lines, 0), "
            "late_line_count = coalesce(t.late, 0), drafted_at = :now, version = s.version + 1 "
            "FROM unnest(CAST(:ids AS text[])) AS v(id) LEFT JOIN (SELECT member_of, sum(amount_fen) AS total, "
            f"count(*) AS lines, count(*) FILTER (WHERE shown_late) AS late FROM ({_MEMBERS}) m "
            "GROUP BY member_of) t ON t.member_of = v.id WHERE s.statement_id = v.id"
        ),
        {"ids": list(statement_ids), "now": now, "live": True},
    )


async def run_summary(session: AsyncSession, statement_ids: Sequence[str]) -> tuple[int, int]:
    row = (
        await session.execute(
            text(
                "SELECT coalesce(sum(line_count), 0) AS lines, coalesce(sum(total_fen), 0) AS total FROM statement "
                "WHERE statement_id = ANY (CAST(:ids AS text[]))"
            ),
            {"ids": list(statement_ids)},
        )
    ).one()
    return int(row.lines), int(row.total)


async def statement(session: AsyncSession, statement_id: str, *, lock: bool = False) -> StatementRow | None:
    row = (
        await session.execute(
            text(
                f"SELECT {_STATEMENT_COLUMNS} FROM statement WHERE statement_id = :id" + (" FOR UPDATE" if lock else "")
            ),
            {"id": statement_id},
        )
    ).first()
    return None if row is None else _statement(row)


async def move_statement(
    session: AsyncSession,
    statement_id: str,
    to: StatementStatus,
    now: datetime,
    *,
    actor_id: str,
    payment_reference: str = "",
) -> StatementRow:
    stamp = {
        StatementStatus.ISSUED: "issued_at = :now, issued_by = :actor",
        StatementStatus.CONFIRMED: "confirmed_at = :now",
        StatementStatus.DISPUTED: "disputed_at = :now",
        StatementStatus.APPROVED: "approved_at = :now, approved_by = :actor",
        StatementStatus.PAID: "paid_at = :now, payment_reference = :reference",
    }[to]
    row = (
        await session.execute(
            text(
                f"UPDATE statement SET status = :to, {stamp}, version = version + 1 WHERE statement_id = :id "
                f"RETURNING {_STATEMENT_COLUMNS}"
            ),
            {"id": statement_id, "to": to.value, "now": now, "actor": actor_id, "reference": payment_reference},
        )
    ).one()
    return _statement(row)


async def line_sources(session: AsyncSession, statement_id: str, source_ids: Sequence[str]) -> set[str]:
    rows = await session.execute(
        text("SELECT source_id FROM accrual WHERE statement_id = :id AND source_id = ANY (CAST(:sources AS text[]))"),
        {"id": statement_id, "sources": list(source_ids)},
    )
    return {row.source_id for row in rows}


async def comment_lines(session: AsyncSession, statement_id: str, comments: dict[str, str]) -> None:
    await session.execute(
        text(
            "UPDATE accrual a SET dispute_comment = v.comment FROM unnest(CAST(:sources AS text[]), "
            "CAST(:comments AS text[])) AS v(source, comment) WHERE a.statement_id = :id AND a.source_id = v.source"
        ),
        {"id": statement_id, "sources": list(comments), "comments": list(comments.values())},
    )


@dataclass(frozen=True, slots=True)
class LineRow:
    accrual: Accrual
    late: bool
    dispute_comment: str
    description: str


async def statement_lines(
    session: AsyncSession, statement_id: str, *, after: tuple[date, str] | None = None, limit: int | None = None
) -> list[LineRow]:
    """A statement's lines by date then source, from after ``after``."""
    rows = await session.execute(
        text(
            f"SELECT * FROM ({_MEMBERS}) a WHERE (CAST(:after_day AS date) IS NULL OR "
            "(a.occurred_on, a.source_id) > (CAST(:after_day AS date), CAST(:after_source AS text))) "
            "ORDER BY a.occurred_on, a.source_id LIMIT :limit"
        ),
        {
            "ids": [statement_id],
            "live": True,
            "after_day": after[0] if after else None,
            "after_source": after[1] if after else "",
            "limit": limit,
        },
    )
    return [LineRow(accrual_from_row(row), row.shown_late, row.dispute_comment, row.description) for row in rows]


async def live_totals(session: AsyncSession, statement_id: str) -> tuple[int, int, int]:
    """(total, lines, late lines) of a statement as its lines stand now (a draft's change as facts arrive)."""
    row = (
        await session.execute(
            text(
                "SELECT coalesce(sum(amount_fen), 0) AS total, count(*) AS lines, "
                f"count(*) FILTER (WHERE shown_late) AS late FROM ({_MEMBERS}) m"
            ),
            {"ids": [statement_id], "live": True},
        )
    ).one()
    return int(row.total), int(row.lines), int(row.late)


async def list_statements(
    session: AsyncSession,
    *,
    supplier_id: str | None,
    statuses: Sequence[StatementStatus],
    after: tuple[date, str] | None,
    limit: int,
) -> list[StatementRow]:
    rows = await session.execute(
        text(
            f"SELECT {_STATEMENT_COLUMNS} FROM statement WHERE (CAST(:supplier AS text) IS NULL OR supplier_id = "
            ":supplier) AND (cardinality(CAST(:statuses AS text[])) = 0 OR status = ANY (CAST(:statuses AS text[]))) "
            "AND (CAST(:after_day AS date) IS NULL OR (period_start, statement_id) < "
            "(CAST(:after_day AS date), CAST(:after_id AS text))) ORDER BY period_start DESC, statement_id DESC "
            "LIMIT :limit"
        ),
        {
            "supplier": supplier_id,
            "statuses": [status.value for status in statuses],
            "after_day": after[0] if after else None,
            "after_id": after[1] if after else "",
            "limit": limit,
        },
    )
    return [_statement(row) for row in rows]
