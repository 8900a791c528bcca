"""PostgreSQL reads and writes of sales anomalies: a location's sales per leaf category, findings, evaluated days.

Categories come from the catalogue projection (``catalogue_item``, fed by pricing), else
from inventory's own item record; a SKU with neither belongs to no category. Days are business days
in China Standard Time, as in ``daily_sales``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.domain.sales_anomalies import SalesAnomaly


@dataclass(frozen=True, slots=True)
class SoldSku:
    """A SKU that sold at a location: its leaf category and the first day it sold there."""

    sku: str
    category: str
    first_day: date


async def skus_sold(session: AsyncSession, location_id: str) -> list[SoldSku]:
    """Every SKU that ever sold at the location (journal or import) and has a leaf category, by SKU.

    The category is the catalogue projection's; for a SKU pricing has not described (yet),
    inventory's own item record's.
    """
    rows = await session.execute(
        text(
            "SELECT s.sku, coalesce(nullif(c.category, ''), nullif(i.category_id, '')) AS category, s.first_day "
            "FROM (SELECT sku, min(day) AS first_day FROM daily_sales WHERE location_id = :location GROUP BY sku) s "
            "LEFT JOIN catalogue_item c USING (sku) LEFT JOIN item i USING (sku) "
            "WHERE coalesce(nullif(c.category, ''), nullif(i.category_id, '')) IS NOT NULL ORDER BY s.sku"
        ),
        {"location": location_id},
    )
    return [SoldSku(row.sku, row.category, row.first_day) for row in rows]


async def sales_on(session: AsyncSession, location_id: str, days: Sequence[date]) -> dict[date, dict[str, Decimal]]:
    """Units sold per day and SKU at the location on ``days`` (net of returns; journal and imports together)."""
    rows = await session.execute(
        text(
            "SELECT day, sku, sum(quantity) AS quantity FROM daily_sales "
            "WHERE location_id = :location AND day = ANY (CAST(:days AS date[])) GROUP BY day, sku"
        ),
        {"location": location_id, "days": list(days)},
    )
    sold: dict[date, dict[str, Decimal]] = defaultdict(dict)
    for row in rows:
        sold[row.day][row.sku] = row.quantity
    return dict(sold)


async def evaluated_days(session: AsyncSession, location_id: str, days: Sequence[date]) -> set[date]:
    rows = await session.execute(
        text(
            "SELECT business_date FROM sales_anomaly_evaluation "
            "WHERE location_id = :location AND business_date = ANY (CAST(:days AS date[]))"
        ),
        {"location": location_id, "days": list(days)},
    )
    return set(rows.scalars())


async def record_evaluation(
    session: AsyncSession, location_id: str, business_date: date, categories: int, anomalies: int, at: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO sales_anomaly_evaluation (location_id, business_date, categories, anomalies, evaluated_at) "
            "VALUES (:location, :day, :categories, :anomalies, :at) ON CONFLICT (location_id, business_date) "
            "DO UPDATE SET categories = EXCLUDED.categories, evaluated_at = EXCLUDED.evaluated_at, "
            "anomalies = sales_anomaly_evaluation.anomalies + EXCLUDED.anomalies"
        ),
        {"location": location_id, "day": business_date, "categories": categories, "anomalies": anomalies, "at": at},
    )


async def insert_anomaly(session: AsyncSession, anomaly: SalesAnomaly) -> bool:
    """Keep a finding unless its location, category and day already have one; True when this call kept it."""
    result = await session.execute(
        text(
            "INSERT INTO sales_anomaly (location_id, category, business_date, anomaly_id, direction, method, "
            "actual_units, expected_units, lower_units, upper_units, skus, detected_at) VALUES (:location, "
            ":category, :day, :anomaly_id, :direction, :method, :actual, :expected, :lower, :upper, "
            "CAST(:skus AS text[]), :at) ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {
            "location": anomaly.location_id,
            "category": anomaly.category,
            "day": anomaly.business_date,
            "anomaly_id": anomaly.anomaly_id,
            "direction": anomaly.direction.value,
            "method": anomaly.band.method,
            "actual": anomaly.actual,
            "expected": anomaly.band.expected,
            "lower": anomaly.band.lower,
            "upper": anomaly.band.upper,
            "skus": list(anomaly.skus),
            "at": anomaly.detected_at,
        },
    )
    return result.first() is not None
