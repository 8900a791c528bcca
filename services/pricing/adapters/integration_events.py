"""The pricing context's integration events: facts mapped to outbox rows on the PRICING stream.

Subjects are ``retail.pricing.v1.<event>``; ``price_changed`` and ``label_sync_given_up``
end with the store id so a store's consumers can filter by it. An item's changes share
``item:<sku>``.

A ``PriceChanged`` belongs to the aggregate of its store *and* SKU (:func:`price_aggregate`,
``price:<store>:<sku>``): the relay publishes one SKU's changes in a store in version order,
and the changes of different SKUs (thousands after a chain-wide change) side by side. So
the stream keeps each (store, SKU)'s order but not a store's order across SKUs; a consumer
applies an event only when its ``price_book_version`` is above the one it holds for that
store and SKU (the contract says so, and nothing in the platform reads the book from these
events: tills pull deltas by version, labels follow the book in pricing's own database).
Until the change that brought this, a store's events shared ``book:<store>``, and a storm of
50,000 went out ten publishes at a time (docs/architecture.md, "Outbox").
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1.money_pb2 import Money
from retail.pricing.v1 import events_pb2
from retail.pricing.v1.pricing_service_pb2 import Promotion

from servicekit.messaging import StreamSpec
from servicekit.outbox import OutboxEvent
from servicekit.protowire import timestamp
from services.pricing.adapters.pricing_store import StoredItem
from services.pricing.domain.markdown import StoredMarkdown
from services.pricing.domain.rules import EffectivePrice, PriceRule
from services.pricing.entrypoints import wire

SUBJECT_PREFIX = "retail.pricing.v1"
PRICING_STREAM = StreamSpec(
    name="PRICING", subjects=[f"{SUBJECT_PREFIX}.>"], description="Facts of the pricing context"
)


def item_changed(stored: StoredItem, created: bool, at: datetime) -> OutboxEvent:
    message = events_pb2.ItemChanged(item=wire.map_item(stored), created=created, occurred_at=timestamp(at))
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.item_changed", message, aggregate_id=f"item:{stored.item.sku}", occurred_at=at
    )


def price_aggregate(store_id: str, sku: str) -> str:
    """The outbox aggregate of a store's price of one SKU: its ``PriceChanged`` events keep their order."""
    return f"price:{store_id}:{sku}"


def price_changed(
    *,
    store_id: str,
    sku: str,
    old_unit_price_fen: int | None,
    price: EffectivePrice | None,
    currency: str,
    version: int,
    change_id: str,
    effective_at: datetime,
    occurred_at: datetime,
) -> OutboxEvent:
    """One ``PriceChanged``; a refresh writing thousands uses one :class:`PriceChangedBatch`."""
    return PriceChangedBatch(occurred_at).event(
        store_id=store_id,
        sku=sku,
        old_unit_price_fen=old_unit_price_fen,
        price=price,
        currency=currency,
        version=version,
        change_id=change_id,
        effective_at=effective_at,
    )


class PriceChangedBatch:
    """The ``PriceChanged`` events of one book refresh, as :func:`price_changed` builds them (the same
    bytes), with the parts that repeat across its thousands of events built once: the timestamps
    (one or two moments for a whole batch), the money amounts and the promotions."""

    def __init__(self, occurred_at: datetime) -> None:
        self._occurred_at = occurred_at
        self._occurred = timestamp(occurred_at)
        self._stamps: dict[datetime, Timestamp] = {occurred_at: self._occurred}
        self._money: dict[tuple[int, str], Money] = {}
        self._promotions: dict[int, tuple[PriceRule, Promotion]] = {}

    def event(
        self,
        *,
        store_id: str,
        sku: str,
        old_unit_price_fen: int | None,
        price: EffectivePrice | None,
        currency: str,
        version: int,
        change_id: str,
        effective_at: datetime,
    ) -> OutboxEvent:
        effective = self._stamps.get(effective_at)
        if effective is None:
            effective = self._stamps[effective_at] = timestamp(effective_at)
        message = events_pb2.PriceChanged(
            store_id=store_id,
            sku=sku,
            price_book_version=version,
            change_id=change_id,
            effective_at=effective,
            occurred_at=self._occurred,
        )
        if old_unit_price_fen is not None:
            message.old_unit_price.CopyFrom(self._amount(old_unit_price_fen, currency))
        if price is not None:
            message.new_unit_price.CopyFrom(self._amount(price.unit_price_fen, currency))
            message.regular_price.CopyFrom(self._amount(price.regular_price_fen, currency))
            if price.promotion is not None:
                message.promotion.CopyFrom(self._promotion(price.promotion))
        return OutboxEvent.of(
            f"{SUBJECT_PREFIX}.price_changed.{store_id}",
            message,
            aggregate_id=price_aggregate(store_id, sku),
            occurred_at=self._occurred_at,
        )

    def _amount(self, fen: int, currency: str) -> Money:
        money = self._money.get((fen, currency))
        if money is None:
            money = self._money[(fen, currency)] = wire.map_money(fen, currency)
        return money

    def _promotion(self, rule: PriceRule) -> Promotion:
        known = self._promotions.get(id(rule))
        if known is None or known[0] is not rule:  # keyed by identity, the rule kept alive beside it
            known = self._promotions[id(rule)] = (rule, wire.map_promotion(rule))
        return known[1]


def guard_rail_overridden(
    *,
    sku: str,
    price_fen: int,
    cost_fen: int,
    currency: str,
    violation: str,
    reason: str,
    actor: str,
    change_id: str,
    at: datetime,
) -> OutboxEvent:
    message = events_pb2.PriceGuardRailOverridden(
        sku=sku,
        price=wire.map_money(price_fen, currency),
        cost=wire.map_money(cost_fen, currency),
        violation=violation,
        reason=reason,
        actor_client_id=actor,
        change_id=change_id,
        occurred_at=timestamp(at),
    )
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.price_guard_rail_overridden", message, aggregate_id=f"item:{sku}", occurred_at=at
    )


def label_sync_given_up(
    *, store_id: str, label_id: str, sku: str, attempts: int, last_error: str, at: datetime
) -> OutboxEvent:
    message = events_pb2.LabelSyncGivenUp(
        store_id=store_id,
        label_id=label_id,
        sku=sku,
        attempts=attempts,
        last_error=last_error,
        occurred_at=timestamp(at),
    )
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.label_sync_given_up.{store_id}",
        message,
        aggregate_id=f"label:{store_id}:{label_id}",
        occurred_at=at,
    )


def markdown_suggested(suggestion: StoredMarkdown, at: datetime) -> OutboxEvent:
    message = events_pb2.MarkdownSuggested(suggestion=wire.map_markdown(suggestion), occurred_at=timestamp(at))
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.markdown_suggested",
        message,
        aggregate_id=f"markdown:{suggestion.store_id}",
        occurred_at=at,
    )
