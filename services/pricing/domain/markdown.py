"""Markdown suggestions for slow movers and overstock: how much off, and never below the margin floor.

Step table
----------
``cover ratio = days_of_cover / overstock_threshold_days``. The first row the ratio reaches
gives the suggested markdown off the current regular price:

=============  ==========
cover ratio    markdown
=============  ==========
``>= 3``       30 %
``>= 2``       20 %
``>= 1``       10 %
``< 1``        none (not overstocked; :func:`suggest_markdown` returns ``None``)
=============  ==========

An item that no longer sells has infinite cover (``Decimal("Infinity")``) and gets the top step.

Price
-----
1. ``target = regular × (100 − step) / 100``.
2. Rounded **down** the retail way: to a whole 0.10 yuan (8.57 → 8.50). A target under 0.10
   yuan is rounded down to the fen instead, and never below 1 fen.
3. **Floor**: ``cost / (1 − min_margin)`` rounded **up** to the fen (the guard rails' floor).
   When the rounded target is below it, the suggestion is the floor rounded up to the next
   0.10 yuan if that is still below the regular price, else the floor itself;
   ``limited_by_floor`` is then true.
4. If the result is not below the regular price (the floor leaves no markdown at all), there
   is no suggestion: ``None``.

``percent`` in the result is the markdown actually suggested, ``(regular − suggested) /
regular × 100``, half-up to 0.01; ``step_percent`` is the table's row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from servicekit.errors import InvalidArgument
from services.pricing.domain.catalogue import validate_sku
from services.pricing.domain.guard_rails import min_margin_floor_fen, validate_min_margin
from services.pricing.domain.money import format_fen, validate_fen

# (minimum cover ratio, markdown percent), highest first: the first row reached wins.
MARKDOWN_STEPS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(3), Decimal(30)),
    (Decimal(2), Decimal(20)),
    (Decimal(1), Decimal(10)),
)
RETAIL_STEP_FEN = 10
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class MarkdownSuggestion:
    """A suggested markdown for one SKU in one store; a person approves it before it becomes a price."""

    sku: str
    store_id: str
    regular_price_fen: int
    suggested_price_fen: int
    percent: Decimal
    step_percent: Decimal
    floor_price_fen: int
    cover_ratio: Decimal
    limited_by_floor: bool
    reason: str


@dataclass(frozen=True, slots=True)
class StoredMarkdown:
    """A markdown suggestion as kept: its id, its state, and the change its approval scheduled."""

    markdown_id: str
    store_id: str
    sku: str
    current_price_fen: int
    suggested_price_fen: int
    floor_price_fen: int
    percent_off: Decimal
    reason: str
    state: str
    change_id: str | None
    created_at: datetime


def markdown_step(cover_ratio: Decimal) -> Decimal | None:
    """The table's markdown percent for a cover ratio, or ``None`` below the first row."""
    for minimum, percent in MARKDOWN_STEPS:
        if cover_ratio >= minimum:
            return percent
    return None


def round_down_retail(price_fen: int) -> int:
    """Down to a whole 0.10 yuan; under 0.10 yuan down to the fen, but never below 1 fen."""
    if price_fen >= RETAIL_STEP_FEN:
        return price_fen - price_fen % RETAIL_STEP_FEN
    return max(price_fen, 1)


def suggest_markdown(
    *,
    sku: str,
    store_id: str,
    regular_price_fen: int,
    cost_fen: int,
    days_of_cover: Decimal,
    overstock_threshold_days: int,
    min_margin: Decimal,
) -> MarkdownSuggestion | None:
    """The markdown the step table suggests, kept at or above the margin floor; ``None`` if there is none."""
    validate_sku(sku)
    if not isinstance(store_id, str) or not store_id:
        raise InvalidArgument("store_id is required", details={"field": "store_id"})
    validate_fen(regular_price_fen, field="regular_price_fen")
    validate_fen(cost_fen, field="cost_fen")
    validate_min_margin(min_margin)
    if not isinstance(days_of_cover, Decimal) or days_of_cover.is_nan() or days_of_cover < 0:
        raise InvalidArgument(
            "days_of_cover must be a Decimal at least 0 (Infinity when nothing sells)",
            details={"field": "days_of_cover"},
        )
    if isinstance(overstock_threshold_days, bool) or not isinstance(overstock_threshold_days, int):
        raise InvalidArgument(
            "overstock_threshold_days must be a whole number", details={"field": "overstock_threshold_days"}
        )
    if overstock_threshold_days <= 0:
        raise InvalidArgument("overstock_threshold_days must be above 0", details={"field": "overstock_threshold_days"})

    cover_ratio = days_of_cover / overstock_threshold_days
    step = markdown_step(cover_ratio)
    if step is None or regular_price_fen == 0:
        return None
    floor = min_margin_floor_fen(cost_fen, min_margin)
    # Rounding down a Decimal target: floor() of the exact product, no float in between.
    target = round_down_retail(math.floor(Decimal(regular_price_fen) * (_HUNDRED - step) / _HUNDRED))
    suggested = target
    limited = target < floor
    if limited:
        floor_rounded_up = -(-floor // RETAIL_STEP_FEN) * RETAIL_STEP_FEN
        suggested = floor_rounded_up if floor_rounded_up < regular_price_fen else floor
    if suggested >= regular_price_fen:
        return None

    percent = (Decimal(regular_price_fen - suggested) * _HUNDRED / regular_price_fen).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    if cover_ratio.is_finite():
        cover_text = (
            f"{days_of_cover} days of cover is {cover_ratio.quantize(Decimal('0.1'))}× "
            f"the overstock threshold of {overstock_threshold_days} days"
        )
    else:
        cover_text = "no sales to cover the stock (infinite cover)"
    reason = f"{cover_text}: step {step} % off {format_fen(regular_price_fen)}"
    if limited:
        reason += f"; held at the minimum-margin floor {format_fen(floor)}, so {percent} % off"
    return MarkdownSuggestion(
        sku=sku,
        store_id=store_id,
        regular_price_fen=regular_price_fen,
        suggested_price_fen=suggested,
        percent=percent,
        step_percent=step,
        floor_price_fen=floor,
        cover_ratio=cover_ratio,
        limited_by_floor=limited,
        reason=reason,
    )
