"""The supply HTTP models of suppliers, their contracts and fees, scorecards and sell-through (see
:mod:`gateway.supply.schemas` for money and quantities on the wire).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from gateway.http.integer_types import Int32, Int64
from gateway.http.schemas import Strict
from gateway.supply.schemas import MAX_LINES, Amount, Fen, Identifier, Quantity, Rate

SettlementModeName = Literal["purchase", "consignment", "concession"]


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
