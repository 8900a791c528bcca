"""Settlement's SQL: accruals, the journal projection, statements and the reconciliation check.

Statement runs are set-based: one statement per query for all the contracts of a run (arrays
unnested), never a query per accrual, so a month-end of millions of lines is a handful of
``UPDATE … FROM`` and ``GROUP BY`` statements in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.supply.domain.contracts import Contract, SettlementMode
from services.supply.domain.scorecards import DueLine
from services.supply.domain.settlement import (
    Accrual,
    AccrualKind,
    CycleKind,
    QualityBand,
    RateTier,
    SettlementCycle,
)
from services.supply.domain.statements import SettlementTerms, StatementStatus, StatementWindow

# From this many statements on, a drafting aggregates by a hash join rather than an index probe per statement.
MANY_STATEMENTS = 50
SALES_MODES = [SettlementMode.CONSIGNMENT.value, SettlementMode.CONCESSION.value]


# ---- contracts ---------------------------------------------------------------------------------------------------


def _contract(row: Any, costs: dict[str, int], skus: Iterable[str]) -> Contract:
    mode = SettlementMode(row.mode)
    concession = mode is SettlementMode.CONCESSION
    return Contract(
        contract_id=row.contract_id,
        supplier_id=row.supplier_id,
        mode=mode,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        skus=frozenset(skus),
        unit_cost_fen={} if concession else costs,
        commission_rate=Decimal(row.commission_rate) if concession and row.commission_rate is not None else None,
        store_commission_rates=(
            {store: Decimal(rate) for store, rate in (row.store_commission_rates or {}).items()} if concession else {}
        ),
        rejects_billed=row.rejects_billed,
    )


async def settled_by_sales(session: AsyncSession, skus: Sequence[str]) -> set[str]:
    """Of ``skus``, those some consignment or concession contract covers (on any day)."""
    if not skus:
        return set()
    rows = await session.execute(
        text(
            "SELECT DISTINCT i.sku FROM contract_item i JOIN contract c USING (contract_id) "
            "WHERE i.sku = ANY (CAST(:skus AS text[])) AND c.mode = ANY (CAST(:modes AS text[]))"
        ),
        {"skus": sorted(set(skus)), "modes": SALES_MODES},
    )
    return {row.sku for row in rows}


@dataclass(frozen=True, slots=True)
class PurchaseLine:
    line_number: int
    sku: str
    accepted: Decimal
    rejected: Decimal
    contract: Contract


async def receipt_lines(session: AsyncSession, receipt_id: str) -> tuple[str, list[PurchaseLine]]:
    """A goods receipt's lines under purchase contracts, and its location."""
    rows = (
        await session.execute(
            text(
                "SELECT r.location_id, l.line_number, l.sku, l.accepted, l.rejected, l.unit_cost_fen, c.contract_id, "
                "c.supplier_id, c.mode, c.valid_from, c.valid_until, c.commission_rate, c.store_commission_rates, "
                "c.rejects_billed FROM goods_receipt r JOIN receipt_line l USING (receipt_id) "
                "JOIN contract c ON c.contract_id = l.contract_id "
                "WHERE r.receipt_id = :id AND c.mode = 'purchase' ORDER BY l.line_number"
            ),
            {"id": receipt_id},
        )
    ).all()
    location = rows[0].location_id if rows else ""
    return location, [
        PurchaseLine(
            row.line_number,
            row.sku,
            row.accepted,
            row.rejected,
            _contract(row, {row.sku: row.unit_cost_fen}, [row.sku]),
        )
        for row in rows
    ]


async def vendor_return_lines(session: AsyncSession, return_id: str) -> tuple[str, list[PurchaseLine]]:
    """A return to vendor's lines under purchase contracts, and the location the goods left."""
    rows = (
        await session.execute(
            text(
                "SELECT r.location_id, l.line_number, l.sku, l.quantity, l.unit_cost_fen, c.contract_id, "
                "c.supplier_id, c.mode, c.valid_from, c.valid_until, c.commission_rate, c.store_commission_rates, "
                "c.rejects_billed FROM vendor_return r JOIN vendor_return_line l USING (return_id) "
                "JOIN contract c ON c.contract_id = l.contract_id "
                "WHERE r.return_id = :id AND c.mode = 'purchase' ORDER BY l.line_number"
            ),
            {"id": return_id},
        )
    ).all()
    location = rows[0].location_id if rows else ""
    return location, [
        PurchaseLine(
            row.line_number,
            row.sku,
            row.quantity,
            Decimal(0),
            _contract(row, {row.sku: row.unit_cost_fen}, [row.sku]),
        )
        for row in rows
    ]


async def contract_supplier(session: AsyncSession, contract_id: str) -> str | None:
    row = (
        await session.execute(text("SELECT supplier_id FROM contract WHERE contract_id = :id"), {"id": contract_id})
    ).first()
    return None if row is None else str(row.supplier_id)


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


# ---- accruals ----------------------------------------------------------------------------------------------------


_INSERT_ACCRUALS = (
    "INSERT INTO accrual (source_id, supplier_id, contract_id, kind, occurred_on, amount_fen, sku, store_id, "
    "quantity, base_fen, unit_cost_fen, commission_rate, reverses, sale_id, description, recorded_at, "
    "statement_id) SELECT * FROM unnest(CAST(:source AS text[]), CAST(:supplier AS text[]), "
    "CAST(:contract AS text[]), "
    "CAST(:kind AS text[]), CAST(:occurred AS date[]), CAST(:amount AS bigint[]), CAST(:sku AS text[]), "
    "CAST(:store AS text[]), CAST(:quantity AS numeric[]), CAST(:base AS bigint[]), CAST(:cost AS bigint[]), "
    "CAST(:rate AS numeric[]), CAST(:reverses AS text[]), CAST(:sale AS text[]), CAST(:description AS text[]), "
    "CAST(:now AS timestamptz[]), CAST(:statement AS text[])) ON CONFLICT (source_id) DO NOTHING"
)


def _accrual_params(
    accruals: Sequence[Accrual],
    now: datetime,
    sale_id: str | None,
    description: str,
    statement_ids: Sequence[str] | None,
) -> dict[str, Any]:
    return {
        "source": [a.source_id for a in accruals],
        "supplier": [a.supplier_id for a in accruals],
        "contract": [a.contract_id for a in accruals],
        "kind": [a.kind.value for a in accruals],
        "occurred": [a.occurred_on for a in accruals],
        "amount": [a.amount_fen for a in accruals],
        "sku": [a.sku for a in accruals],
        "store": [a.store_id for a in accruals],
        "quantity": [a.quantity for a in accruals],
        "base": [a.base_fen for a in accruals],
        "cost": [a.unit_cost_fen for a in accruals],
        "rate": [a.commission_rate for a in accruals],
        "reverses": [a.reverses or None for a in accruals],
        "sale": [sale_id] * len(accruals),
        "description": [description] * len(accruals),
        "now": [now] * len(accruals),
        "statement": list(statement_ids) if statement_ids is not None else [None] * len(accruals),
    }


async def insert_accruals(
    session: AsyncSession,
    accruals: Sequence[Accrual],
    now: datetime,
    *,
    sale_id: str | None = None,
    description: str = "",
    statement_ids: Sequence[str] | None = None,
) -> None:
    """Write accruals once each (a source already accrued is left as it is); open unless ``statement_ids``."""
    if accruals:
        await session.execute(
            text(_INSERT_ACCRUALS), _accrual_params(accruals, now, sale_id, description, statement_ids)
        )


@dataclass(frozen=True, slots=True)
class SoldLine:
    """A sale line's accrual and what its returns took back so far."""

    accrual: Accrual
    returned: Decimal  # positive
    reversed_fen: int  # what they took back, positive


def _accrual(row: Any) -> Accrual:
    return Accrual(
        source_id=row.source_id,
        supplier_id=row.supplier_id,
        contract_id=row.contract_id,
        kind=AccrualKind(row.kind),
        occurred_on=row.occurred_on,
        amount_fen=row.amount_fen,
        sku=row.sku,
        store_id=row.store_id,
        quantity=row.quantity,
        base_fen=row.base_fen,
        unit_cost_fen=row.unit_cost_fen,
        commission_rate=row.commission_rate,
        reverses=row.reverses or "",
    )


_ACCRUAL_COLUMNS = (
    "a.source_id, a.supplier_id, a.contract_id, a.kind, a.occurred_on, a.amount_fen, a.sku, a.store_id, a.quantity, "
    "a.base_fen, a.unit_cost_fen, a.commission_rate, a.reverses"
)


async def sold_lines(session: AsyncSession, sale_id: str) -> list[SoldLine]:
    """The sale's accrued lines, locked (returns of one line queue behind each other), with their returns so far."""
    rows = (
        await session.execute(
            text(
                f"SELECT {_ACCRUAL_COLUMNS}, "
                "coalesce((SELECT -sum(r.quantity) FROM accrual r WHERE r.reverses = a.source_id), 0) AS returned, "
                "coalesce((SELECT -sum(r.amount_fen) FROM accrual r WHERE r.reverses = a.source_id), 0) AS reversed "
                "FROM accrual a WHERE a.sale_id = :sale AND a.kind = 'sale' ORDER BY a.source_id FOR UPDATE OF a"
            ),
            {"sale": sale_id},
        )
    ).all()
    return [SoldLine(_accrual(row), Decimal(row.returned), int(row.reversed)) for row in rows]


async def record_journal_entry(session: AsyncSession, sale_id: str, store_id: str, day: date, is_return: bool) -> bool:
    """Note a journal entry; False when it was noted before (applied already: change nothing)."""
    noted = await session.execute(
        text(
            "INSERT INTO journal_sale (sale_id, store_id, business_day, is_return) "
            "VALUES (:sale, :store, :day, :is_return) ON CONFLICT (sale_id) DO NOTHING RETURNING 1"
        ),
        {"sale": sale_id, "store": store_id, "day": day, "is_return": is_return},
    )
    return noted.first() is not None


async def journal_sale_known(session: AsyncSession, sale_id: str) -> bool:
    found = await session.execute(
        text("SELECT 1 FROM journal_sale WHERE sale_id = :sale AND NOT is_return"), {"sale": sale_id}
    )
    return found.first() is not None


@dataclass(frozen=True, slots=True)
class DaySales:
    store_id: str
    sku: str
    day: date
    sold: Decimal = Decimal(0)
    sold_fen: int = 0
    returned: Decimal = Decimal(0)
    returned_fen: int = 0


def _merged_days(rows: Sequence[DaySales]) -> list[DaySales]:
    """One row per store × SKU × day, in key order (two entries never lock the same rows crosswise)."""
    merged: dict[tuple[str, date, str], DaySales] = {}
    for row in rows:
        key = (row.sku, row.day, row.store_id)
        had = merged.get(key)
        merged[key] = (
            row
            if had is None
            else DaySales(
                row.store_id,
                row.sku,
                row.day,
                had.sold + row.sold,
                had.sold_fen + row.sold_fen,
                had.returned + row.returned,
                had.returned_fen + row.returned_fen,
            )
        )
    return [merged[key] for key in sorted(merged)]


_ADD_DAYS = (
    "INSERT INTO sales_day AS d (store_id, sku, business_day, sold, sold_fen, returned, returned_fen) "
    "SELECT * FROM unnest(CAST(:store AS text[]), CAST(:sku AS text[]), CAST(:day AS date[]), "
    "CAST(:sold AS numeric[]), CAST(:sold_fen AS bigint[]), CAST(:returned AS numeric[]), "
    "CAST(:returned_fen AS bigint[])) {condition}"
    "ON CONFLICT (sku, business_day, store_id) DO UPDATE SET sold = d.sold + excluded.sold, "
    "sold_fen = d.sold_fen + excluded.sold_fen, returned = d.returned + excluded.returned, "
    "returned_fen = d.returned_fen + excluded.returned_fen"
)


def _days_params(rows: Sequence[DaySales]) -> dict[str, Any]:
    ordered = _merged_days(rows)
    return {
        "store": [row.store_id for row in ordered],
        "sku": [row.sku for row in ordered],
        "day": [row.day for row in ordered],
        "sold": [row.sold for row in ordered],
        "sold_fen": [row.sold_fen for row in ordered],
        "returned": [row.returned for row in ordered],
        "returned_fen": [row.returned_fen for row in ordered],
    }


async def add_sales_days(session: AsyncSession, rows: Sequence[DaySales]) -> None:
    """Add a journal entry's lines to the store × SKU × day totals."""
    if rows:
        await session.execute(text(_ADD_DAYS.format(condition="")), _days_params(rows))


async def note_sale(
    session: AsyncSession, sale_id: str, store_id: str, day: date, days: Sequence[DaySales], skus: Sequence[str]
) -> tuple[bool, dict[str, Contract]]:
    """In one round trip: note a sale by id, add its lines to the store × SKU × day totals if it is new,
    and find the consignment or concession contract of each SKU on its day. False: noted before."""
    rows = (
        await session.execute(
            text(
                "WITH noted AS (INSERT INTO journal_sale (sale_id, store_id, business_day, is_return) "
                "VALUES (:sale, :at_store, :on, false) ON CONFLICT (sale_id) DO NOTHING RETURNING 1), "
                "days AS ("
                + _ADD_DAYS.format(condition="WHERE EXISTS (SELECT 1 FROM noted) ")
                + ") SELECT (SELECT count(*) FROM noted) AS noted, i.sku, i.unit_cost_fen, c.contract_id, "
                "c.supplier_id, c.mode, c.valid_from, c.valid_until, c.commission_rate, c.store_commission_rates, "
                "c.rejects_billed FROM (SELECT 1) AS one LEFT JOIN (contract_item i JOIN contract c USING "
                "(contract_id)) ON i.sku = ANY (CAST(:skus AS text[])) AND c.mode = ANY (CAST(:modes AS text[])) "
                "AND c.valid_from <= :on AND (c.valid_until IS NULL OR c.valid_until > :on)"
            ),
            {
                "sale": sale_id,
                "at_store": store_id,
                "on": day,
                "skus": sorted(set(skus)),
                "modes": SALES_MODES,
                **_days_params(days),
            },
        )
    ).all()
    noted = bool(rows[0].noted)
    contracts = {
        row.sku: _contract(row, {row.sku: row.unit_cost_fen or 0}, [row.sku]) for row in rows if row.sku is not None
    }
    return noted, contracts


@dataclass(frozen=True, slots=True)
class UnmatchedLine:
    source_id: str
    sale_id: str
    line_number: int
    original_sale_id: str
    status: str  # waiting, excess, invalid
    sku: str
    store_id: str
    quantity: Decimal
    revenue_fen: int
    occurred_on: date
    detail: str = ""


async def keep_unmatched(session: AsyncSession, lines: Sequence[UnmatchedLine], now: datetime) -> None:
    for line in lines:
        await session.execute(
            text(
                "INSERT INTO unmatched_line (source_id, sale_id, line_number, original_sale_id, status, sku, store_id, "
                "quantity, revenue_fen, occurred_on, detail, recorded_at) VALUES (:source, :sale, :line, :original, "
                ":status, :sku, :store, :quantity, :revenue, :occurred, :detail, :now) "
                "ON CONFLICT (source_id) DO NOTHING"
            ),
            {
                "source": line.source_id,
                "sale": line.sale_id,
                "line": line.line_number,
                "original": line.original_sale_id,
                "status": line.status,
                "sku": line.sku,
                "store": line.store_id,
                "quantity": line.quantity,
                "revenue": line.revenue_fen,
                "occurred": line.occurred_on,
                "detail": line.detail,
                "now": now,
            },
        )


async def take_waiting_returns(
    session: AsyncSession, original_sale_id: str, accruals: Sequence[Accrual] = (), now: datetime | None = None
) -> list[UnmatchedLine]:
    """The returns that waited for ``original_sale_id``, removed from the waiting list (to be applied now);
    in the same round trip, the sale's own ``accruals`` are written."""
    insert = ""
    params: dict[str, Any] = {"original": original_sale_id}
    if accruals:
        assert now is not None
        insert = f"WITH accrued AS ({_INSERT_ACCRUALS}) "
        params |= _accrual_params(accruals, now, original_sale_id, "", None)
    rows = await session.execute(
        text(
            insert + "DELETE FROM unmatched_line WHERE original_sale_id = :original AND status = 'waiting' "
            "RETURNING source_id, sale_id, line_number, original_sale_id, status, sku, store_id, quantity, "
            "revenue_fen, occurred_on, detail"
        ),
        params,
    )
    lines = [
        UnmatchedLine(
            row.source_id,
            row.sale_id,
            row.line_number,
            row.original_sale_id,
            row.status,
            row.sku,
            row.store_id,
            row.quantity,
            row.revenue_fen,
            row.occurred_on,
            row.detail,
        )
        for row in rows
    ]
    return sorted(lines, key=lambda line: (line.sale_id, line.line_number))


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
    return [LineRow(_accrual(row), row.shown_late, row.dispute_comment, row.description) for row in rows]


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


# ---- reconciliation ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    statement_id: str = ""
    source_id: str = ""
    detail: str = ""


async def check(session: AsyncSession, supplier_id: str | None, limit: int) -> tuple[int, int, int, list[Problem]]:
    """(accruals, statements, open accruals, problems) — every query one pass over its table."""
    params = {"supplier": supplier_id, "limit": limit}
    scope = "(CAST(:supplier AS text) IS NULL OR {}supplier_id = :supplier)"
    counts = (
        await session.execute(
            text(
                "SELECT (SELECT count(*) FROM accrual a WHERE " + scope.format("a.") + ") AS accruals, "
                "(SELECT count(*) FROM statement s WHERE " + scope.format("s.") + ") AS statements, "
                "(SELECT count(*) FROM accrual a LEFT JOIN statement s USING (statement_id) WHERE "
                + scope.format("a.")
                + " AND (a.statement_id IS NULL OR s.status = 'draft')) AS open"
            ),
            params,
        )
    ).one()
    problems: list[Problem] = []
    # Totals and counts equal the lines.
    rows = await session.execute(
        text(
            "SELECT s.statement_id, s.total_fen, s.line_count, coalesce(t.total, 0) AS total, "
            "coalesce(t.lines, 0) AS n "
            "FROM statement s LEFT JOIN (SELECT statement_id, sum(amount_fen) AS total, count(*) AS lines "
            "FROM accrual WHERE statement_id IS NOT NULL GROUP BY statement_id) t USING (statement_id) WHERE "
            + scope.format("s.")
            + " AND s.status <> 'draft' "
            "AND (s.total_fen <> coalesce(t.total, 0) OR s.line_count <> coalesce(t.lines, 0)) "
            "ORDER BY s.statement_id LIMIT :limit"
        ),
        params,
    )
    problems += [
        Problem(
            "total-mismatch",
            row.statement_id,
            "",
            f"total {row.total_fen} fen over {row.line_count} lines; the lines add up to {row.total} over {row.n}",
        )
        for row in rows
    ]
    # Each line on its contract's statement, inside its period or marked late from before it.
    rows = await session.execute(
        text(
            "SELECT a.source_id, s.statement_id, a.occurred_on, a.late, s.period_start, s.period_end, "
            "a.contract_id <> s.contract_id AS other_contract FROM accrual a JOIN statement s USING (statement_id) "
            "WHERE " + scope.format("a.") + " AND (a.contract_id <> s.contract_id OR a.occurred_on >= s.period_end "
            "OR (a.occurred_on < s.period_start) <> a.late) ORDER BY a.source_id LIMIT :limit"
        ),
        params,
    )
    problems += [
        Problem(
            "line-outside-statement",
            row.statement_id,
            row.source_id,
            "another contract's line" if row.other_contract else f"dated {row.occurred_on}, late={row.late}",
        )
        for row in rows
    ]
    # Every sale of a consignment or concession SKU accrued, and nothing accrued that was not sold.
    rows = await session.execute(
        text(
            "WITH sold AS (SELECT d.store_id, d.sku, d.business_day, d.sold FROM sales_day d "
            "JOIN contract_item i ON i.sku = d.sku JOIN contract c ON c.contract_id = i.contract_id "
            "AND c.mode IN ('consignment', 'concession') AND c.valid_from <= d.business_day "
            "AND (c.valid_until IS NULL OR c.valid_until > d.business_day) WHERE d.sold > 0 AND "
            + scope.format("c.")
            + "), accrued AS (SELECT store_id, sku, occurred_on AS business_day, sum(quantity) AS sold "
            "FROM accrual a WHERE kind = 'sale' AND " + scope.format("a.") + " GROUP BY 1, 2, 3) "
            "SELECT coalesce(s.store_id, a.store_id) AS store_id, coalesce(s.sku, a.sku) AS sku, "
            "coalesce(s.business_day, a.business_day) AS day, coalesce(s.sold, 0) AS sold, "
            "coalesce(a.sold, 0) AS accrued FROM sold s FULL JOIN accrued a "
            "ON (a.store_id, a.sku, a.business_day) = (s.store_id, s.sku, s.business_day) "
            "WHERE coalesce(s.sold, 0) <> coalesce(a.sold, 0) ORDER BY 3, 2, 1 LIMIT :limit"
        ),
        params,
    )
    problems += [
        Problem(
            "journal-line-not-accrued",
            "",
            f"{row.store_id}:{row.sku}:{row.day}",
            f"journal sold {row.sold}, accrued {row.accrued}",
        )
        for row in rows
    ]
    # Returns take back at most what a line sold, and exactly its amount once it has all come back.
    rows = await session.execute(
        text(
            "SELECT o.source_id, o.statement_id, o.quantity, o.amount_fen, -sum(r.quantity) AS returned, "
            "sum(r.amount_fen) AS reversed FROM accrual o JOIN accrual r ON r.reverses = o.source_id WHERE "
            + scope.format("o.")
            + " GROUP BY o.source_id HAVING -sum(r.quantity) > o.quantity "
            "OR (-sum(r.quantity) = o.quantity AND sum(r.amount_fen) <> -o.amount_fen) "
            "ORDER BY o.source_id LIMIT :limit"
        ),
        params,
    )
    problems += [
        Problem(
            "return-mismatch",
            row.statement_id or "",
            row.source_id,
            f"sold {row.quantity} for {row.amount_fen} fen; returned {row.returned} for {row.reversed} fen",
        )
        for row in rows
    ]
    # Journal lines kept because they could not accrue.
    rows = await session.execute(
        text(
            "SELECT u.source_id, u.status, u.original_sale_id, u.sku, u.quantity, u.detail FROM unmatched_line u "
            "WHERE CAST(:supplier AS text) IS NULL OR EXISTS (SELECT 1 FROM contract_item i JOIN contract c "
            "USING (contract_id) WHERE i.sku = u.sku AND c.supplier_id = :supplier) "
            "ORDER BY u.recorded_at, u.source_id LIMIT :limit"
        ),
        params,
    )
    kinds = {"waiting": "return-original-unknown", "excess": "return-exceeds-sale", "invalid": "journal-line-invalid"}
    problems += [
        Problem(
            kinds[row.status],
            "",
            row.source_id,
            row.detail or f"{row.sku} × {row.quantity}, original sale {row.original_sale_id or '-'}",
        )
        for row in rows
    ]
    return int(counts.accruals), int(counts.statements), int(counts.open), problems[:limit]


# ---- supplier sales ----------------------------------------------------------------------------------------------


async def supplier_exists(session: AsyncSession, supplier_id: str) -> bool:
    found = await session.execute(text("SELECT 1 FROM supplier WHERE supplier_id = :id"), {"id": supplier_id})
    return found.first() is not None


@dataclass(frozen=True, slots=True)
class StoreSkuSales:
    store_id: str
    sku: str
    quantity: Decimal
    revenue_fen: int
    selling_days: int


async def supplier_sales(
    session: AsyncSession, supplier_id: str, first: date, last: date, store_id: str | None
) -> list[StoreSkuSales]:
    """The supplier's SKUs (the catalogue's and its contracts') sold per store and SKU, net of returns."""
    rows = await session.execute(
        text(
            "WITH skus AS (SELECT sku FROM catalogue_item WHERE supplier_id = :supplier UNION "
            "SELECT i.sku FROM contract_item i JOIN contract c USING (contract_id) WHERE c.supplier_id = :supplier) "
            "SELECT d.store_id, d.sku, sum(d.sold - d.returned) AS quantity, "
            "sum(d.sold_fen - d.returned_fen) AS revenue, count(*) FILTER (WHERE d.sold > 0) AS days "
            "FROM sales_day d JOIN skus USING (sku) WHERE d.business_day BETWEEN :first AND :last "
            "AND (CAST(:store AS text) IS NULL OR d.store_id = :store) GROUP BY d.store_id, d.sku "
            "ORDER BY d.store_id, d.sku"
        ),
        {"supplier": supplier_id, "first": first, "last": last, "store": store_id},
    )
    return [StoreSkuSales(row.store_id, row.sku, row.quantity, int(row.revenue), int(row.days)) for row in rows]
