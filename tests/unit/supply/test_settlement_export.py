"""A statement exported for the finance system: CSV and JSON with the same lines, money in fen and in yuan."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest

from servicekit.errors import InvalidArgument
from services.supply.adapters.statement_store import LineRow, StatementRow
from services.supply.domain.contracts import SettlementMode
from services.supply.domain.settlement import Accrual, AccrualKind
from services.supply.domain.statements import StatementStatus
from services.supply.entrypoints.settlement_wire import EXPORT_COLUMNS, export_statement

STATEMENT = StatementRow(
    "ST-C1-20261101",
    "SUP1",
    "C1",
    SettlementMode.CONCESSION,
    date(2026, 11, 1),
    date(2026, 12, 1),
    StatementStatus.ISSUED,
    1_245,
    2,
    1,
    None,
    "",
    3,
)
LINES = [
    LineRow(
        Accrual(
            "sale:A:1",
            "SUP1",
            "C1",
            AccrualKind.SALE,
            date(2026, 10, 30),
            2_500,
            sku="K",
            store_id="S1",
            quantity=Decimal("2.000"),
            base_fen=3_333,
            commission_rate=Decimal("0.2500"),
        ),
        late=True,
        dispute_comment="",
        description="",
    ),
    LineRow(
        Accrual("fee:1", "SUP1", "C1", AccrualKind.FEE, date(2026, 11, 3), -1_255),
        late=False,
        dispute_comment="too high, 你好",
        description="slotting: end cap",
    ),
]


def test_csv_has_a_row_per_line_and_a_total_row() -> None:
    exported = export_statement(STATEMENT, LINES, "csv")
    assert exported.content_type == "text/csv; charset=utf-8"
    assert exported.file_name == "statement-ST-C1-20261101.csv"
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [(row["source_id"], row["amount_fen"], row["amount_yuan"], row["late"]) for row in rows] == [
        ("sale:A:1", "2500", "25.00", "True"),
        ("fee:1", "-1255", "-12.55", "False"),
        ("", "1245", "12.45", ""),
    ]
    assert rows[-1]["kind"] == "total"
    assert (rows[0]["quantity"], rows[0]["commission_rate"], rows[0]["base_fen"]) == ("2", "0.25", "3333")
    assert rows[1]["dispute_comment"] == "too high, 你好"


def test_json_has_the_same_lines_and_total() -> None:
    exported = export_statement(STATEMENT, LINES, "json")
    assert exported.content_type == "application/json"
    document = json.loads(exported.content)
    assert (document["statement"]["total_fen"], document["statement"]["total_yuan"]) == (1_245, "12.45")
    assert document["statement"]["late_line_count"] == 1
    assert [line["amount_yuan"] for line in document["lines"]] == ["25.00", "-12.55"]
    assert sum(line["amount_fen"] for line in document["lines"]) == document["statement"]["total_fen"]


def test_other_formats_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        export_statement(STATEMENT, LINES, "xlsx")
