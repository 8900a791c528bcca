"""POS sync: sales (also replayed after an offline spell) into the journal, and start-up data.

Sales enter the ``SALES`` stream one by one: each valid sale is published and
acknowledged by JetStream before the batch is answered, and the answer says per sale
whether it was ``accepted``, a ``duplicate`` (already in the journal) or ``rejected``
(with a problem saying why). One bad sale never blocks the others. A batch whose body is
malformed (bad JSON, wrong types, unknown fields, too many sales) is refused as a whole
with a validation problem and nothing is journaled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from retail.common.v1 import money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pricing_pb2
from retail.pricing.v1 import pricing_service_pb2_grpc as pricing_pb2_grpc
from retail.sales.v1 import events_pb2

from gateway.adapters.sales_journal import JournalEntry, JournalUnavailable
from gateway.domain import sales as rules
from gateway.domain.scopes import POS_SALES_WRITE, POS_SYNC_READ
from gateway.http import problems
from gateway.http.resources import GatewayResources, Resources
from gateway.http.schemas import Strict
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from servicekit.protowire import timestamp

router = APIRouter(prefix="/v1/pos", tags=["pos"])
log = logging.getLogger("gateway.pos")

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


SALE_REJECTED = problems.ProblemType("sale-rejected", "The sale was rejected", 422)


@router.post(
    "/sales/batch",
    summary="Upload POS sales and returns to the sales journal",
    response_model=BatchResult,
    responses=problems.problem_responses(401, 403, 409, 429, 503),
)
async def upload_sales(
    batch: SalesBatch,
    idempotency: Annotated[IdempotentRequest, Depends(idempotent(POS_SALES_WRITE))],
    resources: Resources,
) -> Any:
    """**Scope:** `pos:sales:write` (POS terminals). **Header:** `Idempotency-Key` (required).

    Validates each sale and publishes every valid one to the sales journal; answers only
    after the journal has acknowledged each of them. Per sale the answer is `accepted`,
    `duplicate` (already journaled — safe to resend a batch after a lost answer or an
    offline spell) or `rejected` with a problem and a stable `reason`:

    - `store-mismatch`: the sale's `store_id` is not the terminal's store;
    - `occurred-in-future`: `occurred_at` lies beyond the clock tolerance ahead of the server;
    - `occurred-too-long-ago`: `occurred_at` lies further back than the sale max age (by
      default the journal's retention, 90 days);
    - `non-positive-quantity`, `invalid-quantity`, `invalid-amount`: quantities positive with
      at most 3 decimals and at most 100000 per line, amounts non-negative with at most 2
      decimals (yuan);
    - `unknown-original-sale`: a return whose `original_sale_id` is neither in the journal
      nor earlier in this batch; `original-only-for-returns`;
    - `payments-do-not-add-up`: payments given but not summing to the receipt total.

    The whole batch is refused (422, nothing journaled) when its JSON is malformed, has
    wrong types or unknown fields, or holds more than 500 sales. 503 when the journal did
    not acknowledge: resend the same batch (accepted sales then come back as duplicates).
    """
    principal = idempotency.principal

    async def effect() -> tuple[int, Any]:
        try:
            result = await ingest(batch.sales, principal, resources)
        except JournalUnavailable as exc:
            raise problems.ProblemError(
                problems.SERVICE_UNAVAILABLE,
                "the sales journal did not acknowledge every sale; resend the same batch",
                headers={"Retry-After": "2"},
            ) from exc
        return 200, result.model_dump(mode="json", exclude_none=True)

    return await idempotency.run(effect)


async def ingest(sales: Sequence[SaleIn], principal: Principal, resources: Resources) -> BatchResult:
    """Check each sale, journal the valid ones (sales before returns), and say what became of each."""
    settings = resources.settings
    if len(sales) > settings.max_sales_per_batch:
        raise problems.ProblemError(
            problems.VALIDATION_ERROR,
            f"at most {settings.max_sales_per_batch} sales per batch",
            extensions={"errors": [{"location": "body.sales", "message": "too many sales", "type": "too_long"}]},
        )
    now = datetime.now(UTC)
    tolerance = timedelta(seconds=settings.sale_future_tolerance_seconds)
    max_age = timedelta(seconds=settings.sale_max_age_seconds)
    candidate_ids = [sale.sale_id for sale in sales] + [s.original_sale_id for s in sales if s.original_sale_id]
    journaled = await resources.sales_journal.journaled(candidate_ids)
    results: dict[int, SaleResult] = {}
    entries: dict[int, JournalEntry] = {}
    seen: set[str] = set()
    for index, sale in enumerate(sales):
        if sale.sale_id in journaled or sale.sale_id in seen:
            results[index] = SaleResult(sale_id=sale.sale_id, status="duplicate")
            continue
        rejection = check_sale(sale, principal, now, tolerance, max_age, known_sales=journaled | seen)
        if rejection is not None:
            results[index] = SaleResult(
                sale_id=sale.sale_id,
                status="rejected",
                problem=SaleProblem(
                    type=SALE_REJECTED.uri,
                    title=SALE_REJECTED.title,
                    detail=rejection.detail,
                    reason=rejection.reason,
                    location=rejection.location,
                ),
            )
            continue
        seen.add(sale.sale_id)
        entries[index] = journal_entry(sale, principal, now, resources.settings.member_lookup_key.get_secret_value())
    # Sales first, then returns, so a return never enters the journal before its sale.
    for wave in ("sale", "return"):
        indexes = [index for index, entry in entries.items() if entry.kind == wave]
        fresh = await resources.sales_journal.publish([entries[index] for index in indexes])
        for index, new in zip(indexes, fresh, strict=True):
            results[index] = SaleResult(sale_id=entries[index].sale_id, status="accepted" if new else "duplicate")
    ordered = [results[index] for index in range(len(sales))]
    return BatchResult(
        accepted=sum(result.status == "accepted" for result in ordered),
        duplicates=sum(result.status == "duplicate" for result in ordered),
        rejected=sum(result.status == "rejected" for result in ordered),
        results=ordered,
    )


def check_sale(
    sale: SaleIn,
    principal: Principal,
    now: datetime,
    tolerance: timedelta,
    max_age: timedelta,
    *,
    known_sales: set[str],
) -> rules.SaleRejection | None:
    """The first rule the sale breaks, or None."""
    if principal.store_id is None or sale.store_id != principal.store_id:
        return rules.SaleRejection("store-mismatch", "this terminal may only submit sales of its own store", "store_id")
    misdated = rules.check_occurred_at(sale.occurred_at, now, tolerance, max_age)
    if misdated is not None:
        return misdated
    for number, line in enumerate(sale.lines):
        for problem in (
            rules.check_quantity(line.quantity, f"lines.{number}.quantity"),
            rules.check_money(line.unit_price, f"lines.{number}.unit_price"),
            rules.check_money(line.discount, f"lines.{number}.discount"),
        ):
            if problem is not None:
                return problem
    for number, payment in enumerate(sale.payments):
        problem = rules.check_money(payment.amount, f"payments.{number}.amount")
        if problem is not None:
            return problem
    if sale.kind == "return":
        if sale.original_sale_id is None or sale.original_sale_id not in known_sales:
            return rules.SaleRejection(
                "unknown-original-sale",
                "a return must reference a sale already in the journal (or earlier in this batch)",
                "original_sale_id",
            )
    elif sale.original_sale_id is not None:
        return rules.SaleRejection(
            "original-only-for-returns", "only a return references an original sale", "original_sale_id"
        )
    if sale.payments:
        paid = sum(rules.to_minor_units(Decimal(payment.amount)) for payment in sale.payments)
        if paid != sale_total_minor(sale):
            return rules.SaleRejection(
                "payments-do-not-add-up", "the payments do not add up to the sum of the line totals", "payments"
            )
    return None


def sale_total_minor(sale: SaleIn) -> int:
    return sum(
        rules.line_total_minor(Decimal(line.quantity), Decimal(line.unit_price), Decimal(line.discount))
        for line in sale.lines
    )


_PAYMENT_METHODS = {
    "cash": events_pb2.PAYMENT_METHOD_CASH,
    "wechat_pay": events_pb2.PAYMENT_METHOD_WECHAT_PAY,
    "alipay": events_pb2.PAYMENT_METHOD_ALIPAY,
    "bank_card": events_pb2.PAYMENT_METHOD_BANK_CARD,
    "stored_value": events_pb2.PAYMENT_METHOD_STORED_VALUE,
    "points": events_pb2.PAYMENT_METHOD_POINTS,
}


def map_sale_recorded(sale: SaleIn, principal: Principal, recorded_at: datetime, member_key: bytes) -> bytes:
    """The journal's SaleRecorded for a checked sale, serialised."""

    def money(minor_units: int) -> money_pb2.Money:
        return money_pb2.Money(currency_code=CURRENCY, minor_units=minor_units)

    lines = []
    for number, line in enumerate(sale.lines, start=1):
        quantity, unit_price, discount = Decimal(line.quantity), Decimal(line.unit_price), Decimal(line.discount)
        lines.append(
            events_pb2.SaleLine(
                line_number=number,
                sku=line.sku,
                quantity=money_pb2.Decimal(value=format(quantity.normalize(), "f")),
                unit_price=money(rules.to_minor_units(unit_price)),
                discount=money(rules.to_minor_units(discount)),
                line_total=money(rules.line_total_minor(quantity, unit_price, discount)),
            )
        )
    event = events_pb2.SaleRecorded(
        sale_id=sale.sale_id,
        kind=events_pb2.SALE_KIND_RETURN if sale.kind == "return" else events_pb2.SALE_KIND_SALE,
        location_id=sale.store_id,
        terminal_id=principal.terminal_id or "",
        channel=events_pb2.SALES_CHANNEL_STORE,
        occurred_at=timestamp(sale.occurred_at),
        recorded_at=timestamp(recorded_at),
        lines=lines,
        coupon_codes=sale.coupon_codes,
        payments=[
            events_pb2.Payment(
                method=_PAYMENT_METHODS[payment.method],
                amount=money(rules.to_minor_units(Decimal(payment.amount))),
                reference=payment.reference or "",
            )
            for payment in sale.payments
        ],
        original_sale_id=sale.original_sale_id or "",
        total=money(sale_total_minor(sale)),
        submitted_by=principal.client_id,
    )
    if sale.member is not None:
        if sale.member.type == "member_id":
            event.member.CopyFrom(
                events_pb2.MemberReference(
                    type=events_pb2.MEMBER_IDENTIFIER_TYPE_MEMBER_ID, member_id=sale.member.value
                )
            )
        else:
            kind = (
                events_pb2.MEMBER_IDENTIFIER_TYPE_PHONE
                if sale.member.type == "phone"
                else events_pb2.MEMBER_IDENTIFIER_TYPE_POS_CARD
            )
            event.member.CopyFrom(
                events_pb2.MemberReference(
                    type=kind, identity_hash=rules.member_identity_hash(member_key, sale.member.type, sale.member.value)
                )
            )
    return event.SerializeToString()


def journal_entry(sale: SaleIn, principal: Principal, recorded_at: datetime, member_key: str) -> JournalEntry:
    return JournalEntry(
        sale_id=sale.sale_id,
        kind=sale.kind,
        location_id=sale.store_id,
        submitted_by=principal.client_id,
        occurred_at=sale.occurred_at,
        payload=map_sale_recorded(sale, principal, recorded_at, member_key.encode()),
    )


# ---- start-up data --------------------------------------------------------------------------------


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


@router.get(
    "/sync",
    summary="What a terminal needs on start-up or after reconnecting",
    response_model=SyncState,
    responses=problems.problem_responses(401, 403, 429),
)
async def sync_state(
    principal: Annotated[Principal, Depends(require(POS_SYNC_READ))], resources: Resources
) -> SyncState:
    """**Scope:** `pos:sync:read` (POS terminals).

    Server time, the terminal's store configuration and the version of each dataset it
    caches, from the pricing service: `price_book` is the store's price-book version (the
    one in the price book's `ETag`), `catalogue` the highest item version listed in the
    store. When one moved past the cached copy, fetch what changed:
    `GET /v1/pos/price-book?since_version=<held>` and
    `GET /v1/items?store_id=<store>&since_version=<held>`. While pricing cannot answer,
    both are `available: false` with a null version and a note, and the terminal keeps
    its cached data (the rest of the answer is still current).
    """
    if principal.store_id is None:
        raise problems.ProblemError(problems.FORBIDDEN, "only clients bound to a store have a store configuration")
    return SyncState(
        server_time=datetime.now(UTC),
        store=StoreConfiguration(
            store_id=principal.store_id,
            terminal_id=principal.terminal_id,
            timezone=STORE_TIMEZONE,
            currency=CURRENCY,
            max_sales_per_batch=resources.settings.max_sales_per_batch,
            sale_future_tolerance_seconds=resources.settings.sale_future_tolerance_seconds,
        ),
        datasets=await dataset_versions(resources, principal.store_id),
    )


async def dataset_versions(resources: GatewayResources, store_id: str) -> dict[str, DatasetVersion]:
    """The price-book and catalogue versions of a store, asked of the pricing service in one call."""
    channel = resources.backends.get("pricing")
    if channel is None:
        return _unavailable("the pricing service is not configured; keep the cached copy")
    try:
        answer = await pricing_pb2_grpc.PricingServiceStub(channel).GetStoreVersions(
            pricing_pb2.GetStoreVersionsRequest(store_id=store_id)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return _unavailable(f"pricing has no price book for store {store_id} yet; keep the cached copy")
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            log.warning("pricing did not answer the POS sync", extra={"grpc_code": error.code().name})
            return _unavailable("the pricing service is unavailable; keep the cached copy and ask again")
        raise
    return {
        "price_book": DatasetVersion(
            version=str(answer.price_book_version),
            available=True,
            note="changes: GET /v1/pos/price-book?since_version=<held version>",
        ),
        "catalogue": DatasetVersion(
            version=str(answer.catalogue_version),
            available=True,
            note=f"changes: GET /v1/items?store_id={store_id}&since_version=<held version>",
        ),
    }


def _unavailable(note: str) -> dict[str, DatasetVersion]:
    return {name: DatasetVersion(version=None, available=False, note=note) for name in ("price_book", "catalogue")}
