"""Settlement's reports: the reconciliation check, and a supplier's sales from the journal projection.

Read-only, over the accruals and statements (:mod:`~services.supply.adapters.accrual_store`,
:mod:`~services.supply.adapters.statement_store`) and the store × SKU × day totals; every
query of the check is one pass over its table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# ---- reconciliation ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    statement_id: str = ""
    source_id: str = ""
    detail: str = ""


async def check(session: AsyncSession, supplier_id: str | None, limit: int) -> tuple[int, int, int, list[Problem]]:
    """(accruals, statements, open accruals, problems) — every query one pass over its table."""
    params = {"supplier": supplier_id, "limit": limit}
    scope = "(CAST(:supplier AS text) IS NULL OR {}supplier_id = :supplier)"
    counts = (
        await session.execute(
            text(
                "SELECT (SELECT count(*) FROM accrual a WHERE " + scope.format("a.") + ") AS accruals, "
                "(SELECT count(*) FROM statement s WHERE " + scope.format("s.") + ") AS statements, "
                "(SELECT count(*) FROM accrual a LEFT JOIN statement s USING (statement_id) WHERE "
                + scope.format("a.")
                + " AND (a.statement_id IS NULL OR s.status = 'draft')) AS open"
            ),
            params,
        )
    ).one()
    problems: list[Problem] = []
    # Totals and counts equal the lines.
    rows = await session.execute(
        text(
            "SELECT s.statement_id, s.total_fen, s.line_count, coalesce(t.total, 0) AS total, "
            "coalesce(t.lines, 0) AS n "
            "FROM statement s LEFT JOIN (SELECT statement_id, sum(amount_fen) AS total, count(*) AS lines "
            "FROM accrual WHERE statement_id IS NOT NULL GROUP BY statement_id) t USING (statement_id) WHERE "
            + scope.format("s.")
            + " AND s.status <> 'draft' "
            "AND (s.total_fen <> coalesce(t.total, 0) OR s.line_count <> coalesce(t.lines, 0)) "
            "ORDER BY s.statement_id LIMIT :limit"
        ),
        params,
    )
    problems += [
        Problem(
            "total-mismatch",
            row.statement_id,
            "",
            f"total {row.total_fen} fen over {row.line_count} lines; the lines add up to {row.total} over {row.n}",
        )
        for row in rows
    ]
    # Each line on its contract's statement, inside its period or marked late from before it.
    rows = await session.execute(
        text(
            "SELECT a.source_id, s.statement_id, a.occurred_on, a.late, s.period_start, s.period_end, "
            "a.contract_id <> s.contract_id AS other_contract FROM accrual a JOIN statement s USING (statement_id) "
            "WHERE " + scope.format("a.") + " AND (a.contract_id <> s.contract_id OR a.occurred_on >= s.period_end "
            "OR (a.occurred_on < s.period_start) <> a.late) ORDER BY a.source_id LIMIT :limit"
        ),
        params,
    )
    problems += [
        Problem(
            "line-outside-statement",
            row.statement_id,
            row.source_id,
            "another contract's line" if row.other_contract else f"dated {row.occurred_on}, late={row.late}",
        )
        for row in rows
    ]
    # Every sale of a consignment or concession SKU accrued, and nothing accrued that was not sold.
    rows = await session.execute(
        text(
            "WITH sold AS (SELECT d.store_id, d.sku, d.business_day, d.sold FROM sales_day d "
            "JOIN contract_item i ON i.sku = d.sku JOIN contract c ON c.contract_id = i.contract_id "
            "AND c.mode IN ('consignment', 'concession') AND c.valid_from <= d.business_day "
            "AND (c.valid_until IS NULL OR c.valid_until > d.business_day) WHERE d.sold > 0 AND "
            + scope.format("c.")
            + "), accrued AS (SELECT store_id, sku, occurred_on AS business_day, sum(quantity) AS sold "
            "FROM accrual a WHERE kind = 'sale' AND " + scope.format("a.") + " GROUP BY 1, 2, 3) "
            "SELECT coalesce(s.store_id, a.store_id) AS store_id, coalesce(s.sku, a.sku) AS sku, "
            "coalesce(s.business_day, a.business_day) AS day, coalesce(s.sold, 0) AS sold, "
            "coalesce(a.sold, 0) AS accrued FROM sold s FULL JOIN accrued a "
            "ON (a.store_id, a.sku, a.business_day) = (s.store_id, s.sku, s.business_day) "
            "WHERE coalesce(s.sold, 0) <> coalesce(a.sold, 0) ORDER BY 3, 2, 1 LIMIT :limit"
        ),
        params,
    )
    problems += [
        Problem(
            "journal-line-not-accrued",
            "",
            f"{row.store_id}:{row.sku}:{row.day}",
            f"journal sold {row.sold}, accrued {row.accrued}",
        )
        for row in rows
    ]
    # Returns take back at most what a line sold, and exactly its amount once it has all come back.
    rows = await session.execute(
        text(
            "SELECT o.source_id, o.statement_id, o.quantity, o.amount_fen, -sum(r.quantity) AS returned, "
            "sum(r.amount_fen) AS reversed FROM accrual o JOIN accrual r ON r.reverses = o.source_id WHERE "
            + scope.format("o.")
            + " GROUP BY o.source_id HAVING -sum(r.quantity) > o.quantity "
            "OR (-sum(r.quantity) = o.quantity AND sum(r.amount_fen) <> -o.amount_fen) "
            "ORDER BY o.source_id LIMIT :limit"
        ),
        params,
    )
    problems += [
        Problem(
            "return-mismatch",
            row.statement_id or "",
            row.source_id,
            f"sold {row.quantity} for {row.amount_fen} fen; returned {row.returned} for {row.reversed} fen",
        )
        for row in rows
    ]
    # Journal lines kept because they could not accrue.
    rows = await session.execute(
        text(
            "SELECT u.source_id, u.status, u.original_sale_id, u.sku, u.quantity, u.detail FROM unmatched_line u "
            "WHERE CAST(:supplier AS text) IS NULL OR EXISTS (SELECT 1 FROM contract_item i JOIN contract c "
            "USING (contract_id) WHERE i.sku = u.sku AND c.supplier_id = :supplier) "
            "ORDER BY u.recorded_at, u.source_id LIMIT :limit"
        ),
        params,
    )
    kinds = {"waiting": "return-original-unknown", "excess": "return-exceeds-sale", "invalid": "journal-line-invalid"}
    problems += [
        Problem(
            kinds[row.status],
            "",
            row.source_id,
            row.detail or f"{row.sku} × {row.quantity}, original sale {row.original_sale_id or '-'}",
        )
        for row in rows
    ]
    return int(counts.accruals), int(counts.statements), int(counts.open), problems[:limit]


# ---- supplier sales ----------------------------------------------------------------------------------------------


async def supplier_exists(session: AsyncSession, supplier_id: str) -> bool:
    found = await session.execute(text("SELECT 1 FROM supplier WHERE supplier_id = :id"), {"id": supplier_id})
    return found.first() is not None


@dataclass(frozen=True, slots=True)
class StoreSkuSales:
    store_id: str
    sku: str
    quantity: Decimal
    revenue_fen: int
    selling_days: int


async def supplier_sales(
    session: AsyncSession, supplier_id: str, first: date, last: date, store_id: str | None
) -> list[StoreSkuSales]:
    """The supplier's SKUs (the catalogue's and its contracts') sold per store and SKU, net of returns."""
    rows = await session.execute(
        text(
            "WITH skus AS (SELECT sku FROM catalogue_item WHERE supplier_id = :supplier UNION "
            "SELECT i.sku FROM contract_item i JOIN contract c USING (contract_id) WHERE c.supplier_id = :supplier) "
            "SELECT d.store_id, d.sku, sum(d.sold - d.returned) AS quantity, "
            "sum(d.sold_fen - d.returned_fen) AS revenue, count(*) FILTER (WHERE d.sold > 0) AS days "
            "FROM sales_day d JOIN skus USING (sku) WHERE d.business_day BETWEEN :first AND :last "
            "AND (CAST(:store AS text) IS NULL OR d.store_id = :store) GROUP BY d.store_id, d.sku "
            "ORDER BY d.store_id, d.sku"
        ),
        {"supplier": supplier_id, "first": first, "last": last, "store": store_id},
    )
    return [StoreSkuSales(row.store_id, row.sku, row.quantity, int(row.revenue), int(row.days)) for row in rows]
