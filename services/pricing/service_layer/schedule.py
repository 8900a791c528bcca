"""The moments at which prices change: due scheduled changes and rule window edges.

:meth:`Scheduler.run_due` applies every scheduled change whose moment has come (it becomes
the regular price of its scope: the chain-wide base price, or an override per store and
channel) and recomputes every SKU whose rule window opened or closed, then advances the
affected books (see :mod:`book`). Work is claimed with ``SKIP LOCKED``, in batches of
SKUs per transaction, so replicas share it and a crash loses nothing: an unapplied change
or an unconsumed window edge is still there for the next round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from servicekit.db import UnitOfWork
from services.pricing.adapters import pricing_store
from services.pricing.adapters.pricing_store import ChangeRow
from services.pricing.domain.rules import Channel, PriceRule, RuleKind, Scope
from services.pricing.service_layer import book

Clock = Callable[[], datetime]


class Scheduler:
    """``on_changed`` is called after each committed batch that changed book entries (their labels
    have new content to push: the label pusher need not wait for its next poll)."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        batch: int,
        clock: Clock,
        on_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._uow = unit_of_work
        self._batch = batch
        self._clock = clock
        self._on_changed = on_changed

    async def run_due(self) -> int:
        """Apply what is due now, batch after batch; the number of book entries that changed."""
        changed = 0
        while True:
            done, entries = await self._one_batch()
            changed += entries
            if not done:
                return changed

    async def _one_batch(self) -> tuple[bool, int]:
        now = self._clock()
        async with self._uow() as uow:
            changes = await pricing_store.claim_due_changes(uow.session, now, self._batch)
            timer_skus = await pricing_store.due_timer_skus(uow.session, now, self._batch)
            if not changes and not timer_skus:
                return False, 0
            skus = sorted({change.sku for change in changes} | set(timer_skus))
            items = await pricing_store.lock_items(uow.session, skus)
            await pricing_store.clear_due_timers(uow.session, timer_skus, now)
            stores = await pricing_store.all_stores(uow.session)
            await _apply(uow, changes)
            every_store = [store.store_id for store in stores]
            causes = {
                (store_id, change.sku): (change.change_id, change.effective_at)
                for change in changes
                for store_id in change.store_ids or every_store
            }
            result = await book.refresh(uow, skus, now, items=items, stores=stores, causes=causes)
            await pricing_store.mark_changes_applied(uow.session, [change.change_id for change in changes], now)
            await uow.commit()
        if result.changed:
            self._on_changed()
        return True, result.changed

    async def next_due(self) -> datetime | None:
        async with self._uow() as uow:
            return await pricing_store.next_timer(uow.session)

    async def seconds_until_due(self) -> float | None:
        """Until the next scheduled change or window edge (negative: due already), so that the
        schedule's round starts at a change's effective moment rather than up to a poll later."""
        due = await self.next_due()
        return None if due is None else (due - self._clock()).total_seconds()


async def _apply(uow: UnitOfWork, changes: Sequence[ChangeRow]) -> None:
    """Each change becomes the open-ended regular price of its scope, as if applied one after the
    other in effective order (a later change of the same scope wins), in two statements for all."""
    latest: dict[tuple[str, str | None, str | None, str], ChangeRow] = {}
    for change in changes:
        for store_id in change.store_ids or (None,):
            latest[(change.sku, store_id, change.channel, change.currency)] = change
    sequences = await pricing_store.next_rule_sequence(uow.session, len(latest))
    rules = [
        (
            PriceRule(
                rule_id=f"R{sequence}",
                sku=sku,
                kind=RuleKind.REGULAR,
                scope=Scope(store_id=store_id, channel=Channel(channel) if channel else None),
                currency=currency,
                sequence=sequence,
                price_fen=change.price_fen,
            ),
            change.change_id,
        )
        for ((sku, store_id, channel, currency), change), sequence in zip(latest.items(), sequences, strict=True)
    ]
    await pricing_store.set_regular_prices(uow.session, rules)
