"""The pricing service's part of the demo retailer: stores, the catalogue, base prices and promotions.

Loaded with the service's own code over a unit of work, not around it: stores and items go
through :class:`Pricing` (PutStore and PutItem semantics, events in the outbox), and each
SKU's rules through :meth:`Pricing.set_prices` with its book deferred: the scheduler then
computes the price books in batches of SKUs rather than once per SKU (thousands of SKUs
times dozens of stores). Every store
prices in CNY in the price group of its region. A demo promotion becomes a PercentOff rule
per store it runs in, for its dates in China time; only those still running or yet to come
are loaded (the online shop is not a store). Loading twice changes nothing: unchanged
stores, items and rule sets are left alone. ``DEMO_LABEL_STATION_URL`` (the local stack's
batch label-station simulator) gives the first store that station and links demo labels.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from demodata import CHINA_STANDARD_TIME, DemoRetailer, LocationKind, Promotion, Sku
from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.settings import Environment, load_settings
from services.pricing.adapters import pricing_store
from services.pricing.adapters.pricing_store import StoreRow
from services.pricing.bootstrap import PricingServices, wire
from services.pricing.domain.catalogue import Item
from services.pricing.domain.commands import Actor, RuleDraft, SetPrices
from services.pricing.domain.promotions import PercentOff
from services.pricing.domain.rules import PriceRule, RuleKind, Scope
from services.pricing.settings import PricingSettings

CURRENCY = "CNY"
DEMO_ACTOR = Actor(client_id="demo-loader", headquarters=True)
LABEL_STATION_ENV = "DEMO_LABEL_STATION_URL"
DEMO_LABELS = 300
"""Labels linked to the first store's SKUs when a label station is given (ids L0000000...)."""
_CHUNK = 200
_HUNDRED = Decimal(100)


async def load_demo(
    database_url: str,
    retailer: DemoRetailer,
    state_dir: Path | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    label_station_url: str | None = None,
) -> dict[str, Any]:
    """Load the demo retailer's stores, items, prices and current promotions; idempotent."""
    station_url = label_station_url if label_station_url is not None else os.environ.get(LABEL_STATION_ENV, "")
    settings = load_settings(
        PricingSettings,
        app_env=os.environ.get("APP_ENV", Environment.LOCAL.value),
        database_url=database_url,
        nats_url=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
    )
    engine = create_engine(database_url, pool_size=2, max_overflow=0, application_name="demo-loader")
    unit_of_work = units_of_work(engine)

    # The whole load happens as of one moment: every timer it leaves for a SKU is then one
    # timer (not one per new store), and the scheduler computes each book entry once.
    now = clock()
    services = wire(settings, unit_of_work, clock=lambda: now)
    try:
        promotions = current_promotions(retailer, now)
        chunks = [retailer.skus[start : start + _CHUNK] for start in range(0, len(retailer.skus), _CHUNK)]
        items = sum([await _load_items(services, unit_of_work, chunk) for chunk in chunks])
        stores = await _load_stores(services, unit_of_work, retailer, station_url.rstrip("/"))
        priced = sum([await _load_prices(services, unit_of_work, chunk, promotions) for chunk in chunks])
        # Every repriced SKU, and every SKU when a store was added, has a timer due now: the
        # scheduler computes those book entries in batches, as the running service would.
        book_entries = await services.scheduler.run_due()
        # The running service's scheduler may have computed some (or all) of them first; run_due
        # returns only once no due timer is left, so the books are complete either way.
        async with unit_of_work() as uow:
            books = await pricing_store.count_book_entries(uow.session)
        labels = await _link_labels(services, unit_of_work, retailer) if station_url else 0
    finally:
        await services.stations.close()
        await engine.dispose()
    return {
        "stores": sum(location.kind is LocationKind.STORE for location in retailer.locations),
        "stores_changed": stores,
        "items_changed": items,
        "skus_repriced": priced,
        "promotion_rules": sum(len(rules) for rules in promotions.values()),
        "book_entries_changed": book_entries,
        "book_entries": books,
        "labels_linked": labels,
        "label_station": station_url or None,
    }


def fen(amount: Decimal) -> int:
    """Yuan with at most two places as whole fen; anything finer is refused, never rounded."""
    value = amount * _HUNDRED
    if value != value.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of fen")
    return int(value)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=CHINA_STANDARD_TIME)


def current_promotions(retailer: DemoRetailer, now: datetime) -> dict[str, list[RuleDraft]]:
    """Per SKU, the demo promotions still running or still to come, as PercentOff drafts per store."""
    store_ids = {location.location_id for location in retailer.locations if location.kind is LocationKind.STORE}
    drafts: dict[str, list[RuleDraft]] = defaultdict(list)
    for promotion in retailer.promotions:
        valid_from, valid_to = _day_start(promotion.start), _day_start(promotion.end + timedelta(days=1))
        if valid_to <= now:
            continue
        if store_drafts := list(_store_drafts(promotion, store_ids, valid_from, valid_to)):
            drafts[promotion.sku_code].extend(store_drafts)
    return dict(drafts)


def _store_drafts(
    promotion: Promotion, store_ids: set[str], valid_from: datetime, valid_to: datetime
) -> Iterable[RuleDraft]:
    # Online-only promotions name no store: pricing knows stores only.
    mechanic = PercentOff(promotion.discount_rate * _HUNDRED)
    for location_id in sorted(set(promotion.location_ids) & store_ids):
        yield RuleDraft(
            Scope(store_id=location_id), 0, valid_from, valid_to, mechanic=mechanic, name=promotion.name.strip()[:120]
        )


async def _load_stores(
    services: PricingServices, unit_of_work: Callable[[], UnitOfWork], retailer: DemoRetailer, station_url: str
) -> int:
    changed = 0
    async with unit_of_work() as uow:
        existing = {store.store_id: store for store in await pricing_store.all_stores(uow.session)}
        stores = [location for location in retailer.locations if location.kind is LocationKind.STORE]
        for index, location in enumerate(stores):
            station = station_url if index == 0 else ""
            store = StoreRow(
                store_id=location.location_id,
                name=location.name,
                price_groups=(location.region,),
                currency=CURRENCY,
                label_station_kind="batch" if station else "",
                label_station_url=station,
                book_version=0,
            )
            before = existing.get(store.store_id)
            if before is not None and dataclasses.replace(store, book_version=before.book_version) == before:
                continue
            await services.pricing.put_store(uow, store)
            changed += 1
        await uow.commit()
    return changed


def _item(sku: Sku) -> Item:
    return Item.create(
        sku=sku.sku_code,
        name=sku.name,
        category=sku.category_code,
        barcode=sku.barcode,
        unit=sku.unit.value,
        cost_fen=fen(sku.cost_price),
        supplier_id=sku.supplier_id,
        store_ids=(),
        active=True,
    )


def _meaning(kind: RuleKind, draft: RuleDraft) -> Hashable:
    # A rule without its id and sequence; aware datetimes compare (and hash) equal across time zones.
    return (
        kind,
        draft.scope,
        draft.priority,
        draft.valid_from,
        draft.valid_to,
        draft.price_fen,
        draft.mechanic,
        draft.name,
    )


def _stored_meaning(rule: PriceRule) -> Hashable:
    draft = RuleDraft(
        rule.scope,
        rule.priority,
        rule.valid_from,
        rule.valid_to,
        price_fen=rule.price_fen,
        mechanic=rule.mechanic,
        name=rule.name,
    )
    return _meaning(rule.kind, draft)


async def _load_items(services: PricingServices, unit_of_work: Callable[[], UnitOfWork], skus: Sequence[Sku]) -> int:
    """One transaction per chunk of SKUs; an unchanged item is left alone (PutItem semantics)."""
    changed = 0
    async with unit_of_work() as uow:
        for sku in skus:
            _, created_or_changed = await services.pricing.put_item(uow, _item(sku))
            changed += created_or_changed
        await uow.commit()
    return changed


async def _load_prices(
    services: PricingServices,
    unit_of_work: Callable[[], UnitOfWork],
    skus: Sequence[Sku],
    promotions: dict[str, list[RuleDraft]],
) -> int:
    """A chunk of SKUs' rules through SetPrices (base price, then store promotions), leaving each
    SKU's book entries to the scheduler, which does them in batches. SKUs whose rules already
    say the same are not touched."""
    async with unit_of_work() as uow:
        codes = [sku.sku_code for sku in skus]
        stored = await pricing_store.rules_of(uow.session, codes)
        changed = 0
        for sku in skus:
            drafts = promotions.get(sku.sku_code, [])
            wanted = [
                (RuleKind.REGULAR, RuleDraft(Scope(), 0, None, None, price_fen=fen(sku.base_price))),
                *((RuleKind.PROMOTION, draft) for draft in drafts),
            ]
            current = stored.get(sku.sku_code, [])
            same = Counter(map(_stored_meaning, current)) == Counter(_meaning(kind, draft) for kind, draft in wanted)
            if same and all(rule.currency == CURRENCY for rule in current):
                continue
            command = SetPrices(
                sku=sku.sku_code, currency=CURRENCY, base_price_fen=fen(sku.base_price), overrides=(), promotions=drafts
            )
            await services.pricing.set_prices(uow, command, DEMO_ACTOR, defer_book=True)
            changed += 1
        await uow.commit()
    return changed


async def _link_labels(
    services: PricingServices, unit_of_work: Callable[[], UnitOfWork], retailer: DemoRetailer
) -> int:
    """Link the station's first labels to the first store's SKUs (one label per SKU, unchanged when linked)."""
    store_id = retailer.stores[0].location_id
    skus = [sku.sku_code for sku in retailer.skus[:DEMO_LABELS]]
    linked = 0
    async with unit_of_work() as uow:
        for number, sku in enumerate(skus):
            _, created = await services.labels.put_label(uow, store_id, f"L{number:07d}", sku, "")
            linked += created
        await uow.commit()
    return linked
