"""Supplier scorecards: how a supplier delivered in a period, from the facts, never from a default.

Per supplier and period, over the purchase-order lines **due** in it (promised date inside the
period) and the receipts of those lines:

* **OTIF** (on time in full) = lines delivered in full by their promised date ÷ lines due. The
  date that counts is the day the goods arrived, not the day the receipt was typed in (Axelor
  PR #16740);
* **fill rate** = accepted quantity ÷ ordered quantity;
* **reject rate** = rejected ÷ delivered quantity; the **quality score** is 100 × (1 − reject
  rate), which the contract's quality bands turn into a deduction;
* **lead time**, promised and actual: mean days from the supplier's confirmation to the promised
  date and to the (last) arrival;
* **invoice match rate** = invoice lines matched ÷ invoice lines.

A measure with nothing to measure (no line due, nothing delivered, no invoice) is ``None`` —
never 100 (ERPNext #31597 scored empty periods 100), and it is left out of averages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True, slots=True)
class DueLine:
    ordered: Decimal
    accepted: Decimal
    rejected: Decimal
    confirmed_on: date | None
    promised_on: date
    last_arrival_on: date | None  # the day the last goods of the line arrived; None: nothing yet
    fully_delivered_on: date | None  # the day delivered reached ordered; None: not (yet) in full


@dataclass(frozen=True, slots=True)
class Scorecard:
    lines_due: int
    otif: Decimal | None
    fill_rate: Decimal | None
    reject_rate: Decimal | None
    quality_score: Decimal | None
    promised_lead_days: Decimal | None
    actual_lead_days: Decimal | None
    invoice_match_rate: Decimal | None


_PLACES = Decimal("0.0001")


def _ratio(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(_PLACES, ROUND_HALF_UP)


def _mean(values: Sequence[int]) -> Decimal | None:
    if not values:
        return None
    return (Decimal(sum(values)) / len(values)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def scorecard(lines: Sequence[DueLine], *, invoice_lines: int = 0, invoice_lines_matched: int = 0) -> Scorecard:
    on_time_in_full = sum(
        1 for line in lines if line.fully_delivered_on is not None and line.fully_delivered_on <= line.promised_on
    )
    ordered = sum((line.ordered for line in lines), Decimal(0))
    accepted = sum((line.accepted for line in lines), Decimal(0))
    rejected = sum((line.rejected for line in lines), Decimal(0))
    delivered = accepted + rejected
    reject_rate = _ratio(rejected, delivered)
    confirmed = [line for line in lines if line.confirmed_on is not None]
    promised = [(line.promised_on - line.confirmed_on).days for line in confirmed if line.confirmed_on]
    actual = [
        (line.last_arrival_on - line.confirmed_on).days
        for line in confirmed
        if line.confirmed_on and line.last_arrival_on
    ]
    return Scorecard(
        lines_due=len(lines),
        otif=_ratio(on_time_in_full, len(lines)),
        fill_rate=_ratio(accepted, ordered),
        reject_rate=reject_rate,
        quality_score=None if reject_rate is None else ((1 - reject_rate) * 100).quantize(Decimal("0.01")),
        promised_lead_days=_mean(promised),
        actual_lead_days=_mean(actual),
        invoice_match_rate=_ratio(invoice_lines_matched, invoice_lines),
    )
