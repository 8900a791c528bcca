"""Likely causes of a sales anomaly, scored and ranked from what the platform knew at that moment.

:func:`rank_causes` takes one finding (a store × category × business day outside its expected
band, below or above it) and the evidence the alerts service keeps as projections of other
contexts' events, and returns the candidate causes with a score in 0..1, highest first. The
scoring is deliberately simple and explainable; each cause's facts say what it rests on.

Terms used below:

* **the category's SKUs** (``n``): the SKUs the catalogue puts in the category together with the
  SKUs the finding names. Evidence about any other SKU, or another store, is ignored.
* **the window**: the seven days before the end of the business day (``window_end`` = the next
  midnight in the chain's zone). Only things that happened inside it count.
* **recency** of a moment ``t`` in the window: 1.0 on the business day itself, then falling
  linearly to 0.5 at the start of the window: ``1 − 0.5 × (day_start − t) / 6 days``.
* **agreement**: a cause that would move sales the *other* way than they went is not listed.

Scores:

* ``PRICE_CHANGE`` — regular till-price changes (the promotion neither started nor ended) of the
  category's SKUs in the store, effective in the window. Per SKU the net relative change from the
  first old price to the last new price, ``r``. A SKU *agrees* when ``r > 0`` and sales were below,
  or ``r < 0`` and above. ``score = √(agreeing / n) × min(1, mean|r| / 0.20) × recency(last change)``:
  a 20 % move on every SKU of the category on the day scores 1.
* ``PROMOTION_STARTED`` / ``PROMOTION_ENDED`` — the promotion on a SKU went from unset to set
  (started, agrees with *above*) or from set to unset (ended, agrees with *below*) in the window.
  ``score = √(share of SKUs) × (0.6 + 0.4 × min(1, mean depth / 0.20)) × recency(last)``, where depth
  is the relative till-price difference the change made (0 when a price is missing).
* ``STOCK_OUT`` — per SKU the fraction ``f`` of the store's opening hours that day it was out of
  stock (available-to-promise or on hand at or below zero). ``score = √(Σf / n)``; agrees with
  *below* only: six of ten SKUs out all day score 0.77.
* ``LABEL_MISMATCH`` — shelf labels of the category's SKUs in the store that gave up syncing in the
  window: they may show another price than the till. It can push sales either way, so it is capped
  lower: ``score = 0.6 × √(SKUs with a given-up label / n)``.
* ``CAMPAIGN_ENDED`` — a marketing campaign for the store (or chain-wide) ended in the window and
  before the finding; agrees with *below* only. ``score = 0.6 × recency(end)`` for the store's own
  campaign, ``0.45 × recency(end)`` for a chain-wide one (its pull on one category is less sure).
* ``POS_NOT_SYNCING`` — the fraction ``s`` of the store's opening hours that day during which its
  SALES journal was silent (no entry from any of its terminals, including a silence still running).
  Listed from ``s ≥ 0.1``; ``score = min(1, s / 0.5)`` for *below* (sales that did not arrive), and
  a third of that for *above* (a late batch landing on one day).

Causes scoring under 0.05 are not listed. Ties keep the order of the list above.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from services.alerts.domain.opening_hours import StoreHours, overlap_seconds

WINDOW = timedelta(days=7)
MIN_SCORE = 0.05
FULL_PRICE_MOVE = 0.20
FULL_SILENCE = 0.5
MIN_SILENCE = 0.1
LABEL_CAP = 0.6
STORE_CAMPAIGN = 0.6
CHAIN_CAMPAIGN = 0.45
LISTED_SKUS = 20


class Direction(enum.Enum):
    BELOW = "below"
    ABOVE = "above"


class CauseKind(enum.Enum):
    PRICE_CHANGE = "price_change"
    PROMOTION_STARTED = "promotion_started"
    PROMOTION_ENDED = "promotion_ended"
    STOCK_OUT = "stock_out"
    LABEL_MISMATCH = "label_mismatch"
    CAMPAIGN_ENDED = "campaign_ended"
    POS_NOT_SYNCING = "pos_not_syncing"


_ORDER = {kind: index for index, kind in enumerate(CauseKind)}


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A store × category × business day outside its expected band."""

    anomaly_id: str
    location_id: str
    category: str
    business_date: date
    direction: Direction
    actual: Decimal
    expected: Decimal
    lower: Decimal
    upper: Decimal
    method: str
    skus: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PriceChange:
    """One till-price change of a SKU in a store, as pricing announced it."""

    store_id: str
    sku: str
    old_fen: int | None
    new_fen: int | None
    promotion_before: bool
    promotion_after: bool
    effective_at: datetime
    change_id: str = ""

    @property
    def relative(self) -> float | None:
        if not self.old_fen or self.new_fen is None:
            return None
        return (self.new_fen - self.old_fen) / self.old_fen


@dataclass(frozen=True, slots=True)
class StockOut:
    """A SKU out of stock at a location from ``since`` until ``until`` (still out when None)."""

    location_id: str
    sku: str
    since: datetime
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class GivenUpLabel:
    store_id: str
    label_id: str
    sku: str
    given_up_at: datetime


@dataclass(frozen=True, slots=True)
class CampaignEnd:
    campaign_id: str
    name: str
    store_id: str  # '' for chain-wide
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class JournalSilence:
    """A store's SALES journal sent nothing from ``since`` until ``until`` (still silent when None)."""

    store_id: str
    since: datetime
    until: datetime | None = None


@dataclass(frozen=True)
class Evidence:
    """What the alerts service knew when the finding arrived (it may hold other stores' and categories' facts)."""

    category_skus: frozenset[str] = frozenset()
    price_changes: Sequence[PriceChange] = ()
    stock_outs: Sequence[StockOut] = ()
    labels: Sequence[GivenUpLabel] = ()
    campaigns: Sequence[CampaignEnd] = ()
    silences: Sequence[JournalSilence] = ()


@dataclass(frozen=True)
class Cause:
    kind: CauseKind
    score: float
    summary: str
    facts: dict[str, str] = field(default_factory=dict)
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class _Frame:
    anomaly: Anomaly
    universe: frozenset[str]
    window_start: datetime
    window_end: datetime
    day_start: datetime
    now: datetime
    hours: StoreHours

    def recency(self, at: datetime) -> float:
        before_day = self.day_start - self.window_start
        if before_day <= timedelta(0):
            return 1.0
        age = (self.day_start - at) / before_day
        return 1.0 - 0.5 * min(1.0, max(0.0, age))

    def in_window(self, at: datetime) -> bool:
        return self.window_start <= at < self.window_end and at <= self.now

    def share(self, count: int) -> float:
        return min(1.0, count / max(1, len(self.universe)))


def rank_causes(
    anomaly: Anomaly, evidence: Evidence, hours: StoreHours, *, now: datetime, window: timedelta = WINDOW
) -> list[Cause]:
    """The likely causes of ``anomaly``, highest score first (see the module's docstring for the scoring)."""
    day_start, day_end = hours.day_bounds(anomaly.business_date)
    frame = _Frame(
        anomaly,
        frozenset(evidence.category_skus) | frozenset(anomaly.skus),
        day_end - window,
        day_end,
        day_start,
        now,
        hours,
    )
    found = [
        _price_change(frame, evidence.price_changes),
        *_promotions(frame, evidence.price_changes),
        _stock_out(frame, evidence.stock_outs),
        _label_mismatch(frame, evidence.labels),
        _campaign_ended(frame, evidence.campaigns),
        _pos_not_syncing(frame, evidence.silences),
    ]
    listed = [cause for cause in found if cause is not None and cause.score >= MIN_SCORE]
    return sorted(listed, key=lambda cause: (-cause.score, _ORDER[cause.kind]))


def _skus_text(skus: Iterable[str]) -> str:
    ordered = sorted(skus)
    text = ",".join(ordered[:LISTED_SKUS])
    return text + (f",+{len(ordered) - LISTED_SKUS}" if len(ordered) > LISTED_SKUS else "")


def _round(score: float) -> float:
    return round(min(1.0, max(0.0, score)), 3)


def _relevant_changes(frame: _Frame, changes: Sequence[PriceChange]) -> dict[str, list[PriceChange]]:
    per_sku: dict[str, list[PriceChange]] = defaultdict(list)
    for change in changes:
        if (
            change.store_id == frame.anomaly.location_id
            and change.sku in frame.universe
            and frame.in_window(change.effective_at)
        ):
            per_sku[change.sku].append(change)
    for listed in per_sku.values():
        listed.sort(key=lambda change: change.effective_at)
    return per_sku


def _price_change(frame: _Frame, changes: Sequence[PriceChange]) -> Cause | None:
    agreeing: dict[str, tuple[float, PriceChange, PriceChange]] = {}
    for sku, listed in _relevant_changes(frame, changes).items():
        regular = [c for c in listed if c.promotion_before == c.promotion_after and c.relative is not None]
        if not regular:
            continue
        first, last = regular[0], regular[-1]
        relative = (last.new_fen or 0) / (first.old_fen or 1) - 1  # both set: relative is not None
        up_and_below = relative > 0 and frame.anomaly.direction is Direction.BELOW
        down_and_above = relative < 0 and frame.anomaly.direction is Direction.ABOVE
        if up_and_below or down_and_above:
            agreeing[sku] = (relative, first, last)
    if not agreeing:
        return None
    mean_move = sum(abs(relative) for relative, _, _ in agreeing.values()) / len(agreeing)
    latest = max((last for _, _, last in agreeing.values()), key=lambda change: change.effective_at)
    biggest_sku, (biggest, first, last) = max(agreeing.items(), key=lambda item: abs(item[1][0]))
    score = math.sqrt(frame.share(len(agreeing))) * min(1.0, mean_move / FULL_PRICE_MOVE)
    score *= frame.recency(latest.effective_at)
    way = "raised" if biggest > 0 else "lowered"
    return Cause(
        CauseKind.PRICE_CHANGE,
        _round(score),
        f"Till price {way} on {len(agreeing)} of {len(frame.universe)} SKUs of {frame.anomaly.category} "
        f"(mean {mean_move:.0%})",
        {
            "skus": _skus_text(agreeing),
            "sku": biggest_sku,
            "change_id": last.change_id,
            "from": str(first.old_fen),
            "to": str(last.new_fen),
            "relative_change": f"{biggest:+.3f}",
            "share": f"{frame.share(len(agreeing)):.3f}",
        },
        latest.effective_at,
    )


def _promotions(frame: _Frame, changes: Sequence[PriceChange]) -> list[Cause | None]:
    started: dict[str, PriceChange] = {}
    ended: dict[str, PriceChange] = {}
    for sku, listed in _relevant_changes(frame, changes).items():
        transitions = [c for c in listed if c.promotion_before != c.promotion_after]
        if not transitions:
            continue
        last = transitions[-1]
        (started if last.promotion_after else ended)[sku] = last
    return [
        _promotion(frame, CauseKind.PROMOTION_STARTED, started, Direction.ABOVE, "started"),
        _promotion(frame, CauseKind.PROMOTION_ENDED, ended, Direction.BELOW, "ended"),
    ]


def _promotion(
    frame: _Frame, kind: CauseKind, found: dict[str, PriceChange], agrees: Direction, verb: str
) -> Cause | None:
    if not found or frame.anomaly.direction is not agrees:
        return None
    depths = [abs(change.relative or 0.0) for change in found.values()]
    depth = sum(depths) / len(depths)
    latest = max(found.values(), key=lambda change: change.effective_at)
    share = frame.share(len(found))
    score = math.sqrt(share) * (0.6 + 0.4 * min(1.0, depth / FULL_PRICE_MOVE)) * frame.recency(latest.effective_at)
    return Cause(
        kind,
        _round(score),
        f"Promotion {verb} on {len(found)} of {len(frame.universe)} SKUs of {frame.anomaly.category}",
        {
            "skus": _skus_text(found),
            "change_id": latest.change_id,
            "depth": f"{depth:.3f}",
            "share": f"{share:.3f}",
            "since": latest.effective_at.isoformat(),
        },
        latest.effective_at,
    )


def _stock_out(frame: _Frame, stock_outs: Sequence[StockOut]) -> Cause | None:
    if frame.anomaly.direction is not Direction.BELOW:
        return None
    store = frame.anomaly.location_id
    opens, closes = frame.hours.open_window(store, frame.anomaly.business_date)
    open_seconds = (closes - opens).total_seconds()
    fractions: dict[str, float] = defaultdict(float)
    earliest: datetime | None = None
    for out in stock_outs:
        if out.location_id != store or out.sku not in frame.universe:
            continue
        until = out.until or frame.now
        seconds = overlap_seconds(out.since, until, opens, closes)
        if seconds <= 0:
            continue
        fractions[out.sku] = min(1.0, fractions[out.sku] + seconds / open_seconds)
        earliest = out.since if earliest is None else min(earliest, out.since)
    if not fractions:
        return None
    mean = sum(fractions.values()) / max(1, len(frame.universe))
    return Cause(
        CauseKind.STOCK_OUT,
        _round(math.sqrt(mean)),
        f"{len(fractions)} of {len(frame.universe)} SKUs of {frame.anomaly.category} were out of stock "
        f"({mean:.0%} of the category's selling hours)",
        {"skus": _skus_text(fractions), "out_share": f"{mean:.3f}", "since": earliest.isoformat() if earliest else ""},
        earliest,
    )


def _label_mismatch(frame: _Frame, labels: Sequence[GivenUpLabel]) -> Cause | None:
    found = [
        label
        for label in labels
        if label.store_id == frame.anomaly.location_id
        and label.sku in frame.universe
        and frame.in_window(label.given_up_at)
    ]
    if not found:
        return None
    skus = {label.sku for label in found}
    first = min(label.given_up_at for label in found)
    return Cause(
        CauseKind.LABEL_MISMATCH,
        _round(LABEL_CAP * math.sqrt(frame.share(len(skus)))),
        f"{len(found)} shelf labels of {len(skus)} SKUs of {frame.anomaly.category} gave up syncing: "
        "they may show another price than the till",
        {"skus": _skus_text(skus), "labels": _skus_text(label.label_id for label in found), "since": first.isoformat()},
        first,
    )


def _campaign_ended(frame: _Frame, campaigns: Sequence[CampaignEnd]) -> Cause | None:
    if frame.anomaly.direction is not Direction.BELOW:
        return None
    best: tuple[float, CampaignEnd] | None = None
    for campaign in campaigns:
        if campaign.store_id not in ("", frame.anomaly.location_id) or not frame.in_window(campaign.ends_at):
            continue
        weight = STORE_CAMPAIGN if campaign.store_id else CHAIN_CAMPAIGN
        score = weight * frame.recency(campaign.ends_at)
        if best is None or score > best[0]:
            best = (score, campaign)
    if best is None:
        return None
    score, campaign = best
    return Cause(
        CauseKind.CAMPAIGN_ENDED,
        _round(score),
        f"Campaign {campaign.name or campaign.campaign_id} ended",
        {
            "campaign_id": campaign.campaign_id,
            "name": campaign.name,
            "scope": "store" if campaign.store_id else "chain",
            "ended_at": campaign.ends_at.isoformat(),
        },
        campaign.ends_at,
    )


def _pos_not_syncing(frame: _Frame, silences: Sequence[JournalSilence]) -> Cause | None:
    store = frame.anomaly.location_id
    opens, closes = frame.hours.open_window(store, frame.anomaly.business_date)
    intervals = [(silence.since, silence.until or frame.now) for silence in silences if silence.store_id == store]
    silent = frame.hours.open_seconds_within(store, frame.anomaly.business_date, intervals)
    share = silent / max(1.0, (closes - opens).total_seconds())
    if share < MIN_SILENCE:
        return None
    score = min(1.0, share / FULL_SILENCE)
    if frame.anomaly.direction is Direction.ABOVE:
        score /= 3
    since = min((start for start, end in intervals if overlap_seconds(start, end, opens, closes) > 0), default=opens)
    return Cause(
        CauseKind.POS_NOT_SYNCING,
        _round(score),
        f"The store's POS sent no journal entry for {share:.0%} of its opening hours",
        {"silent_share": f"{share:.3f}", "since": since.isoformat()},
        since,
    )
