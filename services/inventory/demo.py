"""Inventory's part of the demo retailer: locations, the item projection, opening stock and sales history.

Until the pricing service publishes the catalogue, the demo seeds the item projection
(with each supplier's lead time, for replenishment). The daily sales history goes into
``daily_sales`` as an import, so forecasts, their backtest and KPIs run on it; it is
already reflected in the opening stock, so it moves no stock. Loading twice changes
nothing: rows are keyed, imports are upserts, and a stock level's opening-balance
movement is written only when the level is created, so balance = ledger from the start.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from demodata import DemoRetailer
from servicekit.db import create_engine


async def load_demo(database_url: str, retailer: DemoRetailer, state_dir: Path | None = None) -> dict[str, Any]:
    engine = create_engine(database_url, pool_size=2, max_overflow=0, application_name="demo-loader")
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO location (location_id, name, kind, city, channels) "
                    "SELECT location_id, name, kind, city, CAST(channels AS text[]) FROM unnest("
                    "CAST(:ids AS text[]), CAST(:names AS text[]), CAST(:kinds AS text[]), CAST(:cities AS text[]), "
                    "CAST(:channels AS text[])) AS v(location_id, name, kind, city, channels) "
                    "ON CONFLICT DO NOTHING"
                ),
                {
                    "ids": [loc.location_id for loc in retailer.locations],
                    "names": [loc.name for loc in retailer.locations],
                    "kinds": [loc.kind.value for loc in retailer.locations],
                    "cities": [loc.city for loc in retailer.locations],
                    # unnest flattens arrays of arrays, so channels travel as "{a,b}" literals
                    "channels": ["{" + ",".join(c.value for c in loc.channels) + "}" for loc in retailer.locations],
                },
            )
            await connection.execute(
                text(
                    "INSERT INTO item (sku, name, category_id, unit, sold_by_weight, supplier_id, lead_time_days) "
                    "SELECT * FROM unnest(CAST(:skus AS text[]), CAST(:names AS text[]), CAST(:categories AS text[]), "
                    "CAST(:units AS text[]), CAST(:by_weight AS boolean[]), CAST(:suppliers AS text[]), "
                    "CAST(:lead_times AS integer[])) ON CONFLICT DO NOTHING"
                ),
                {
                    "skus": [sku.sku_code for sku in retailer.skus],
                    "names": [sku.name for sku in retailer.skus],
                    "categories": [sku.category_code for sku in retailer.skus],
                    "units": [sku.unit.value for sku in retailer.skus],
                    "by_weight": [sku.sold_by_weight for sku in retailer.skus],
                    "suppliers": [sku.supplier_id for sku in retailer.skus],
                    "lead_times": [retailer.supplier(sku.supplier_id).lead_time_days for sku in retailer.skus],
                },
            )
            levels = list(retailer.stock_levels())
            created = await connection.execute(
                text(
                    "INSERT INTO stock_level (sku, location_id, on_hand, safety_stock) "
                    "SELECT * FROM unnest(CAST(:skus AS text[]), CAST(:locations AS text[]), "
                    "CAST(:on_hand AS numeric[]), CAST(:safety AS numeric[])) "
                    "ON CONFLICT DO NOTHING RETURNING sku, location_id, on_hand"
                ),
                {
                    "skus": [level.sku_code for level in levels],
                    "locations": [level.location_id for level in levels],
                    "on_hand": [level.on_hand for level in levels],
                    "safety": [level.safety_stock for level in levels],
                },
            )
            rows = list(created)
            await connection.execute(
                text(
                    "INSERT INTO stock_movement (sku, location_id, kind, on_hand_delta, reference) "
                    "SELECT sku, location_id, 'opening_balance', on_hand, 'demo' FROM unnest(CAST(:skus AS text[]), "
                    "CAST(:locations AS text[]), CAST(:on_hand AS numeric[])) AS v(sku, location_id, on_hand)"
                ),
                {
                    "skus": [row.sku for row in rows],
                    "locations": [row.location_id for row in rows],
                    "on_hand": [row.on_hand for row in rows],
                },
            )
            history_rows = await _import_sales_history(connection, retailer)
    finally:
        await engine.dispose()
    return {
        "locations": len(retailer.locations),
        "skus": len(retailer.skus),
        "stock_levels_created": len(rows),
        "sales_history_rows": history_rows,
    }


_HISTORY_CHUNK = 20_000


async def _import_sales_history(connection: AsyncConnection, retailer: DemoRetailer) -> int:
    """Every (business day, location, SKU) total of the demo history, upserted as imported sales."""
    imported = 0
    totals = retailer.daily_sales()
    while chunk := list(islice(totals, _HISTORY_CHUNK)):
        await connection.execute(
            text(
                "INSERT INTO daily_sales (location_id, sku, day, source, quantity) "
                "SELECT location_id, sku, day, 'import', quantity FROM unnest(CAST(:locations AS text[]), "
                "CAST(:skus AS text[]), CAST(:days AS date[]), CAST(:quantities AS numeric[])) "
                "AS v(location_id, sku, day, quantity) "
                "ON CONFLICT (location_id, sku, day, source) DO UPDATE SET quantity = EXCLUDED.quantity"
            ),
            {
                "locations": [row.location_id for row in chunk],
                "skus": [row.sku_code for row in chunk],
                "days": [row.business_date for row in chunk],
                "quantities": [row.quantity for row in chunk],
            },
        )
        imported += len(chunk)
    return imported
