"""Markdown suggestions: overstock and slow movers found by inventory become suggested price
cuts for staff to approve; an approved one becomes a scheduled price change of its store.

A new alert for a store and SKU replaces its open suggestion (one open suggestion per store
and SKU); a suggestion the minimum margin leaves no room for is not made at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from servicekit.db import UnitOfWork
from servicekit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.pricing.adapters import integration_events as events
from services.pricing.adapters import markdown_store, pricing_store
from services.pricing.adapters.pricing_store import ChangeRow
from services.pricing.domain.commands import Actor, ScheduleChange
from services.pricing.domain.markdown import StoredMarkdown, suggest_markdown
from services.pricing.domain.rules import Channel, PriceContext, RuleSet
from services.pricing.service_layer.pricing import Pricing

Clock = Callable[[], datetime]
MARKDOWN_STATES = ("open", "approved", "rejected", "withdrawn")


@dataclass(frozen=True)
class OverstockAlert:
    store_id: str
    sku: str
    days_of_cover: Decimal  # Infinity when nothing is expected to sell
    overstock_cover_days: Decimal


class Markdowns:
    def __init__(
        self, unit_of_work: Callable[[], UnitOfWork], pricing: Pricing, *, min_margin: Decimal, clock: Clock
    ) -> None:
        self._uow = unit_of_work
        self._pricing = pricing
        self._min_margin = min_margin
        self._clock = clock

    async def on_overstock(self, uow: UnitOfWork, alert: OverstockAlert) -> StoredMarkdown | None:
        """Suggest a markdown for an overstocked SKU of a store (if pricing knows both and the margin allows)."""
        session = uow.session
        store = await pricing_store.get_store(session, alert.store_id)
        item = (await pricing_store.get_items(session, [alert.sku])).get(alert.sku)
        if store is None or item is None or not item.item.sellable_in(store.store_id):
            return None  # not a store pricing serves (a warehouse, the online shop) or not sold there
        now = self._clock()
        rules = RuleSet.of((await pricing_store.rules_of(session, [alert.sku])).get(alert.sku, []))
        context = PriceContext(
            sku=alert.sku,
            store_id=store.store_id,
            store_groups=frozenset(store.price_groups),
            channel=Channel.STORE,
            member_tier=None,
            at=now,
            currency=store.currency,
        )
        try:
            regular = rules.regular_rule(context).price_fen or 0
        except FailedPrecondition:
            return None
        threshold = max(1, int(alert.overstock_cover_days))
        suggestion = suggest_markdown(
            sku=alert.sku,
            store_id=store.store_id,
            regular_price_fen=regular,
            cost_fen=item.item.cost_fen,
            days_of_cover=alert.days_of_cover,
            overstock_threshold_days=threshold,
            min_margin=self._min_margin,
        )
        await markdown_store.withdraw_open(session, store.store_id, alert.sku, now)
        if suggestion is None:
            return None
        suggested = await markdown_store.insert(
            session, f"MD{uuid.uuid4().hex[:20].upper()}", suggestion, current_price_fen=regular, now=now
        )
        uow.publish(events.markdown_suggested(suggested, now))
        return suggested

    async def list(self, store_id: str, state: str, after_sku: str, limit: int) -> list[StoredMarkdown]:
        if state not in MARKDOWN_STATES:
            raise InvalidArgument(f"state must be one of {', '.join(MARKDOWN_STATES)}", details={"field": "state"})
        async with self._uow() as uow:
            if await pricing_store.get_store(uow.session, store_id) is None:
                raise NotFound(f"unknown store {store_id}", reason="unknown-store")
            return await markdown_store.list_of_store(uow.session, store_id, state, after_sku, limit)

    async def decide(
        self, uow: UnitOfWork, markdown_id: str, approve: bool, effective_at: datetime | None, actor: Actor
    ) -> tuple[StoredMarkdown, ChangeRow | None]:
        suggestion = await markdown_store.lock(uow.session, markdown_id)
        if suggestion is None:
            raise NotFound(f"unknown markdown suggestion {markdown_id}", reason="unknown-markdown")
        if not actor.headquarters and actor.store_id != suggestion.store_id:
            raise PermissionDenied("only headquarters or the store's own staff decide its markdowns")
        if suggestion.state != "open":
            raise FailedPrecondition(f"the suggestion is {suggestion.state}, not open", reason="markdown-not-open")
        now = self._clock()
        change = None
        if approve:
            moment = effective_at or now + timedelta(seconds=1)
            change = await self._pricing.schedule_change(
                uow,
                ScheduleChange(
                    sku=suggestion.sku,
                    price_fen=suggestion.suggested_price_fen,
                    effective_at=moment,
                    store_ids=(suggestion.store_id,),
                    channel=Channel.STORE,
                    markdown_id=markdown_id,
                ),
                Actor(actor.client_id, suggestion.store_id, actor.headquarters),
            )
        decided = await markdown_store.record_decision(
            uow.session,
            markdown_id,
            state="approved" if approve else "rejected",
            change_id=change.change_id if change else None,
            decided_by=actor.client_id,
            now=now,
        )
        return decided, change
