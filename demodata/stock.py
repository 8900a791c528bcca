"""Stock on hand at the end of the history, in line with each location's expected demand.

Stores hold one to three weeks of cover, the online shop's own allocation somewhat less,
the distribution centre several weeks for the whole chain. A few shelves are empty and a
few are below safety stock, so replenishment and out-of-stock views have something to show.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from decimal import Decimal

from demodata._random import substream
from demodata.model import CHINA_STANDARD_TIME, Location, Sku, StockLevel, Supplier
from demodata.sales import DemandModel


def _quantity(sku: Sku, amount: float) -> Decimal:
    """Whole pieces, or kilograms to the gram for loose goods."""
    if sku.sold_by_weight:
        return Decimal(max(0, round(amount * 1000))).scaleb(-3)
    return Decimal(max(0, math.ceil(amount)))


def build_stock_levels(
    seed: int,
    demand: DemandModel,
    selling_locations: tuple[Location, ...],
    warehouse: Location,
    skus: tuple[Sku, ...],
    suppliers: tuple[Supplier, ...],
) -> Iterator[StockLevel]:
    """One row per location and SKU it carries: every selling location's assortment, all SKUs at the warehouse."""
    rng = substream(seed, "stock")
    end = demand.scale.end_date
    as_of = datetime.combine(end + timedelta(days=1), time(0), CHINA_STANDARD_TIME)
    lead_times = {supplier.supplier_id: supplier.lead_time_days for supplier in suppliers}
    by_code = {sku.sku_code: sku for sku in skus}
    chain_demand = dict.fromkeys(by_code, 0.0)
    for location in selling_locations:
        expected = demand.expected_daily_quantity(location, end)
        for sku_code, daily in expected.items():
            chain_demand[sku_code] += daily
            sku = by_code[sku_code]
            draw = rng.random()
            if draw < 0.03:
                cover = 0.0  # sold out, waiting for the next delivery
            elif draw < 0.1:
                cover = rng.uniform(0.2, 1.0)  # below safety stock
            else:
                cover = rng.uniform(3.0, 21.0) if not sku.perishable else rng.uniform(1.0, 4.0)
            yield StockLevel(
                location_id=location.location_id,
                sku_code=sku_code,
                on_hand=_quantity(sku, daily * cover),
                safety_stock=_quantity(sku, daily * (1 + lead_times[sku.supplier_id])),
                as_of=as_of,
            )
    for sku in skus:
        daily = chain_demand[sku.sku_code]
        cover = rng.uniform(2.0, 6.0) if sku.perishable else rng.uniform(10.0, 35.0)
        yield StockLevel(
            location_id=warehouse.location_id,
            sku_code=sku.sku_code,
            on_hand=_quantity(sku, daily * cover),
            safety_stock=_quantity(sku, daily * lead_times[sku.supplier_id]),
            as_of=as_of,
        )
