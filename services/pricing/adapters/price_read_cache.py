"""Effective prices read through an in-process cache of items and price rules, never staler than a commit.

An effective price needs the store row, the items and their rules. Rules and items change
rarely (a price change, a catalogue edit) and are read on every basket, so each process keeps
them in memory per SKU, tagged with the database's **price read generation**: one number that
the commit of every transaction changing ``price_rule`` or ``item`` raises (deferred triggers,
migration ``pricing_0004``), whichever replica or tool made the change.

Every read asks the generation together with the store row, in one statement (the store row
itself is never cached: its groups and currency are read fresh each time). Cached SKUs are
used only while the generation is the one they were loaded under; a higher one drops the
whole cache. Staleness bound: **none after a commit**. A read that starts after a change has
committed sees that change's generation and reloads; a read running while the change
commits may answer either, exactly as reading the tables would. A load that started under
an older generation never writes into a newer cache, and a read that finds an older
generation than the cache holds (its statement's snapshot predates a newer read's) reads
the database directly.

Reads run outside a transaction (``UnitOfWork.read``), so a miss's load may see a later
snapshot than its generation. That errs on the safe side only: what it keeps under
generation G is at least as new as G, and the commit that made it newer also raised the
generation, which drops it on the next read.

What is cached per SKU: the item, and the rules that had not ended when they were loaded
(window, currency, channel and tier are decided by the domain at the question's moment, so
time passing needs no invalidation; a question about a moment before the load reads the
database). Rules are indexed by location — chain-wide, per store, per store group — so a
store's question looks at its own rules only, as ``rules_for_store`` does in SQL. At most
``max_skus`` SKUs are kept (the oldest loaded go first).

Beside the rules, the cache keeps the service's **decisions** (``Decision``: which regular rule
and promotion win for a SKU in one store — its id, groups and currency as read this time —
channel and member tier, and the window of moments they keep winning in), so that a basket
line of a SKU priced before is a dictionary look-up and the line's arithmetic instead of the
rules' evaluation. A decision is derived from the cached rules of one generation and is
dropped with them (a higher generation empties both), so its staleness bound is theirs:
**none after a commit**. It is used only at moments inside its window, which never starts
before its SKU was loaded (questions about earlier moments evaluate the rules, or read the
database as above). At most ``max_decisions`` are kept (default as many as ``max_skus``,
about 300 bytes each; the oldest go first).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.pricing.adapters import pricing_store
from services.pricing.adapters.pricing_store import StoredItem, StoreRow
from services.pricing.domain.rules import Decision, PriceRule


@dataclass(frozen=True)
class CachedSku:
    """One SKU as loaded at ``loaded_at``: its item (None: unknown) and its rules by location."""

    item: StoredItem | None
    loaded_at: datetime
    chain: tuple[PriceRule, ...] = ()
    by_store: dict[str, tuple[PriceRule, ...]] = field(default_factory=dict)
    by_group: dict[str, tuple[PriceRule, ...]] = field(default_factory=dict)

    def rules_for(self, store: StoreRow) -> list[PriceRule]:
        rules = [*self.chain, *self.by_store.get(store.store_id, ())]
        for group in store.price_groups:
            rules.extend(self.by_group.get(group, ()))
        return rules


def cached_sku(item: StoredItem | None, rules: Iterable[PriceRule], loaded_at: datetime) -> CachedSku:
    chain: list[PriceRule] = []
    by_store: dict[str, list[PriceRule]] = {}
    by_group: dict[str, list[PriceRule]] = {}
    for rule in rules:
        if rule.scope.store_id is not None:
            by_store.setdefault(rule.scope.store_id, []).append(rule)
        elif rule.scope.store_group is not None:
            by_group.setdefault(rule.scope.store_group, []).append(rule)
        else:
            chain.append(rule)
    return CachedSku(
        item,
        loaded_at,
        tuple(chain),
        {store_id: tuple(found) for store_id, found in by_store.items()},
        {group: tuple(found) for group, found in by_group.items()},
    )


@dataclass(frozen=True)
class PriceInputs:
    """What pricing a basket needs: the store (None: unknown), each SKU as loaded, and the
    ``decisions`` kept for the generation they were read under (None when the cache was bypassed)."""

    store: StoreRow | None
    skus: dict[str, CachedSku]
    decisions: dict[Hashable, Decision] | None = None

    @property
    def items(self) -> dict[str, StoredItem]:
        """The items found (an unknown SKU has none)."""
        return {sku: entry.item for sku, entry in self.skus.items() if entry.item is not None}

    def rules(self) -> dict[str, list[PriceRule]]:
        """Each SKU's rules that can apply in the store."""
        assert self.store is not None
        return {sku: entry.rules_for(self.store) for sku, entry in self.skus.items()}

    @property
    def since(self) -> datetime:
        """The earliest moment these inputs answer for (the latest load among the SKUs)."""
        return max(entry.loaded_at for entry in self.skus.values())


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    bypasses: int = 0
    invalidations: int = 0
    decisions_dropped: int = 0


class PriceReadCache:
    def __init__(self, max_skus: int, *, max_decisions: int | None = None) -> None:
        self._max_skus = max_skus
        self._max_decisions = max_skus if max_decisions is None else max_decisions
        self._generation = 0
        self._skus: dict[str, CachedSku] = {}
        self._decisions: dict[Hashable, Decision] = {}
        self.stats = CacheStats()

    async def read(self, session: AsyncSession, store_id: str, skus: Sequence[str], at: datetime) -> PriceInputs:
        """The store, the SKUs' items and their rules that can apply in the store, as of now (``at``)."""
        return (await self.read_many(session, [(store_id, skus)], at))[0]

    async def read_many(
        self, session: AsyncSession, baskets: Sequence[tuple[str, Sequence[str]]], at: datetime
    ) -> list[PriceInputs]:
        """``read`` of each (store, SKUs), with one statement for the stores and the generation and
        one load for every SKU missed."""
        stores, generation = await pricing_store.stores_and_read_generation(
            session, sorted({store_id for store_id, _ in baskets})
        )
        if generation > self._generation:
            if self._skus or self._decisions:
                self.stats.invalidations += 1
            self._skus, self._decisions, self._generation = {}, {}, generation
        usable = self._max_skus > 0 and generation == self._generation
        found: dict[str, CachedSku] = {}
        wanted: set[str] = set()
        for store_id, skus in baskets:
            if store_id not in stores:
                continue
            missed = False
            for sku in skus:
                entry = self._skus.get(sku) if usable else None
                if entry is not None and entry.loaded_at <= at:
                    found[sku] = entry
                elif sku not in found:
                    wanted.add(sku)
                    missed = True
            if not usable:
                self.stats.bypasses += 1
            elif missed:
                self.stats.misses += 1
            else:
                self.stats.hits += 1
        if wanted:
            loaded = await _load(session, sorted(wanted), at)
            found.update(loaded)
            if usable and generation == self._generation:
                self._keep(loaded)
        current = usable and generation == self._generation and self._max_decisions > 0
        decisions = self._decisions if current else None
        return [
            PriceInputs(stores[store_id], {sku: found[sku] for sku in skus}, decisions)
            if store_id in stores
            else PriceInputs(None, {})
            for store_id, skus in baskets
        ]

    @property
    def decisions_kept(self) -> int:
        return len(self._decisions)

    def trim_decisions(self) -> None:
        """Drop the oldest kept decisions beyond ``max_decisions`` (a quarter more, so that a
        full cache is not trimmed on every basket)."""
        overflow = len(self._decisions) - self._max_decisions
        if overflow > 0:
            overflow += self._max_decisions // 4
            for key in list(self._decisions)[:overflow]:
                del self._decisions[key]
            self.stats.decisions_dropped += overflow

    def _keep(self, loaded: dict[str, CachedSku]) -> None:
        self._skus.update(loaded)
        overflow = len(self._skus) - self._max_skus
        if overflow > 0:
            for sku in list(self._skus)[:overflow]:  # dicts keep insertion order: the oldest loaded first
                del self._skus[sku]


async def _load(session: AsyncSession, skus: Sequence[str], at: datetime) -> dict[str, CachedSku]:
    items = await pricing_store.get_items(session, skus)
    rules = await pricing_store.rules_not_ended(session, skus, at)
    return {sku: cached_sku(items.get(sku), rules.get(sku, ()), at) for sku in skus}
