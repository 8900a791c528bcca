"""The supply HTTP models: suppliers, contracts, purchase orders, receipts, invoices, statements.

Money is integer fen on the wire, as the supply service keeps it: every amount a request
carries is a ``*_fen`` integer, and every amount an answer holds is a ``*_fen`` integer
beside the same amount as a yuan string (``"12.34"``, for people). Amounts are rounded once,
per line, half up (ordered value = quantity × unit cost per line; a concession line =
revenue × (1 − commission rate)); a total is the sum of its lines' fen and never rounded
again. Quantities are decimal strings (units, or kg to the gram); rates are decimal strings
from 0 to 1 (``"0.25"`` is 25%). Dates are ``YYYY-MM-DD`` in the chain's business time zone.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, Field, model_validator

from gateway.http.integer_types import Int32, Int64
from gateway.http.schemas import Strict

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
QUANTITY_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,3})?$"
RATE_PATTERN = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$"
MAX_LINES = 1_000

SupplierId = Annotated[str, Path(pattern=ID_PATTERN, description="the supplier, e.g. SUP001")]
ContractId = Annotated[str, Path(pattern=ID_PATTERN, description="the contract")]
PoId = Annotated[str, Path(pattern=ID_PATTERN, description="the purchase order")]
StatementId = Annotated[str, Path(pattern=ID_PATTERN, description="the statement")]

Quantity = Annotated[
    str, Field(pattern=QUANTITY_PATTERN, description="units, or kg with up to 3 decimals", examples=["24"])
]
Rate = Annotated[str, Field(pattern=RATE_PATTERN, description="a share from 0 to 1, e.g. 0.25 for 25%")]
Fen = Annotated[Int64, Field(ge=0, le=10**15, description="whole fen (1 yuan = 100 fen), never negative")]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]

PurchaseOrderStatusName = Literal[
    "draft", "approved", "sent", "confirmed", "partially_received", "received", "closed", "cancelled"
]
StatementStatusName = Literal["draft", "issued", "confirmed", "disputed", "approved", "paid"]
SettlementModeName = Literal["purchase", "consignment", "concession"]
ExportFormat = Literal["csv", "json"]


class Amount(BaseModel):
    """An amount of money: whole fen, and the same as yuan for display."""

    fen: Int64 = Field(description="signed whole fen", examples=[123456])
    yuan: str = Field(description="the same amount in yuan, two decimals", examples=["1234.56"])


# -- suppliers and contracts --------------------------------------------------------------


class SupplierIn(Strict):
    supplier_id: Identifier = Field(examples=["SUP001"])
    code: str = Field(min_length=1, max_length=32, examples=["GY-DAIRY"])
    name: str = Field(min_length=1, max_length=200, examples=["光明乳业"])
    payment_terms_days: Int32 = Field(default=30, ge=0, le=365, description="days after approval (月结 30 is 30)")
    active: bool = True


class SupplierChangeIn(Strict):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    payment_terms_days: Int32 = Field(ge=0, le=365)
    active: bool
    version: Int64 = Field(ge=1, description="the version being changed (409 when it moved on)")


class SupplierOut(BaseModel):
    supplier_id: str
    code: str
    name: str
    payment_terms_days: int
    active: bool
    version: Int64


class SupplierPage(BaseModel):
    suppliers: list[SupplierOut]
    next_page_token: str | None = None


class ContractItemIn(Strict):
    sku: Identifier
    unit_cost_fen: Fen | None = Field(default=None, description="agreed cost per unit (purchase and consignment)")
    pack_size: Quantity | None = Field(default=None, description="orders round up to whole packs (1 by default)")
    minimum_order: Quantity | None = Field(default=None, description="least quantity per order line")


class ContractItemOut(BaseModel):
    sku: str
    unit_cost: Amount | None = None
    pack_size: str
    minimum_order: str


class RebateTierIn(Strict):
    threshold_fen: Fen = Field(description="the period's purchases from which the rate applies")
    rate: Rate


class RebateTierOut(BaseModel):
    threshold: Amount
    rate: str


class QualityBandIn(Strict):
    score_below: str = Field(pattern=r"^[0-9]{1,2}(\.[0-9]{1,2})?$|^100(\.0{1,2})?$", description="0 to 100")
    rate: Rate


class QualityBandOut(BaseModel):
    score_below: str
    rate: str


class ContractIn(Strict):
    mode: SettlementModeName = Field(
        description="purchase (经销: received × cost), consignment (代销: sold × cost) or concession "
        "(联营: revenue × (1 − commission rate))"
    )
    valid_from: date
    valid_until: date | None = Field(default=None, description="first day it no longer applies; none: open-ended")
    items: list[ContractItemIn] = Field(min_length=1, max_length=MAX_LINES)
    commission_rate: Rate | None = Field(default=None, description="concession: the chain-wide commission")
    store_commission_rates: dict[Identifier, Rate] = Field(
        default_factory=dict, max_length=2_000, description="concession: a store's commission where it differs"
    )
    allows_direct_delivery: bool = False
    rejects_billed: bool = False
    over_delivery_allowance: Rate | None = Field(default=None, description="share over the ordered quantity")
    price_tolerance: Rate | None = Field(default=None, description="share over the PO price an invoice may be")
    cycle: Literal["monthly", "days"] = "monthly"
    cycle_days: Int32 | None = Field(default=None, ge=1, le=366, description="with cycle days: period length")
    cycle_anchor: date | None = Field(default=None, description="with cycle days: a day on which a period starts")
    rebate_tiers: list[RebateTierIn] = Field(default_factory=list, max_length=20)
    quality_bands: list[QualityBandIn] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _cycle_days_with_days(self) -> ContractIn:
        if (self.cycle == "days") != (self.cycle_days is not None):
            raise ValueError("cycle_days goes with cycle days, and only with it")
        return self


class ContractOut(BaseModel):
    contract_id: str
    supplier_id: str
    mode: str
    valid_from: date
    valid_until: date | None = None
    items: list[ContractItemOut]
    commission_rate: str | None = None
    store_commission_rates: dict[str, str]
    allows_direct_delivery: bool
    rejects_billed: bool
    over_delivery_allowance: str | None = None
    price_tolerance: str | None = None
    cycle: str
    cycle_days: int | None = None
    cycle_anchor: date | None = None
    rebate_tiers: list[RebateTierOut]
    quality_bands: list[QualityBandOut]
    created_at: datetime | None = None


class ContractPage(BaseModel):
    contracts: list[ContractOut]
    next_page_token: str | None = None


class FeeIn(Strict):
    fee_kind: Literal["promotion", "slotting"]
    amount_fen: Annotated[Int64, Field(ge=1, le=10**15, description="the fee in fen (booked as a deduction)")]
    occurred_on: date
    description: str = Field(default="", max_length=500)


# -- purchase orders ----------------------------------------------------------------------


class OrderLineIn(Strict):
    sku: Identifier
    ordered: Quantity


class PurchaseOrderIn(Strict):
    supplier_id: Identifier
    location_id: Identifier = Field(description="the store or warehouse receiving the goods")
    lines: list[OrderLineIn] = Field(min_length=1, max_length=MAX_LINES)
    promised_date: date | None = Field(default=None, description="the date the goods are wanted")


class PurchaseOrderEdit(Strict):
    lines: list[OrderLineIn] = Field(min_length=1, max_length=MAX_LINES)
    promised_date: date | None = None
    expected_version: Int64 = Field(ge=1, description="the version being edited (409 when it moved on)")


class VersionIn(Strict):
    expected_version: Int64 = Field(ge=1, description="the version being approved (409 when it moved on)")


class CancelIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


class ConfirmedLineIn(Strict):
    line_number: Int32 = Field(ge=1)
    quantity: Quantity = Field(description="what will be delivered, 0 to the ordered quantity")


class ConfirmOrderIn(Strict):
    promised_date: date = Field(description="the date the supplier promises delivery")
    lines: list[ConfirmedLineIn] = Field(
        default_factory=list, max_length=MAX_LINES, description="lines not named are confirmed in full"
    )
    note: str = Field(default="", max_length=1_000)


class OrderLineOut(BaseModel):
    line_number: int
    sku: str
    ordered: str
    unit_cost: Amount
    confirmed: str | None = None
    accepted: str
    rejected: str
    returned: str
    suggested: str | None = None


class PurchaseOrderOut(BaseModel):
    po_id: str
    supplier_id: str
    location_id: str
    status: str
    lines: list[OrderLineOut]
    promised_date: date | None = None
    total: Amount = Field(description="Σ over lines of ordered × unit cost, each line rounded half up to the fen")
    suggestion_ids: list[str]
    created_by: str
    approved_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: Int64
    supplier_note: str | None = None


class PurchaseOrderPage(BaseModel):
    purchase_orders: list[PurchaseOrderOut]
    next_page_token: str | None = None


class ReturnLineIn(Strict):
    po_line_number: Int32 = Field(ge=1)
    quantity: Quantity
    reason: str = Field(min_length=1, max_length=500)


class VendorReturnIn(Strict):
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=MAX_LINES)


class VendorReturnOut(BaseModel):
    return_id: str
    purchase_order: PurchaseOrderOut


# -- goods receipts and invoices ----------------------------------------------------------


class ReceiptLineIn(Strict):
    po_line_number: Int32 = Field(default=0, ge=0, description="the order line (0 without a purchase order)")
    sku: Identifier
    accepted: Quantity
    rejected: Quantity = "0"
    reject_reason: str = Field(default="", max_length=500, description="required when rejected > 0")
    lot: str = Field(default="", max_length=64)
    expiry_date: date | None = None


class GoodsReceiptIn(Strict):
    po_id: Identifier | None = Field(default=None, description="none for a direct store delivery")
    supplier_id: Identifier | None = Field(default=None, description="required for a direct delivery")
    location_id: Identifier = Field(description="where the goods arrived (a store manager: their own store)")
    lines: list[ReceiptLineIn] = Field(min_length=1, max_length=MAX_LINES)
    received_at: datetime | None = Field(default=None, description="when they arrived; none for now")


class ReceiptLineOut(BaseModel):
    po_line_number: int
    sku: str
    accepted: str
    rejected: str
    reject_reason: str | None = None
    lot: str | None = None
    expiry_date: date | None = None


class GoodsReceiptOut(BaseModel):
    receipt_id: str
    po_id: str | None = None
    supplier_id: str
    location_id: str
    lines: list[ReceiptLineOut]
    received_at: datetime | None = None
    received_by: str


class RecordedReceiptOut(BaseModel):
    receipt: GoodsReceiptOut
    purchase_order: PurchaseOrderOut | None = None


class GoodsReceiptPage(BaseModel):
    receipts: list[GoodsReceiptOut]
    next_page_token: str | None = None


class InvoiceLineIn(Strict):
    po_line_number: Int32 = Field(ge=1)
    quantity: Quantity
    unit_cost_fen: Fen


class InvoiceIn(Strict):
    invoice_number: str = Field(min_length=1, max_length=64, examples=["INV-2026-0042"])
    supplier_id: Identifier
    po_id: Identifier
    lines: list[InvoiceLineIn] = Field(min_length=1, max_length=MAX_LINES)


class InvoiceLineOut(BaseModel):
    po_line_number: int
    quantity: str
    unit_cost: Amount
    match_result: str = Field(description="matched, quantity_above_received or price_above_order")
    expected: Amount = Field(description="what matching pays: PO price × billed quantity, half up")


class InvoiceOut(BaseModel):
    invoice_id: str
    lines: list[InvoiceLineOut]
    matched: bool = Field(description="every line matched; otherwise the invoice is held, not paid")


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


# -- scorecards and sell-through ----------------------------------------------------------


class ScorecardOut(BaseModel):
    """Ratios are decimals from 0 to 1, none when nothing was due (never a default score)."""

    supplier_id: str
    from_date: date
    to_date: date
    lines_due: Int64
    otif: str | None = Field(default=None, description="lines delivered in full by their promised date")
    fill_rate: str | None = Field(default=None, description="accepted ÷ ordered")
    reject_rate: str | None = Field(default=None, description="rejected ÷ delivered")
    quality_score: str | None = Field(default=None, description="100 × (1 − reject rate)")
    promised_lead_days: str | None = None
    actual_lead_days: str | None = None
    invoice_match_rate: str | None = None


class SellThroughRow(BaseModel):
    store_id: str
    sku: str
    sold: str = Field(description="quantity sold net of returns over the period (supply's SALES projection)")
    revenue: Amount
    selling_days: int
    stock: str = Field(description="on hand at the end of the period (inventory)")
    sell_through: str | None = Field(description="sold ÷ (sold + stock), 4 decimals; none when both are 0")
    days_of_cover: str | None = Field(description="stock ÷ (sold ÷ days in the period), 1 decimal; none unsold")


class SellThroughOut(BaseModel):
    supplier_id: str
    from_date: date
    to_date: date
    days: int
    rows: list[SellThroughRow]
