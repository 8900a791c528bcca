"""Goods receipts, returns to vendor and supplier invoices in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class ReceiptLineRow:
    line_number: int
    po_line_number: int  # 0 without a purchase order
    sku: str
    contract_id: str
    unit_cost_fen: int
    accepted: Decimal
    rejected: Decimal
    reject_reason: str = ""
    lot: str = ""
    expiry_date: date | None = None


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    receipt_id: str
    po_id: str | None
    supplier_id: str
    location_id: str
    received_at: datetime
    received_by: str
    lines: tuple[ReceiptLineRow, ...]


async def insert_receipt(session: AsyncSession, receipt: StoredReceipt, at: datetime) -> None:
    await session.execute(
        text(
            "INSERT INTO goods_receipt (receipt_id, po_id, supplier_id, location_id, received_at, received_by, "
            "recorded_at) VALUES (:id, :po, :supplier, :location, :received_at, :by, :at)"
        ),
        {
            "id": receipt.receipt_id,
            "po": receipt.po_id,
            "supplier": receipt.supplier_id,
            "location": receipt.location_id,
            "received_at": receipt.received_at,
            "by": receipt.received_by,
            "at": at,
        },
    )
    await session.execute(
        text(
            "INSERT INTO receipt_line (receipt_id, line_number, po_line_number, sku, contract_id, unit_cost_fen, "
            "accepted, rejected, reject_reason, lot, expiry_date) VALUES (:id, :n, :po_line, :sku, :contract, :cost, "
            ":accepted, :rejected, :reason, :lot, :expiry)"
        ),
        [
            {
                "id": receipt.receipt_id,
                "n": line.line_number,
                "po_line": line.po_line_number,
                "sku": line.sku,
                "contract": line.contract_id,
                "cost": line.unit_cost_fen,
                "accepted": line.accepted,
                "rejected": line.rejected,
                "reason": line.reject_reason,
                "lot": line.lot,
                "expiry": line.expiry_date,
            }
            for line in receipt.lines
        ],
    )


_RECEIPT_COLUMNS = "receipt_id, po_id, supplier_id, location_id, received_at, received_by"


async def _assemble(session: AsyncSession, rows: Sequence[Any]) -> list[StoredReceipt]:
    if not rows:
        return []
    lines: dict[str, list[ReceiptLineRow]] = {}
    for row in await session.execute(
        text(
            "SELECT receipt_id, line_number, po_line_number, sku, contract_id, unit_cost_fen, accepted, rejected, "
            "reject_reason, lot, expiry_date FROM receipt_line WHERE receipt_id = ANY (CAST(:ids AS text[])) "
            "ORDER BY receipt_id, line_number"
        ),
        {"ids": [row.receipt_id for row in rows]},
    ):
        lines.setdefault(row.receipt_id, []).append(
            ReceiptLineRow(
                row.line_number,
                row.po_line_number,
                row.sku,
                row.contract_id,
                row.unit_cost_fen,
                row.accepted,
                row.rejected,
                row.reject_reason,
                row.lot,
                row.expiry_date,
            )
        )
    return [
        StoredReceipt(
            row.receipt_id,
            row.po_id,
            row.supplier_id,
            row.location_id,
            row.received_at,
            row.received_by,
            tuple(lines.get(row.receipt_id, ())),
        )
        for row in rows
    ]


async def get_receipt(session: AsyncSession, receipt_id: str) -> StoredReceipt | None:
    rows = (
        await session.execute(
            text(f"SELECT {_RECEIPT_COLUMNS} FROM goods_receipt WHERE receipt_id = :id"), {"id": receipt_id}
        )
    ).all()
    found = await _assemble(session, rows)
    return found[0] if found else None


async def list_receipts(
    session: AsyncSession,
    *,
    supplier_id: str | None,
    po_id: str | None,
    location_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[StoredReceipt]:
    """Newest first."""
    rows = (
        await session.execute(
            text(
                f"SELECT {_RECEIPT_COLUMNS} FROM goods_receipt WHERE "
                "(CAST(:supplier AS text) IS NULL OR supplier_id = :supplier) "
                "AND (CAST(:po AS text) IS NULL OR po_id = :po) "
                "AND (CAST(:location AS text) IS NULL OR location_id = :location) "
                "AND (CAST(:after_at AS timestamptz) IS NULL OR (received_at, receipt_id) < (:after_at, :after_id)) "
                "ORDER BY received_at DESC, receipt_id DESC LIMIT :limit"
            ),
            {
                "supplier": supplier_id,
                "po": po_id,
                "location": location_id,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else "",
                "limit": limit,
            },
        )
    ).all()
    return await _assemble(session, rows)


# ---- returns to vendor ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReturnLineRow:
    line_number: int
    po_line_number: int
    sku: str
    contract_id: str
    unit_cost_fen: int
    quantity: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class StoredReturn:
    return_id: str
    po_id: str
    supplier_id: str
    location_id: str
    returned_at: datetime
    returned_by: str
    lines: tuple[ReturnLineRow, ...]


async def insert_return(session: AsyncSession, returned: StoredReturn) -> None:
    return_id, lines = returned.return_id, returned.lines
    await session.execute(
        text(
            "INSERT INTO vendor_return (return_id, po_id, supplier_id, location_id, returned_at, returned_by) "
            "VALUES (:id, :po, :supplier, :location, :at, :by)"
        ),
        {
            "id": return_id,
            "po": returned.po_id,
            "supplier": returned.supplier_id,
            "location": returned.location_id,
            "at": returned.returned_at,
            "by": returned.returned_by,
        },
    )
    await session.execute(
        text(
            "INSERT INTO vendor_return_line (return_id, line_number, po_line_number, sku, contract_id, unit_cost_fen, "
            "quantity, reason) VALUES (:id, :n, :po_line, :sku, :contract, :cost, :quantity, :reason)"
        ),
        [
            {
                "id": return_id,
                "n": line.line_number,
                "po_line": line.po_line_number,
                "sku": line.sku,
                "contract": line.contract_id,
                "cost": line.unit_cost_fen,
                "quantity": line.quantity,
                "reason": line.reason,
            }
            for line in lines
        ],
    )


# ---- supplier invoices ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvoiceLineRow:
    line_number: int
    po_line_number: int
    quantity: Decimal
    unit_cost_fen: int
    match_result: str
    expected_fen: int


async def invoice_number_taken(session: AsyncSession, supplier_id: str, invoice_number: str) -> bool:
    row = await session.execute(
        text("SELECT 1 FROM supplier_invoice WHERE supplier_id = :supplier AND invoice_number = :number"),
        {"supplier": supplier_id, "number": invoice_number},
    )
    return row.first() is not None


async def insert_invoice(
    session: AsyncSession,
    *,
    invoice_id: str,
    supplier_id: str,
    invoice_number: str,
    po_id: str,
    matched: bool,
    by: str,
    at: datetime,
    lines: Sequence[InvoiceLineRow],
) -> None:
    await session.execute(
        text(
            "INSERT INTO supplier_invoice (invoice_id, supplier_id, invoice_number, po_id, matched, recorded_by, "
            "recorded_at) VALUES (:id, :supplier, :number, :po, :matched, :by, :at)"
        ),
        {
            "id": invoice_id,
            "supplier": supplier_id,
            "number": invoice_number,
            "po": po_id,
            "matched": matched,
            "by": by,
            "at": at,
        },
    )
    await session.execute(
        text(
            "INSERT INTO invoice_line (invoice_id, line_number, po_line_number, quantity, unit_cost_fen, match_result, "
            "expected_fen) VALUES (:id, :n, :po_line, :quantity, :cost, :result, :expected)"
        ),
        [
            {
                "id": invoice_id,
                "n": line.line_number,
                "po_line": line.po_line_number,
                "quantity": line.quantity,
                "cost": line.unit_cost_fen,
                "result": line.match_result,
                "expected": line.expected_fen,
            }
            for line in lines
        ],
    )


# ---- scorecards ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueLineRow:
    ordered: Decimal
    accepted: Decimal
    rejected: Decimal
    confirmed_at: datetime | None
    promised_date: date
    last_arrival_at: datetime | None
    fully_delivered_at: datetime | None


async def lines_due(session: AsyncSession, supplier_id: str, first: date, last: date) -> list[DueLineRow]:
    """The supplier's order lines promised within [first, last] on orders sent to it (not drafts,
    approvals nobody sent, or cancelled orders)."""
    rows = await session.execute(
        text(
            "SELECT l.ordered, l.accepted, l.rejected, o.confirmed_at, o.promised_date, l.last_arrival_at, "
            "l.fully_delivered_at FROM purchase_order o JOIN po_line l USING (po_id) "
            "WHERE o.supplier_id = :supplier AND o.promised_date BETWEEN :first AND :last "
            "AND o.status IN ('sent', 'confirmed', 'partially_received', 'received', 'closed')"
        ),
        {"supplier": supplier_id, "first": first, "last": last},
    )
    return [
        DueLineRow(
            row.ordered,
            row.accepted,
            row.rejected,
            row.confirmed_at,
            row.promised_date,
            row.last_arrival_at,
            row.fully_delivered_at,
        )
        for row in rows
    ]


async def invoice_lines_between(
    session: AsyncSession, supplier_id: str, since: datetime, until: datetime
) -> tuple[int, int]:
    """(invoice lines, of which matched) of the supplier's invoices recorded in [since, until)."""
    row = (
        await session.execute(
            text(
                "SELECT count(*) AS lines, count(*) FILTER (WHERE l.match_result = 'matched') AS matched "
                "FROM supplier_invoice i JOIN invoice_line l USING (invoice_id) "
                "WHERE i.supplier_id = :supplier AND i.recorded_at >= :since AND i.recorded_at < :until"
            ),
            {"supplier": supplier_id, "since": since, "until": until},
        )
    ).one()
    return int(row.lines), int(row.matched)
