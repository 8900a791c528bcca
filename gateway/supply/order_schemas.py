"""The supply HTTP models of purchase orders, returns to vendors, goods receipts and supplier invoices (see
:mod:`gateway.supply.schemas` for money and quantities on the wire).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from gateway.http.integer_types import Int32, Int64
from gateway.http.schemas import Strict
from gateway.supply.schemas import MAX_LINES, Amount, Fen, Identifier, Quantity

PurchaseOrderStatusName = Literal[
    "draft", "approved", "sent", "confirmed", "partially_received", "received", "closed", "cancelled"
]


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
