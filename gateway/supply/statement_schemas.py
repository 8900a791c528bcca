"""The supply HTTP models of settlement statements, statement runs and the reconciliation check (see
:mod:`gateway.supply.schemas` for money and quantities on the wire).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from gateway.http.integer_types import Int64
from gateway.http.schemas import Strict
from gateway.supply.schemas import MAX_LINES, Amount, Identifier

StatementStatusName = Literal["draft", "issued", "confirmed", "disputed", "approved", "paid"]
ExportFormat = Literal["csv", "json"]


# -- statements ---------------------------------------------------------------------------


class StatementLineOut(BaseModel):
    source_id: str = Field(description="what it accrues, e.g. receipt:<id>:<line>, sale:<sale>:<line>, fee:<id>")
    kind: str
    occurred_on: date | None = None
    amount: Amount = Field(description="signed: positive is owed to the supplier; rounded half up per line")
    sku: str | None = None
    store_id: str | None = None
    quantity: str | None = None
    base: Amount | None = Field(default=None, description="concession: the revenue the line was paid from")
    unit_cost: Amount | None = None
    commission_rate: str | None = None
    reverses: str | None = None
    late: bool = Field(description="a fact of an already issued period, shown here with its own date")
    dispute_comment: str | None = None


class StatementOut(BaseModel):
    statement_id: str
    supplier_id: str
    contract_id: str
    mode: str
    period_start: date | None = None
    period_end: date | None = Field(default=None, description="first day after the period")
    status: str
    total: Amount = Field(description="the sum of its lines' fen, exactly")
    line_count: Int64
    late_line_count: Int64
    issued_at: datetime | None = None
    payment_reference: str | None = None
    version: Int64


class StatementPage(BaseModel):
    statements: list[StatementOut]
    next_page_token: str | None = None


class StatementLinesOut(BaseModel):
    statement: StatementOut
    lines: list[StatementLineOut]
    next_page_token: str | None = None


class DisputedLineIn(Strict):
    source_id: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=500)


class DisputeIn(Strict):
    lines: list[DisputedLineIn] = Field(min_length=1, max_length=MAX_LINES)


class StatementPaymentIn(Strict):
    payment_reference: str = Field(min_length=1, max_length=64)


class StatementRunIn(Strict):
    period_date: date = Field(description="a day in the period to draft (each contract's cycle decides the period)")
    supplier_id: Identifier | None = Field(default=None, description="only this supplier's contracts")


class StatementRunOut(BaseModel):
    statements: Int64
    lines: Int64
    total: Amount


class SettlementProblemOut(BaseModel):
    kind: str
    statement_id: str | None = None
    source_id: str | None = None
    detail: str


class SettlementCheckOut(BaseModel):
    consistent: bool
    accruals: Int64
    statements: Int64
    open_accruals: Int64
    problems: list[SettlementProblemOut]
