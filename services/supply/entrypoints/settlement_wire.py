"""Protobuf ↔ settlement: journal entries in, statements, lines and exports out.

Exports (``ExportStatement``) are for the finance system, in two formats with the same content:

* **CSV** (``text/csv; charset=utf-8``): a header row, one row per line by date then source,
  and a last row whose ``kind`` is ``total``; money twice, as integer fen (``amount_fen``)
  and as a yuan string with two decimals (``amount_yuan``, e.g. ``-12.35``).
* **JSON** (``application/json``): ``{"statement": {…, "total_fen", "total_yuan"}, "lines":
  [{…, "amount_fen", "amount_yuan"}, …]}``.

The total is the sum of the lines' fen in both, always.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any

from retail.sales.v1 import events_pb2 as sales_pb2
from retail.supply.v1 import supply_service_pb2 as pb

from servicekit.errors import InvalidArgument
from servicekit.protowire import optional, timestamp
from services.supply.adapters.integration_events import CURRENCY, decimal_text, money, wire_decimal
from services.supply.adapters.settlement_events import STATEMENT_STATUSES
from services.supply.adapters.settlement_reports import StoreSkuSales
from services.supply.adapters.statement_store import LineRow, StatementRow
from services.supply.domain.settlement import Accrual, AccrualKind
from services.supply.domain.statements import StatementStatus, yuan
from services.supply.entrypoints.wire import MODES_TO_WIRE
from services.supply.service_layer.accruals import JournalEntry, JournalLine

STATUSES_FROM_WIRE = {number: status for status, number in STATEMENT_STATUSES.items()}
KINDS = {
    AccrualKind.RECEIPT: pb.ACCRUAL_KIND_RECEIPT,
    AccrualKind.RETURN_TO_VENDOR: pb.ACCRUAL_KIND_RETURN_TO_VENDOR,
    AccrualKind.SALE: pb.ACCRUAL_KIND_SALE,
    AccrualKind.CUSTOMER_RETURN: pb.ACCRUAL_KIND_CUSTOMER_RETURN,
    AccrualKind.FEE: pb.ACCRUAL_KIND_FEE,
    AccrualKind.QUALITY_DEDUCTION: pb.ACCRUAL_KIND_QUALITY_DEDUCTION,
    AccrualKind.REBATE: pb.ACCRUAL_KIND_REBATE,
}
MAX_QUANTITY = Decimal(10) ** 11


def _quantity(text: str) -> Decimal:
    """A journal line's quantity; unreadable is 0 (kept as an unusable line, never retried for ever)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return Decimal(0)
    return value if value.is_finite() else Decimal(0)


def map_journal_entry(message: sales_pb2.SaleRecorded) -> JournalEntry:
    stamp = message.occurred_at if message.HasField("occurred_at") else message.recorded_at
    return JournalEntry(
        sale_id=message.sale_id,
        is_return=message.kind == sales_pb2.SALE_KIND_RETURN,
        store_id=message.location_id,
        occurred_at=stamp.ToDatetime(tzinfo=UTC),
        lines=tuple(
            JournalLine(line.line_number, line.sku, _quantity(line.quantity.value), line.line_total.minor_units)
            for line in message.lines
        ),
        original_sale_id=message.original_sale_id,
    )


def map_statement_statuses(values: Any) -> list[StatementStatus]:
    statuses = []
    for value in values:
        if value not in STATUSES_FROM_WIRE:
            raise InvalidArgument("statuses names known statement states", details={"field": "statuses"})
        statuses.append(STATUSES_FROM_WIRE[value])
    return statuses


def map_statement(row: StatementRow) -> pb.Statement:
    return pb.Statement(
        statement_id=row.statement_id,
        supplier_id=row.supplier_id,
        contract_id=row.contract_id,
        mode=MODES_TO_WIRE[row.mode],
        period_start=row.period_start.isoformat(),
        period_end=row.period_end.isoformat(),
        status=STATEMENT_STATUSES[row.status],
        total=money(row.total_fen),
        line_count=row.line_count,
        late_line_count=row.late_line_count,
        payment_reference=row.payment_reference,
        version=row.version,
        issued_at=optional(timestamp, row.issued_at),
    )


def map_accrual(accrual: Accrual, *, late: bool = False, comment: str = "") -> pb.StatementLine:
    line = pb.StatementLine(
        source_id=accrual.source_id,
        kind=KINDS[accrual.kind],
        occurred_on=accrual.occurred_on.isoformat(),
        amount=money(accrual.amount_fen),
        sku=accrual.sku,
        store_id=accrual.store_id,
        reverses=accrual.reverses,
        late=late,
        dispute_comment=comment,
    )
    if accrual.quantity:
        line.quantity.value = decimal_text(accrual.quantity)
    if accrual.base_fen and accrual.kind in (AccrualKind.SALE, AccrualKind.CUSTOMER_RETURN):
        line.base.CopyFrom(money(accrual.base_fen))
    if accrual.unit_cost_fen:
        line.unit_cost.CopyFrom(money(accrual.unit_cost_fen))
    if accrual.commission_rate is not None:
        line.commission_rate.value = decimal_text(accrual.commission_rate)
    return line


def map_line(row: LineRow) -> pb.StatementLine:
    return map_accrual(row.accrual, late=row.late, comment=row.dispute_comment)


def map_store_sku_sales(row: StoreSkuSales) -> pb.StoreSkuSales:
    return pb.StoreSkuSales(
        store_id=row.store_id,
        sku=row.sku,
        quantity=wire_decimal(row.quantity),
        revenue=money(row.revenue_fen),
        selling_days=row.selling_days,
    )


EXPORT_COLUMNS = (
    "statement_id",
    "supplier_id",
    "contract_id",
    "period_start",
    "period_end",
    "source_id",
    "kind",
    "occurred_on",
    "late",
    "sku",
    "store_id",
    "quantity",
    "unit_cost_fen",
    "base_fen",
    "commission_rate",
    "reverses",
    "description",
    "dispute_comment",
    "amount_fen",
    "amount_yuan",
)


def _line_fields(row: LineRow) -> dict[str, Any]:
    a = row.accrual
    return {
        "source_id": a.source_id,
        "kind": a.kind.value,
        "occurred_on": a.occurred_on.isoformat(),
        "late": row.late,
        "sku": a.sku,
        "store_id": a.store_id,
        "quantity": decimal_text(a.quantity),
        "unit_cost_fen": a.unit_cost_fen,
        "base_fen": a.base_fen,
        "commission_rate": decimal_text(a.commission_rate) if a.commission_rate is not None else "",
        "reverses": a.reverses,
        "description": row.description,
        "dispute_comment": row.dispute_comment,
        "amount_fen": a.amount_fen,
        "amount_yuan": yuan(a.amount_fen),
    }


def export_statement(statement: StatementRow, lines: list[LineRow], file_format: str) -> pb.ExportStatementResponse:
    total = sum(row.accrual.amount_fen for row in lines)
    base = f"statement-{statement.statement_id}"
    header = {
        "statement_id": statement.statement_id,
        "supplier_id": statement.supplier_id,
        "contract_id": statement.contract_id,
        "period_start": statement.period_start.isoformat(),
        "period_end": statement.period_end.isoformat(),
    }
    if file_format == "json":
        document = {
            "statement": {
                **header,
                "mode": statement.mode.value,
                "status": statement.status.value,
                "line_count": len(lines),
                "late_line_count": sum(1 for row in lines if row.late),
                "payment_reference": statement.payment_reference,
                "currency": CURRENCY,
                "total_fen": total,
                "total_yuan": yuan(total),
            },
            "lines": [_line_fields(row) for row in lines],
        }
        content = json.dumps(document, ensure_ascii=False, indent=1).encode()
        return pb.ExportStatementResponse(content_type="application/json", content=content, file_name=f"{base}.json")
    if file_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for row in lines:
            writer.writerow({**header, **_line_fields(row)})
        writer.writerow({**header, "kind": "total", "amount_fen": total, "amount_yuan": yuan(total)})
        return pb.ExportStatementResponse(
            content_type="text/csv; charset=utf-8", content=buffer.getvalue().encode(), file_name=f"{base}.csv"
        )
    raise InvalidArgument("format is csv or json", details={"field": "format"})
