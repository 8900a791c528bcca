"""Sales into the journal: each sale of a batch checked against the rules of
:mod:`gateway.domain.sales`, turned into its journal entry and published one by one.

One bad sale never blocks the others; a sale the journal already holds is a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gateway.adapters.sales_journal import JournalEntry
from gateway.domain import sales as rules
from gateway.http import problems
from gateway.http.resources import Resources
from gateway.pos.schemas import (
    BatchResult,
    SaleIn,
    SaleProblem,
    SaleResult,
)
from gateway.pos.wire import map_sale_recorded, sale_total_minor
from gateway.security.authentication import Principal

SALE_REJECTED = problems.ProblemType("sale-rejected", "The sale was rejected", 422)


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


def journal_entry(sale: SaleIn, principal: Principal, recorded_at: datetime, member_key: str) -> JournalEntry:
    return JournalEntry(
        sale_id=sale.sale_id,
        kind=sale.kind,
        location_id=sale.store_id,
        submitted_by=principal.client_id,
        occurred_at=sale.occurred_at,
        payload=map_sale_recorded(sale, principal, recorded_at, member_key.encode()),
    )
