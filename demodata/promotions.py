"""Promotions: short per-SKU price cuts spread over the sales history and the weeks after it.

The history ends yesterday, and a chain always has promotions running and planned: so
they are drawn over the history plus :data:`PLANNED_DAYS` after it. The sales show the
part of each that lies in the history; pricing loads those still running or to come.
At most one promotion runs on a SKU at a time, so a line's discount is never ambiguous.
Festival food is left out (it has its own season); online-only promotions skip loose
goods, which the online shop does not sell.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from demodata._random import substream
from demodata.model import Location, Promotion, Sku

CENT = Decimal("0.01")
PLANNED_DAYS = 28
"""How far beyond the end of the history promotions are already planned."""
_DISCOUNT_RATES = tuple(Decimal(rate).scaleb(-2) for rate in (10, 15, 20, 25, 30))


def _zhe(discount_rate: Decimal) -> str:
    """How a Chinese shelf label writes a discount: 20 % off is "8折", 15 % off "8.5折"."""
    return f"{(Decimal(10) * (1 - discount_rate)).normalize()}折"


def build_promotions(
    seed: int,
    promotion_count: int,
    history_start: date,
    history_days: int,
    skus: tuple[Sku, ...],
    stores: tuple[Location, ...],
    online: Location,
) -> tuple[Promotion, ...]:
    """``promotion_count`` promotions (fewer if the SKUs run out of free windows), by start date,
    over the ``history_days`` from ``history_start`` and the :data:`PLANNED_DAYS` after them."""
    rng = substream(seed, "promotions")
    window_days = history_days + PLANNED_DAYS
    candidates = [sku for sku in skus if sku.seasonal_occasion is None]
    store_ids = tuple(store.location_id for store in stores)
    busy: dict[str, list[tuple[date, date]]] = {}
    drafts = []
    for _ in range(promotion_count):
        for _attempt in range(50):
            sku = rng.choice(candidates)
            length = min(window_days, rng.randint(4, 14))
            start = history_start + timedelta(days=rng.randrange(window_days - length + 1))
            end = start + timedelta(days=length - 1)
            if any(start <= taken_end and taken_start <= end for taken_start, taken_end in busy.get(sku.sku_code, [])):
                continue
            busy.setdefault(sku.sku_code, []).append((start, end))
            scope = rng.random()
            if scope < 0.15 and not sku.sold_by_weight:
                location_ids: tuple[str, ...] = (online.location_id,)
            elif scope < 0.3:
                location_ids = store_ids
            else:
                location_ids = (*store_ids, online.location_id) if not sku.sold_by_weight else store_ids
            discount_rate = rng.choice(_DISCOUNT_RATES)
            promo_price = (sku.base_price * (1 - discount_rate)).quantize(CENT, rounding=ROUND_HALF_UP)
            uplift = round(1.0 + float(discount_rate) * rng.uniform(4.0, 7.0), 2)
            drafts.append((start, sku, end, location_ids, discount_rate, promo_price, uplift))
            break
    drafts.sort(key=lambda draft: (draft[0], draft[1].sku_code))
    return tuple(
        Promotion(
            promotion_id=f"PROMO{number:04d}",
            name=f"{_zhe(discount_rate)}特惠 {sku.name}",
            sku_code=sku.sku_code,
            discount_rate=discount_rate,
            promo_price=promo_price,
            start=start,
            end=end,
            location_ids=location_ids,
            expected_uplift=uplift,
        )
        for number, (start, sku, end, location_ids, discount_rate, promo_price, uplift) in enumerate(drafts, 1)
    )
