"""Each store's POS price book, kept materialised, and what follows when an entry changes.

A book entry is what a store's tills charge for a SKU now: the regular price and running
promotion for the store channel, the price per member tier, and the item's name, barcode
and unit. :func:`refresh` recomputes the entries of some SKUs in every store that lists
them, at one moment; where an entry differs from the stored one, the store's book version
advances (once per store and transaction), the entry is stamped with it, a
``PriceChanged`` is written to the outbox and every label showing the SKU in that store is
given its new content to push. Callers hold the items' row locks (see pricing_store).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from servicekit.db import UnitOfWork
from servicekit.errors import FailedPrecondition
from services.pricing.adapters import book_entries, label_store, pricing_store
from services.pricing.adapters.book_entries import BookRow
from services.pricing.adapters.esl.base import LabelContent
from services.pricing.adapters.integration_events import PriceChangedBatch
from services.pricing.adapters.pricing_store import StoredItem, StoreRow
from services.pricing.domain.price_book import BookEntry
from services.pricing.domain.rules import MEMBER_TIERS, Channel, EffectivePrice, PriceContext, PriceRule, RuleSet


@dataclass(frozen=True)
class Computed:
    """One store's entry for one SKU: the entry without its version, or None when the SKU is not in the book."""

    entry: BookEntry | None
    price: EffectivePrice | None
    item: StoredItem

    def serialized(self) -> bytes:
        return book_entries.encode(self.entry)


def listed(item: StoredItem, store: StoreRow) -> bool:
    return item.item.active and item.item.listed_in(store.store_id)


def compute_entry(
    item: StoredItem, rules: RuleSet, store: StoreRow, at: datetime, sku_rules: Sequence[PriceRule] = ()
) -> Computed:
    if not listed(item, store):
        return Computed(None, None, item)
    context = PriceContext(
        sku=item.item.sku,
        store_id=store.store_id,
        store_groups=frozenset(store.price_groups),
        channel=Channel.STORE,
        member_tier=None,
        at=at,
        currency=store.currency,
    )
    try:
        price = rules.price(context, Decimal(1))
    except FailedPrecondition:  # no regular price here: the SKU is not sold
        return Computed(None, None, item)
    member_prices = []
    for tier in MEMBER_TIERS:
        tier_price = rules.price(dataclasses.replace(context, member_tier=tier), Decimal(1))
        if tier_price.unit_price_fen != price.unit_price_fen:
            member_prices.append((tier, tier_price.unit_price_fen))
    promotion = price.promotion
    entry = BookEntry(
        sku=item.item.sku,
        name=item.item.name,
        barcode=item.item.barcode,
        unit=item.item.unit.value,
        currency=store.currency,
        regular_price_fen=price.regular_price_fen,
        unit_price_fen=price.unit_price_fen,
        promotion=promotion,
        promotion_text=promotion.mechanic.display_text() if promotion is not None and promotion.mechanic else "",
        member_prices=tuple(member_prices),
        valid_until=min((moment for _, moment in rule_boundaries(sku_rules, at)), default=None),
    )
    return Computed(entry, price, item)


def label_content(entry: BookEntry | None, template: str) -> LabelContent | None:
    """What a label showing this book entry displays: the till price, and during a promotion
    the regular price crossed out. Derived from the entry alone, so a label linked later gets
    exactly the content (and digest) a refresh would have given it."""
    if entry is None:
        return None
    unit_price = entry.unit_price_fen
    regular = entry.regular_price_fen
    return LabelContent(
        sku=entry.sku,
        name=entry.name,
        unit=entry.unit,
        barcode=entry.barcode,
        currency=entry.currency,
        price_fen=unit_price,
        regular_price_fen=regular if unit_price < regular else None,
        promotion_text=entry.promotion_text,
        template=template,
    )


@dataclass(frozen=True)
class RefreshResult:
    changed: int
    versions: dict[str, int]


async def refresh(
    uow: UnitOfWork,
    skus: Iterable[str],
    at: datetime,
    *,
    items: dict[str, StoredItem] | None = None,
    stores: Sequence[StoreRow] | None = None,
    causes: Mapping[tuple[str, str], tuple[str, datetime]] | None = None,
) -> RefreshResult:
    """Recompute the book entries of ``skus`` (whose item rows the caller has locked) at ``at``.

    ``causes`` names, per (store, SKU), the scheduled change (id, effective moment) that made it change.
    """
    session = uow.session
    wanted = sorted(set(skus))
    if not wanted:
        return RefreshResult(0, {})
    if items is None:
        items = await pricing_store.get_items(session, wanted)
    if stores is None:
        stores = await pricing_store.all_stores(session)
    rules_by_sku = await pricing_store.rules_of(session, wanted)
    rules = RuleSet.of(rule for sku_rules in rules_by_sku.values() for rule in sku_rules)
    stored = await book_entries.book_rows(session, wanted, [store.store_id for store in stores])
    changed: dict[str, list[tuple[str, Computed, bytes, LabelContent | None, BookRow | None]]] = {}
    # Stores in which a SKU has the same rules (a chain-wide price: every store) get the same entry:
    # computed, serialized and turned into label content once, not once per store.
    computed_for: dict[tuple[object, ...], tuple[Computed, bytes, LabelContent | None]] = {}
    for store in stores:
        groups = frozenset(store.price_groups)
        for sku in wanted:
            item = items.get(sku)
            if item is None:
                continue
            sku_rules = rules_by_sku.get(sku, ())
            key = (sku, listed(item, store), store.currency, *_rules_in_reach(sku_rules, store.store_id, groups))
            known = computed_for.get(key)
            if known is None:
                computed = compute_entry(item, rules, store, at, sku_rules)
                known = computed_for[key] = (computed, computed.serialized(), label_content(computed.entry, ""))
            computed, serialized, content = known
            before = stored.get((store.store_id, sku))
            if before is None and computed.entry is None:
                continue
            if before is not None and before.entry == serialized and before.removed == (computed.entry is None):
                continue
            changed.setdefault(store.store_id, []).append((sku, computed, serialized, content, before))
    if not changed:
        return RefreshResult(0, {})
    versions = await pricing_store.advance_book_versions(session, list(changed))
    store_by_id = {store.store_id: store for store in stores}
    rows: list[BookRow] = []
    contents: list[tuple[str, str, LabelContent | None]] = []
    events = PriceChangedBatch(at)
    causes = causes or {}
    for store_id, entries in changed.items():
        version = versions[store_id]
        currency = store_by_id[store_id].currency
        for sku, computed, serialized, content, before in entries:
            price = computed.price
            rows.append(
                BookRow(
                    store_id, sku, version, computed.entry is None, price.unit_price_fen if price else None, serialized
                )
            )
            change_id, effective_at = causes.get((store_id, sku), ("", at))
            uow.publish(
                events.event(
                    store_id=store_id,
                    sku=sku,
                    old_unit_price_fen=before.unit_price_fen if before is not None and not before.removed else None,
                    price=price,
                    currency=currency,
                    version=version,
                    change_id=change_id,
                    effective_at=effective_at,
                )
            )
            contents.append((store_id, sku, content))
    await label_store.set_desired(session, contents, at)
    await book_entries.upsert_book_rows(session, rows)
    return RefreshResult(len(rows), versions)


def _rules_in_reach(rules: Iterable[PriceRule], store_id: str, groups: frozenset[str]) -> list[str]:
    """The rules whose location takes in the store (chain-wide, the store's, its groups'): with the item,
    the currency and the moment, all an entry depends on (the store id and groups only select these)."""
    return [
        rule.rule_id
        for rule in rules
        if (rule.scope.store_id is None or rule.scope.store_id == store_id)
        and (rule.scope.store_group is None or rule.scope.store_group in groups)
    ]


def rule_boundaries(rules: Iterable[PriceRule], after: datetime) -> list[tuple[str, datetime]]:
    """(SKU, moment) of every rule window edge after ``after``: the book must be recomputed then."""
    moments: list[tuple[str, datetime]] = []
    for rule in rules:
        for edge in (rule.valid_from, rule.valid_to):
            if edge is not None and edge > after:
                moments.append((rule.sku, edge))
    return moments
