"""Settlement's accruals: written once each as facts arrive, with the journal projection they come from.

A SALES journal entry is noted by sale id (``journal_sale``), adds its lines to the store × SKU ×
day totals (``sales_day``) and accrues on the consignment or concession contract of each SKU;
what cannot accrue yet is kept (``unmatched_line``). Receipts and returns to vendor accrue on
their purchase contracts. Writes are set-based: one statement per entry (arrays unnested),
never a query per line. Statements read these accruals: see
:mod:`~services.supply.adapters.statement_store`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.supply.domain.contracts import Contract, SettlementMode
from services.supply.domain.settlement import Accrual, AccrualKind

SALES_MODES = [SettlementMode.CONSIGNMENT.value, SettlementMode.CONCESSION.value]


# ---- contracts an accrual is made on -----------------------------------------------------------------------------


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


# A line's contract, as :func:`_contract` reads it.
_LINE_CONTRACT = (
    "c.contract_id, c.supplier_id, c.mode, c.valid_from, c.valid_until, c.commission_rate, c.store_commission_rates, "
    "c.rejects_billed"
)


async def receipt_lines(session: AsyncSession, receipt_id: str) -> tuple[str, list[PurchaseLine]]:
    """A goods receipt's lines under purchase contracts, and its location."""
    return await _purchase_lines(
        session,
        "SELECT r.location_id, l.line_number, l.sku, l.accepted, l.rejected, l.unit_cost_fen, "
        f"{_LINE_CONTRACT} FROM goods_receipt r JOIN receipt_line l USING (receipt_id) "
        "JOIN contract c ON c.contract_id = l.contract_id "
        "WHERE r.receipt_id = :id AND c.mode = 'purchase' ORDER BY l.line_number",
        receipt_id,
    )


async def vendor_return_lines(session: AsyncSession, return_id: str) -> tuple[str, list[PurchaseLine]]:
    """A return to vendor's lines under purchase contracts (what went back counts as accepted, to be
    credited), and the location the goods left."""
    return await _purchase_lines(
        session,
        "SELECT r.location_id, l.line_number, l.sku, l.quantity AS accepted, 0::numeric AS rejected, l.unit_cost_fen, "
        f"{_LINE_CONTRACT} FROM vendor_return r JOIN vendor_return_line l USING (return_id) "
        "JOIN contract c ON c.contract_id = l.contract_id "
        "WHERE r.return_id = :id AND c.mode = 'purchase' ORDER BY l.line_number",
        return_id,
    )


async def _purchase_lines(session: AsyncSession, query: str, document_id: str) -> tuple[str, list[PurchaseLine]]:
    rows = (await session.execute(text(query), {"id": document_id})).all()
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


async def contract_supplier(session: AsyncSession, contract_id: str) -> str | None:
    row = (
        await session.execute(text("SELECT supplier_id FROM contract WHERE contract_id = :id"), {"id": contract_id})
    ).first()
    return None if row is None else str(row.supplier_id)


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


def accrual_from_row(row: Any) -> Accrual:
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
    return [SoldLine(accrual_from_row(row), Decimal(row.returned), int(row.reversed)) for row in rows]


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
                + ") SELECT (SELECT count(*) FROM noted) AS noted, i.sku, i.unit_cost_fen, "
                + _LINE_CONTRACT
                + " FROM (SELECT 1) AS one LEFT JOIN (contract_item i JOIN contract c USING "
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
