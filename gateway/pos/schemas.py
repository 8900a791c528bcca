"""The pos HTTP models: what a request carries and what an answer holds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.domain import sales as rules
from gateway.http import problems
from gateway.http.schemas import Strict

MAX_LINES_PER_SALE = 500
STORE_TIMEZONE = "Asia/Shanghai"
CURRENCY = "CNY"
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_STORE_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_DECIMAL = r"^-?[0-9]{1,12}(\.[0-9]{1,12})?$"


class SaleLineIn(Strict):
    """One SKU on the receipt."""

    sku: str = Field(pattern=_ID, description="the SKU code", examples=["SKU00030"])
    quantity: str = Field(
        pattern=_DECIMAL,
        description="units, or kilograms (up to 3 decimals) for goods sold by weight; positive",
        examples=["2", "0.455"],
    )
    unit_price: str = Field(
        pattern=_DECIMAL,
        description="price per unit before discounts, yuan with at most 2 decimals",
        examples=["12.50"],
    )
    discount: str = Field(
        default="0", pattern=_DECIMAL, description="discount on this line, positive amount in yuan", examples=["1.00"]
    )


class MemberIn(Strict):
    """How the customer identified as a member. Phone and card numbers never reach the journal
    in clear: they travel as a keyed hash the member service can look up."""

    type: Literal["phone", "pos_card", "member_id"]
    value: str = Field(min_length=1, max_length=64, examples=["13800138000"])


class PaymentIn(Strict):
    """One tender."""

    method: Literal["cash", "wechat_pay", "alipay", "bank_card", "stored_value", "points"]
    amount: str = Field(pattern=_DECIMAL, description="yuan, at most 2 decimals", examples=["24.00"])
    reference: str | None = Field(default=None, max_length=128, description="the payment provider's reference")


class SaleIn(Strict):
    """One sale or return as the till recorded it."""

    sale_id: str = Field(
        pattern=_ID,
        description="chosen by the terminal, unique across the chain, the same on every retry",
        examples=["S001-POS01-20261124-000042"],
    )
    kind: Literal["sale", "return"] = Field(default="sale", description="a return references its original sale")
    store_id: str = Field(pattern=_STORE_ID, description="must be the terminal's own store", examples=["S001"])
    occurred_at: AwareDatetime = Field(
        description="when it happened at the till, with its UTC offset; may be hours or days old after an offline "
        "spell, but not older than the sale max age (by default the journal's retention, 90 days) nor more than "
        "the tolerance ahead of the server clock",
        examples=["2026-11-24T09:30:00+08:00"],
    )
    lines: list[SaleLineIn] = Field(min_length=1, max_length=MAX_LINES_PER_SALE)
    member: MemberIn | None = None
    coupon_codes: list[Annotated[str, Field(pattern=_ID)]] = Field(default_factory=list, max_length=20)
    payments: list[PaymentIn] = Field(default_factory=list, max_length=20)
    original_sale_id: str | None = Field(
        default=None, pattern=_ID, description="for a return: the sale it reverses (must be in the journal)"
    )


class SalesBatch(Strict):
    """Up to 500 sales, in the order the till recorded them."""

    sales: list[SaleIn] = Field(min_length=1, max_length=rules.MAX_SALES_PER_BATCH)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "sales": [
                        {
                            "sale_id": "S001-POS01-20261124-000042",
                            "kind": "sale",
                            "store_id": "S001",
                            "occurred_at": "2026-11-24T09:30:00+08:00",
                            "lines": [
                                {"sku": "SKU00030", "quantity": "0.455", "unit_price": "45.90", "discount": "0.88"}
                            ],
                            "member": {"type": "phone", "value": "13800138000"},
                            "payments": [{"method": "wechat_pay", "amount": "20.00"}],
                        }
                    ]
                }
            ]
        },
    )


class SaleProblem(BaseModel):
    """Why one sale was rejected, in the shape of a problem document."""

    type: str = Field(examples=[problems.PROBLEM_BASE_URI + "sale-rejected"])
    title: str
    detail: str
    reason: str = Field(
        description="stable machine-readable reason: store-mismatch, occurred-in-future, occurred-too-long-ago, "
        "non-positive-quantity, invalid-quantity, invalid-amount, unknown-original-sale, original-only-for-returns, "
        "payments-do-not-add-up",
        examples=["store-mismatch"],
    )
    location: str = Field(description="the part of the sale at fault, e.g. 'lines.0.quantity'")


class SaleResult(BaseModel):
    sale_id: str
    status: Literal["accepted", "duplicate", "rejected"] = Field(
        description="accepted: now in the journal; duplicate: it already was (nothing changed); "
        "rejected: not journaled, see problem"
    )
    problem: SaleProblem | None = None


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[SaleResult] = Field(description="one per submitted sale, in the order submitted")


class DatasetVersion(BaseModel):
    version: str | None = Field(
        description="the dataset's current version, to compare with the cached one; null while unavailable",
        examples=["42"],
    )
    available: bool = Field(description="whether the owning service answered for this dataset")
    note: str | None = Field(default=None, description="why it is unavailable, or how to fetch what changed")


class StoreConfiguration(BaseModel):
    store_id: str
    terminal_id: str | None
    timezone: str = Field(examples=[STORE_TIMEZONE])
    currency: str = Field(examples=[CURRENCY])
    max_sales_per_batch: int
    sale_future_tolerance_seconds: float


class SyncState(BaseModel):
    server_time: datetime = Field(description="the server clock (UTC); tills correct their clock drift with it")
    store: StoreConfiguration
    datasets: dict[str, DatasetVersion] = Field(
        description="each dataset the terminal caches, by name (price_book, catalogue)"
    )
