"""Pricing commands and questions: stores, the catalogue, price rules, scheduled changes,
effective prices, and each store's POS price book.

Mutating commands run in the caller's unit of work (a command handler of :mod:`handlers`
opens and commits it, the demo loader batches many); questions open their own. A command
that changes what a SKU costs locks the SKU's item row first and recomputes its book entries
in the same transaction, so the book, its events and the labels' desired content never
disagree with the rules.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from servicekit.db import UnitOfWork
from servicekit.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.pricing.adapters import book_entries, pricing_store
from services.pricing.adapters import integration_events as events
from services.pricing.adapters.book_entries import BookRow
from services.pricing.adapters.price_read_cache import PriceInputs, PriceReadCache, cached_sku
from services.pricing.adapters.pricing_store import ChangeRow, StoredItem, StoreRow
from services.pricing.domain.catalogue import Item, validate_sku
from services.pricing.domain.commands import Actor, Question, RuleDraft, ScheduleChange, SetPrices
from services.pricing.domain.guard_rails import check_guard_rails
from services.pricing.domain.money import validate_currency
from services.pricing.domain.rules import (
    Decision,
    EffectivePrice,
    PriceContext,
    PriceRule,
    RuleKind,
    RuleSet,
    Scope,
    check_conflicts,
    validate_quantity,
)
from services.pricing.service_layer import book

Clock = Callable[[], datetime]
MAX_BASKET_LINES = 200
MAX_OVERRIDE_REASON = 500
_STATION_KINDS = ("", "openepaperlink", "batch")


class UnknownStore(NotFound):
    reason = "unknown-store"


class UnknownSku(NotFound):
    reason = "unknown-sku"


class NotListed(FailedPrecondition):
    reason = "sku-not-listed"


@dataclass(frozen=True)
class BookPage:
    store_id: str
    version: int
    not_modified: bool
    delta: bool
    rows: list[BookRow]
    next_sku: str


@dataclass(frozen=True)
class StoreVersions:
    """What a store's POS terminals compare with their cached copies."""

    store_id: str
    price_book_version: int
    catalogue_version: int


class Pricing:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        min_margin: Decimal,
        clock: Clock,
        read_cache: PriceReadCache | None = None,
    ) -> None:
        self._uow = unit_of_work
        self._min_margin = min_margin
        self._clock = clock
        self.read_cache = read_cache or PriceReadCache(max_skus=0)

    # -- stores ------------------------------------------------------------------------------

    async def put_store(self, uow: UnitOfWork, store: StoreRow) -> tuple[StoreRow, bool]:
        if not store.name.strip() or len(store.name) > 120:
            raise InvalidArgument("name must be 1-120 characters", details={"field": "name"})
        validate_currency(store.currency)
        if store.label_station_kind not in _STATION_KINDS:
            raise InvalidArgument(
                f"label_station_kind {store.label_station_kind!r} must be openepaperlink or batch",
                reason="invalid-station",
                details={"field": "label_station_kind"},
            )
        if bool(store.label_station_kind) != bool(store.label_station_url):
            raise InvalidArgument("a label station needs both a kind and a URL", reason="invalid-station")
        if store.label_station_url and not store.label_station_url.startswith(("http://", "https://")):
            raise InvalidArgument("label_station_url must be an http(s) URL", reason="invalid-station")
        now = self._clock()
        before = await pricing_store.get_store(uow.session, store.store_id)
        if (
            before is None
            or sorted(before.price_groups) != sorted(store.price_groups)
            or before.currency != store.currency
        ):
            # Its groups or currency change: every SKU's entry there, soon, in batches. Timers are
            # added before the store row is locked (the scheduler takes items, then stores; a
            # writer holding a store row must not wait for a timer the scheduler is consuming).
            skus = await pricing_store.all_skus(uow.session)
            await pricing_store.add_timers(uow.session, ((sku, now) for sku in skus))
        return await pricing_store.upsert_store(uow.session, store, now), before is None

    # -- catalogue ---------------------------------------------------------------------------

    async def put_item(self, uow: UnitOfWork, item: Item) -> tuple[StoredItem, bool]:
        now = self._clock()
        before = (await pricing_store.lock_items(uow.session, [item.sku])).get(item.sku)
        unknown = await pricing_store.unknown_stores(uow.session, item.store_ids)
        if unknown:
            raise UnknownStore(f"unknown stores {', '.join(unknown)}", details={"store_ids": unknown})
        if before is not None and before.item == item:
            return before, False
        stored = await pricing_store.save_item(uow.session, item, now)
        uow.publish(events.item_changed(stored, before is None, now))
        await book.refresh(uow, [item.sku], now, items={item.sku: stored})
        return stored, before is None

    async def list_items(
        self, *, after_sku: str, limit: int, store_id: str, supplier_id: str, since_version: int
    ) -> list[StoredItem]:
        async with self._uow() as uow:
            return await pricing_store.list_items(
                uow.session,
                after_sku=after_sku,
                limit=limit,
                store_id=store_id,
                supplier_id=supplier_id,
                since_version=since_version,
            )

    # -- price rules -------------------------------------------------------------------------

    async def set_prices(
        self, uow: UnitOfWork, command: SetPrices, actor: Actor, *, defer_book: bool = False
    ) -> list[PriceRule]:
        """Replace the SKU's rules and recompute its book entries; a bulk load passes ``defer_book``
        and leaves the entries to the scheduler, which recomputes many SKUs per transaction."""
        validate_sku(command.sku)
        currency = validate_currency(command.currency)
        now = self._clock()
        item = await self._locked_item(uow, command.sku)
        drafts = [RuleDraft(Scope(), 0, None, None, price_fen=command.base_price_fen), *command.overrides]
        if any(
            draft.scope == Scope() and draft.valid_from is None and draft.valid_to is None
            for draft in command.overrides
        ):
            raise InvalidArgument(
                "an override needs a scope or a window; the base price is base_price", reason="invalid-override"
            )
        await self._check_scope_stores(uow, [*drafts, *command.promotions])
        kinds = [*((RuleKind.REGULAR, d) for d in drafts), *((RuleKind.PROMOTION, p) for p in command.promotions)]
        sequences = await pricing_store.next_rule_sequence(uow.session, len(kinds))
        rules = [
            PriceRule(
                rule_id=f"R{sequence}",
                sku=command.sku,
                kind=kind,
                scope=draft.scope,
                currency=currency,
                valid_from=draft.valid_from,
                valid_to=draft.valid_to,
                priority=draft.priority,
                sequence=sequence,
                price_fen=draft.price_fen,
                mechanic=draft.mechanic,
                name=draft.name,
            )
            for sequence, (kind, draft) in zip(sequences, kinds, strict=True)
        ]
        check_conflicts([], rules)
        for rule in rules:
            if rule.kind is RuleKind.REGULAR and rule.price_fen is not None:
                await self._guard(uow, item, rule.price_fen, currency, command.override_reason, actor, "", now)
        await pricing_store.replace_rules(uow.session, command.sku, rules, None)
        await pricing_store.add_timers(uow.session, book.rule_boundaries(rules, now))
        await pricing_store.audit(
            uow.session,
            now,
            actor.client_id,
            command.sku,
            "set_prices",
            json.dumps({"rules": [rule.rule_id for rule in rules]}),
        )
        if defer_book:
            await pricing_store.add_timers(uow.session, [(command.sku, now)])
        else:
            await book.refresh(uow, [command.sku], now, items={item.item.sku: item})
        return rules

    async def get_prices(self, sku: str) -> list[PriceRule]:
        validate_sku(sku)
        async with self._uow() as uow:
            if not await pricing_store.get_items(uow.session, [sku]):
                raise UnknownSku(f"unknown SKU {sku}", details={"sku": sku})
            rules = (await pricing_store.rules_of(uow.session, [sku])).get(sku, [])
        return sorted(rules, key=lambda rule: rule.sequence)

    # -- scheduled changes ---------------------------------------------------------------------

    async def schedule_change(self, uow: UnitOfWork, command: ScheduleChange, actor: Actor) -> ChangeRow:
        validate_sku(command.sku)
        now = self._clock()
        if command.effective_at < now:
            raise InvalidArgument(
                f"effective_at {command.effective_at.isoformat()} is in the past (now {now.isoformat()})",
                reason="effective-at-in-past",
                details={"field": "effective_at"},
            )
        if len(set(command.store_ids)) != len(command.store_ids):
            raise InvalidArgument("store_ids holds a store twice", details={"field": "store_ids"})
        if not actor.headquarters and (not actor.store_id or command.store_ids != (actor.store_id,)):
            raise PermissionDenied("a store's staff may change prices of their own store only")
        item = await self._locked_item(uow, command.sku)
        stores = {store.store_id: store for store in await pricing_store.all_stores(uow.session)}
        unknown = sorted(set(command.store_ids) - set(stores))
        if unknown:
            raise UnknownStore(f"unknown stores {', '.join(unknown)}", details={"store_ids": unknown})
        delisted = [store_id for store_id in command.store_ids if not item.item.listed_in(store_id)]
        if delisted:
            raise NotListed(
                f"SKU {command.sku} is not listed in {', '.join(delisted)}", details={"store_ids": delisted}
            )
        currencies = {stores[store_id].currency for store_id in command.store_ids} or {"CNY"}
        if len(currencies) > 1:
            raise InvalidArgument("the stores charge in different currencies; schedule one change per currency")
        currency = currencies.pop()
        change = ChangeRow(
            change_id=f"PC{uuid.uuid4().hex[:20].upper()}",
            sku=command.sku,
            price_fen=command.price_fen,
            currency=currency,
            effective_at=command.effective_at,
            store_ids=command.store_ids,
            channel=command.channel.value if command.channel else None,
            state="scheduled",
            applied_at=None,
            override_reason=command.override_reason.strip(),
            markdown_id=command.markdown_id,
        )
        await self._guard(uow, item, command.price_fen, currency, command.override_reason, actor, change.change_id, now)
        await pricing_store.insert_change(uow.session, change, now, actor.client_id)
        return change

    async def list_changes(self, sku: str, offset: int, limit: int) -> list[ChangeRow]:
        async with self._uow() as uow:
            return await pricing_store.list_changes(uow.session, sku, offset, limit)

    async def get_change(self, change_id: str) -> ChangeRow:
        async with self._uow() as uow:
            change = await pricing_store.get_change(uow.session, change_id)
        if change is None:
            raise NotFound(f"unknown price change {change_id}")
        return change

    # -- effective prices --------------------------------------------------------------------

    async def effective_prices(self, question: Question, lines: Sequence[tuple[str, Decimal]]) -> list[EffectivePrice]:
        skus = _basket_skus(lines)
        at = question.at or self._clock()
        if question.at is None:  # now: through the cache (never staler than the last commit)
            # Outside a transaction: a cache hit is one statement (see price_read_cache on a miss).
            async with self._uow().read() as session:
                inputs = await self.read_cache.read(session, question.store_id, skus, at)
        else:  # a moment of the caller's: what the rules in force then say
            async with self._uow() as uow:
                inputs = await _inputs_at(uow, question.store_id, skus, at)
        return self._price(question, lines, skus, inputs, at)

    async def effective_prices_many(
        self, baskets: Sequence[tuple[Question, Sequence[tuple[str, Decimal]]]]
    ) -> list[list[EffectivePrice] | DomainError]:
        """Each basket as :meth:`effective_prices` alone answers it, a refusal as its error; the
        baskets priced now share one read (one statement when their SKUs are cached)."""
        answers: list[list[EffectivePrice] | DomainError] = []
        now: list[tuple[int, list[str]]] = []
        for index, (question, lines) in enumerate(baskets):
            try:
                if question.at is None:
                    now.append((index, _basket_skus(lines)))
                    answers.append([])  # priced below
                else:
                    answers.append(await self.effective_prices(question, lines))
            except DomainError as refused:
                answers.append(refused)
        if now:
            at = self._clock()
            async with self._uow().read() as session:
                read = await self.read_cache.read_many(
                    session, [(baskets[index][0].store_id, skus) for index, skus in now], at
                )
            for (index, skus), inputs in zip(now, read, strict=True):
                question, lines = baskets[index]
                try:
                    answers[index] = self._price(question, lines, skus, inputs, at)
                except DomainError as refused:
                    answers[index] = refused
        return answers

    def _price(
        self,
        question: Question,
        lines: Sequence[tuple[str, Decimal]],
        skus: Sequence[str],
        inputs: PriceInputs,
        at: datetime,
    ) -> list[EffectivePrice]:
        store = inputs.store
        if store is None:
            raise UnknownStore(f"unknown store {question.store_id}", details={"store_id": question.store_id})
        items = inputs.items
        missing = [sku for sku in skus if sku not in items]
        if missing:
            raise UnknownSku(f"unknown SKUs {', '.join(missing)}", details={"skus": missing})
        delisted = [sku for sku in skus if not items[sku].item.sellable_in(store.store_id)]
        if delisted:
            raise NotListed(f"not sold in store {store.store_id}: {', '.join(delisted)}", details={"skus": delisted})
        decide = _Decider(inputs, store, question, at)
        prices = []
        for sku, quantity in lines:
            amount = validate_quantity(quantity)
            prices.append(decide(sku).price(amount, weighed=items[sku].item.weighed))
        if inputs.decisions is not None:
            self.read_cache.trim_decisions()
        return prices

    # -- POS price book ----------------------------------------------------------------------

    async def price_book(
        self, store_id: str, *, since_version: int, known_version: int, after_sku: str, limit: int
    ) -> BookPage:
        if since_version < 0 or known_version < 0:
            raise InvalidArgument("versions are never negative", details={"field": "since_version"})
        async with self._uow() as uow:
            store = await pricing_store.get_store(uow.session, store_id)
            if store is None:
                raise UnknownStore(f"unknown store {store_id}", details={"store_id": store_id})
            if since_version > store.book_version:
                raise InvalidArgument(
                    f"since_version {since_version} is ahead of the book (version {store.book_version})",
                    reason="version-ahead",
                    details={"field": "since_version"},
                )
            if known_version and known_version == store.book_version and not after_sku:
                return BookPage(store_id, store.book_version, True, since_version > 0, [], "")
            rows = await book_entries.book_page(uow.session, store_id, since_version, after_sku, limit + 1)
        next_sku = rows[limit - 1].sku if len(rows) > limit else ""
        return BookPage(store_id, store.book_version, False, since_version > 0, rows[:limit], next_sku)

    async def store_versions(self, store_id: str) -> StoreVersions:
        """The store's price-book version and its catalogue version; ``UnknownStore`` when it has none."""
        async with self._uow() as uow:
            store = await pricing_store.get_store(uow.session, store_id)
            if store is None:
                raise UnknownStore(f"unknown store {store_id}", details={"store_id": store_id})
            catalogue = await pricing_store.catalogue_version(uow.session, store_id)
        return StoreVersions(store_id, store.book_version, catalogue)

    # -- helpers -----------------------------------------------------------------------------

    async def _locked_item(self, uow: UnitOfWork, sku: str) -> StoredItem:
        item = (await pricing_store.lock_items(uow.session, [sku])).get(sku)
        if item is None:
            raise UnknownSku(f"unknown SKU {sku}", details={"sku": sku})
        return item

    async def _check_scope_stores(self, uow: UnitOfWork, drafts: Sequence[RuleDraft]) -> None:
        named = {draft.scope.store_id for draft in drafts if draft.scope.store_id}
        unknown = await pricing_store.unknown_stores(uow.session, named)
        if unknown:
            raise UnknownStore(f"unknown stores {', '.join(unknown)}", details={"store_ids": unknown})

    async def _guard(
        self,
        uow: UnitOfWork,
        item: StoredItem,
        price_fen: int,
        currency: str,
        override_reason: str,
        actor: Actor,
        change_id: str,
        now: datetime,
    ) -> None:
        violation = check_guard_rails(price_fen, item.item.cost_fen, self._min_margin)
        if violation is None:
            return
        reason = override_reason.strip()
        if not reason:
            raise FailedPrecondition(
                f"{violation.message}; set guard_rail_override with a reason to accept it",
                reason=violation.kind.value.replace("_", "-"),
                details={"sku": item.item.sku, "price_fen": price_fen, "cost_fen": item.item.cost_fen},
            )
        if len(reason) > MAX_OVERRIDE_REASON:
            raise InvalidArgument(f"the override reason holds at most {MAX_OVERRIDE_REASON} characters")
        await pricing_store.audit(
            uow.session,
            now,
            actor.client_id,
            item.item.sku,
            "guard_rail_override",
            json.dumps(
                {
                    "violation": violation.kind.value,
                    "price_fen": price_fen,
                    "cost_fen": item.item.cost_fen,
                    "reason": reason,
                    "change_id": change_id,
                }
            ),
        )
        uow.publish(
            events.guard_rail_overridden(
                sku=item.item.sku,
                price_fen=price_fen,
                cost_fen=item.item.cost_fen,
                currency=currency,
                violation=violation.kind.value,
                reason=reason,
                actor=actor.client_id,
                change_id=change_id,
                at=now,
            )
        )


def _basket_skus(lines: Sequence[tuple[str, Decimal]]) -> list[str]:
    """The basket's SKUs, sorted, once it holds 1 to MAX_BASKET_LINES lines of valid SKUs."""
    if not lines:
        raise InvalidArgument("a basket needs at least one line", details={"field": "lines"})
    if len(lines) > MAX_BASKET_LINES:
        raise InvalidArgument(f"a basket holds at most {MAX_BASKET_LINES} lines", details={"field": "lines"})
    for sku, _ in lines:
        validate_sku(sku)
    return sorted({sku for sku, _ in lines})


async def _inputs_at(uow: UnitOfWork, store_id: str, skus: Sequence[str], at: datetime) -> PriceInputs:
    """What the database says pricing at ``at`` needs (never through the cache)."""
    store = await pricing_store.get_store(uow.session, store_id)
    if store is None:
        return PriceInputs(None, {})
    items = await pricing_store.get_items(uow.session, skus)
    rules = await pricing_store.rules_for_store(
        uow.session, skus, store_id=store.store_id, store_groups=store.price_groups, currency=store.currency, at=at
    )
    return PriceInputs(store, {sku: cached_sku(items.get(sku), rules.get(sku, ()), at) for sku in skus})


class _Decider:
    """Each SKU's :class:`Decision` in one basket's context: kept from an earlier basket when one
    holds at the moment (see ``price_read_cache``), else evaluated from the rules and kept."""

    def __init__(self, inputs: PriceInputs, store: StoreRow, question: Question, at: datetime) -> None:
        self._inputs = inputs
        self._store = store
        self._question = question
        self._at = at
        self._context = (store.store_id, store.price_groups, store.currency, question.channel, question.member_tier)
        self._decided: dict[str, Decision] = {}
        self._rule_set: RuleSet | None = None

    def __call__(self, sku: str) -> Decision:
        decision = self._decided.get(sku)
        if decision is not None:
            return decision
        kept = self._inputs.decisions
        key = (*self._context, sku)
        decision = kept.get(key) if kept is not None else None
        if decision is None or not decision.holds_at(self._at):
            decision = self._evaluate(sku)
            if kept is not None:
                kept[key] = decision
        self._decided[sku] = decision
        return decision

    def _evaluate(self, sku: str) -> Decision:
        if self._rule_set is None:
            self._rule_set = RuleSet.of(rule for rules in self._inputs.rules().values() for rule in rules)
        store, question = self._store, self._question
        decision = self._rule_set.decide(
            PriceContext(
                sku=sku,
                store_id=store.store_id,
                store_groups=frozenset(store.price_groups),
                channel=question.channel,
                member_tier=question.member_tier,
                at=self._at,
                currency=store.currency,
            )
        )
        since = self._inputs.since  # the rules answer for moments after their load only
        return replace(decision, since=since) if decision.since < since else decision
