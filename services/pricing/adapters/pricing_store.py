"""PostgreSQL persistence of stores, items, price rules, scheduled changes and audits (book entries:
:mod:`book_entries`).

Every call takes the unit of work's session. Writers of a SKU's prices lock its item row
(``FOR UPDATE``, in SKU order) before they read its rules, and take store rows (to advance
a price-book version) only after that, in store order: two transactions touching the same
SKUs or stores queue instead of deadlocking or writing a stale book entry last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.pricing.domain.catalogue import Item, Unit
from services.pricing.domain.promotions import FixedPrice, MultiBuy, PercentOff
from services.pricing.domain.rules import Channel, PriceRule, RuleKind, Scope


@dataclass(frozen=True)
class StoreRow:
    store_id: str
    name: str
    price_groups: tuple[str, ...]
    currency: str
    label_station_kind: str
    label_station_url: str
    book_version: int


@dataclass(frozen=True)
class StoredItem:
    item: Item
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class ChangeRow:
    change_id: str
    sku: str
    price_fen: int
    currency: str
    effective_at: datetime
    store_ids: tuple[str, ...]
    channel: str | None
    state: str
    applied_at: datetime | None
    override_reason: str
    markdown_id: str | None


_STORE_COLUMNS = "store_id, name, price_groups, currency, label_station_kind, label_station_url, book_version"
_ITEM_COLUMNS = "sku, name, category, barcode, unit, cost_fen, supplier_id, store_ids, active, version, updated_at"
_RULE_COLUMNS = (
    "rule_id, sku, kind, store_id, store_group, channel, member_tier, currency, valid_from, valid_to, priority, "
    "sequence, price_fen, mechanic, percent_off, multi_buy_quantity, bundle_price_fen, name"
)
_CHANGE_COLUMNS = (
    "change_id, sku, price_fen, currency, effective_at, store_ids, channel, state, applied_at, override_reason, "
    "markdown_id"
)


def _store(row: Any) -> StoreRow:
    return StoreRow(
        store_id=row.store_id,
        name=row.name,
        price_groups=tuple(row.price_groups),
        currency=row.currency,
        label_station_kind=row.label_station_kind,
        label_station_url=row.label_station_url,
        book_version=row.book_version,
    )


def _item(row: Any) -> StoredItem:
    item = Item(
        sku=row.sku,
        name=row.name,
        category=row.category,
        barcode=row.barcode,
        unit=Unit(row.unit),
        cost_fen=row.cost_fen,
        supplier_id=row.supplier_id,
        store_ids=frozenset(row.store_ids),
        active=row.active,
    )
    return StoredItem(item, row.version, row.updated_at)


def _rule(row: Any) -> PriceRule:
    mechanic: FixedPrice | PercentOff | MultiBuy | None = None
    if row.mechanic == "fixed_price":
        mechanic = FixedPrice(row.bundle_price_fen)
    elif row.mechanic == "percent_off":
        mechanic = PercentOff(Decimal(row.percent_off))
    elif row.mechanic == "multi_buy":
        mechanic = MultiBuy(row.multi_buy_quantity, row.bundle_price_fen)
    return PriceRule(
        rule_id=row.rule_id,
        sku=row.sku,
        kind=RuleKind(row.kind),
        scope=Scope(
            store_id=row.store_id,
            store_group=row.store_group,
            channel=Channel(row.channel) if row.channel else None,
            member_tier=row.member_tier,
        ),
        currency=row.currency,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        priority=row.priority,
        sequence=row.sequence,
        price_fen=row.price_fen,
        mechanic=mechanic,
        name=row.name,
    )


def _change(row: Any) -> ChangeRow:
    return ChangeRow(
        change_id=row.change_id,
        sku=row.sku,
        price_fen=row.price_fen,
        currency=row.currency,
        effective_at=row.effective_at,
        store_ids=tuple(row.store_ids),
        channel=row.channel,
        state=row.state,
        applied_at=row.applied_at,
        override_reason=row.override_reason,
        markdown_id=row.markdown_id,
    )


# -- stores -----------------------------------------------------------------------------------


async def upsert_store(session: AsyncSession, store: StoreRow, now: datetime) -> StoreRow:
    """Insert or change a store (its price-book version is the store's own, never set here)."""
    row = (
        await session.execute(
            text(f"""
                INSERT INTO store (store_id, name, price_groups, currency, label_station_kind, label_station_url,
                                   created_at, updated_at)
                VALUES (:store_id, :name, :groups, :currency, :kind, :url, :now, :now)
                ON CONFLICT (store_id) DO UPDATE SET name = EXCLUDED.name, price_groups = EXCLUDED.price_groups,
                    currency = EXCLUDED.currency, label_station_kind = EXCLUDED.label_station_kind,
                    label_station_url = EXCLUDED.label_station_url, updated_at = EXCLUDED.updated_at
                RETURNING {_STORE_COLUMNS}
            """),
            {
                "store_id": store.store_id,
                "name": store.name,
                "groups": list(store.price_groups),
                "currency": store.currency,
                "kind": store.label_station_kind,
                "url": store.label_station_url,
                "now": now,
            },
        )
    ).one()
    return _store(row)


async def get_store(session: AsyncSession, store_id: str, *, lock: bool = False) -> StoreRow | None:
    suffix = " FOR UPDATE" if lock else ""
    row = (
        await session.execute(
            text(f"SELECT {_STORE_COLUMNS} FROM store WHERE store_id = :id{suffix}"), {"id": store_id}
        )
    ).one_or_none()
    return _store(row) if row else None


_G_STORE_COLUMNS = ", ".join(f"s.{column.strip()}" for column in _STORE_COLUMNS.split(","))


async def stores_and_read_generation(
    session: AsyncSession, store_ids: Sequence[str]
) -> tuple[dict[str, StoreRow], int]:
    """The stores found and the price read generation (see ``price_read_cache``), in one statement."""
    rows = await session.execute(
        text(
            f"SELECT g.generation, {_G_STORE_COLUMNS} FROM price_read_generation g "
            "LEFT JOIN store s ON s.store_id = ANY(CAST(:ids AS text[]))"
        ),
        {"ids": list(store_ids)},
    )
    found = rows.all()
    return {row.store_id: _store(row) for row in found if row.store_id is not None}, int(found[0].generation)


async def all_stores(session: AsyncSession) -> list[StoreRow]:
    rows = await session.execute(text(f"SELECT {_STORE_COLUMNS} FROM store ORDER BY store_id"))
    return [_store(row) for row in rows]


async def unknown_stores(session: AsyncSession, store_ids: Iterable[str]) -> list[str]:
    wanted = sorted(set(store_ids))
    if not wanted:
        return []
    rows = await session.execute(
        text(
            "SELECT id FROM unnest(CAST(:ids AS text[])) AS id WHERE NOT EXISTS "
            "(SELECT 1 FROM store WHERE store_id = id) ORDER BY id"
        ),
        {"ids": wanted},
    )
    return [row.id for row in rows]


async def advance_book_versions(session: AsyncSession, store_ids: Sequence[str]) -> dict[str, int]:
    """Advance each store's price-book version by one (row locks taken in store order)."""
    rows = await session.execute(
        text("""
            UPDATE store SET book_version = book_version + 1
            WHERE store_id IN (SELECT store_id FROM store WHERE store_id = ANY(:ids) ORDER BY store_id FOR UPDATE)
            RETURNING store_id, book_version
        """),
        {"ids": sorted(store_ids)},
    )
    return {row.store_id: row.book_version for row in rows}


# -- items ------------------------------------------------------------------------------------


async def lock_items(session: AsyncSession, skus: Iterable[str]) -> dict[str, StoredItem]:
    """Lock the items (in SKU order) and return those that exist."""
    rows = await session.execute(
        text(f"SELECT {_ITEM_COLUMNS} FROM item WHERE sku = ANY(:skus) ORDER BY sku FOR UPDATE"),
        {"skus": sorted(set(skus))},
    )
    return {row.sku: _item(row) for row in rows}


async def share_lock_item(session: AsyncSession, sku: str) -> StoredItem | None:
    row = (
        await session.execute(text(f"SELECT {_ITEM_COLUMNS} FROM item WHERE sku = :sku FOR SHARE"), {"sku": sku})
    ).one_or_none()
    return _item(row) if row else None


async def get_items(session: AsyncSession, skus: Iterable[str]) -> dict[str, StoredItem]:
    rows = await session.execute(
        text(f"SELECT {_ITEM_COLUMNS} FROM item WHERE sku = ANY(:skus)"), {"skus": list(set(skus))}
    )
    return {row.sku: _item(row) for row in rows}


async def save_item(session: AsyncSession, item: Item, now: datetime) -> StoredItem:
    row = (
        await session.execute(
            text(f"""
                INSERT INTO item (sku, name, category, barcode, unit, cost_fen, supplier_id, store_ids, active,
                                  version, updated_at)
                VALUES (:sku, :name, :category, :barcode, :unit, :cost, :supplier, :stores, :active,
                        nextval('item_version'), :now)
                ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category,
                    barcode = EXCLUDED.barcode, unit = EXCLUDED.unit, cost_fen = EXCLUDED.cost_fen,
                    supplier_id = EXCLUDED.supplier_id, store_ids = EXCLUDED.store_ids, active = EXCLUDED.active,
                    version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
                RETURNING {_ITEM_COLUMNS}
            """),
            {
                "sku": item.sku,
                "name": item.name,
                "category": item.category,
                "barcode": item.barcode,
                "unit": item.unit.value,
                "cost": item.cost_fen,
                "supplier": item.supplier_id,
                "stores": sorted(item.store_ids),
                "active": item.active,
                "now": now,
            },
        )
    ).one()
    return _item(row)


async def list_items(
    session: AsyncSession, *, after_sku: str, limit: int, store_id: str, supplier_id: str, since_version: int
) -> list[StoredItem]:
    conditions = ["sku > :after"]
    if store_id:
        conditions.append("(cardinality(store_ids) = 0 OR :store = ANY(store_ids))")
    if supplier_id:
        conditions.append("supplier_id = :supplier")
    if since_version:
        conditions.append("version > :since")
    rows = await session.execute(
        text(f"SELECT {_ITEM_COLUMNS} FROM item WHERE {' AND '.join(conditions)} ORDER BY sku LIMIT :limit"),
        {"after": after_sku, "store": store_id, "supplier": supplier_id, "since": since_version, "limit": limit},
    )
    return [_item(row) for row in rows]


async def catalogue_version(session: AsyncSession, store_id: str) -> int:
    """The highest item version among the items listed in a store (as :func:`list_items` selects them); 0: none."""
    version = await session.scalar(
        text("SELECT coalesce(max(version), 0) FROM item WHERE cardinality(store_ids) = 0 OR :store = ANY(store_ids)"),
        {"store": store_id},
    )
    return int(version or 0)


async def all_skus(session: AsyncSession) -> list[str]:
    return list((await session.execute(text("SELECT sku FROM item ORDER BY sku"))).scalars())


# -- rules ------------------------------------------------------------------------------------


async def rules_of(session: AsyncSession, skus: Iterable[str]) -> dict[str, list[PriceRule]]:
    rows = await session.execute(
        text(f"SELECT {_RULE_COLUMNS} FROM price_rule WHERE sku = ANY(:skus)"), {"skus": list(set(skus))}
    )
    return _by_sku(rows)


async def rules_not_ended(session: AsyncSession, skus: Iterable[str], at: datetime) -> dict[str, list[PriceRule]]:
    """The SKUs' rules in every scope and currency that have not ended at ``at`` (started or not)."""
    rows = await session.execute(
        text(f"SELECT {_RULE_COLUMNS} FROM price_rule WHERE sku = ANY(:skus) AND (valid_to IS NULL OR valid_to > :at)"),
        {"skus": list(set(skus)), "at": at},
    )
    return _by_sku(rows)


async def rules_for_store(
    session: AsyncSession,
    skus: Iterable[str],
    *,
    store_id: str,
    store_groups: Iterable[str],
    currency: str,
    at: datetime,
) -> dict[str, list[PriceRule]]:
    """The SKUs' rules that can apply in one store at one moment: the hard filters (currency,
    validity window, location) done by the index scan rather than in Python, so a chain with a
    thousand stores' overrides reads one store's worth per SKU. Tier and channel are left to the
    domain, which ranks what remains."""
    rows = await session.execute(
        text(f"""
            SELECT {_RULE_COLUMNS} FROM price_rule
            WHERE sku = ANY(:skus) AND currency = :currency
              AND (valid_from IS NULL OR valid_from <= :at) AND (valid_to IS NULL OR valid_to > :at)
              AND (store_id IS NULL OR store_id = :store) AND (store_group IS NULL OR store_group = ANY(:groups))
        """),
        {"skus": list(set(skus)), "currency": currency, "at": at, "store": store_id, "groups": list(store_groups)},
    )
    return _by_sku(rows)


def _by_sku(rows: Iterable[Any]) -> dict[str, list[PriceRule]]:
    rules: dict[str, list[PriceRule]] = {}
    for row in rows:
        rules.setdefault(row.sku, []).append(_rule(row))
    return rules


async def next_rule_sequence(session: AsyncSession, count: int) -> list[int]:
    rows = await session.execute(
        text("SELECT nextval('price_rule_sequence') AS n FROM generate_series(1, :count)"), {"count": count}
    )
    return [row.n for row in rows]


async def replace_rules(session: AsyncSession, sku: str, rules: Sequence[PriceRule], change_id: str | None) -> None:
    """Make ``rules`` the SKU's whole rule set."""
    await session.execute(text("DELETE FROM price_rule WHERE sku = :sku"), {"sku": sku})
    await insert_rules(session, rules, change_id)


async def insert_rules(session: AsyncSession, rules: Sequence[PriceRule], change_id: str | None = None) -> None:
    if not rules:
        return
    await session.execute(
        text(f"""
            INSERT INTO price_rule ({_RULE_COLUMNS}, change_id)
            VALUES (:rule_id, :sku, :kind, :store_id, :store_group, :channel, :member_tier, :currency, :valid_from,
                    :valid_to, :priority, :sequence, :price_fen, :mechanic, :percent_off, :multi_buy_quantity,
                    :bundle_price_fen, :name, :change_id)
        """),
        [_rule_params(rule, change_id) for rule in rules],
    )


def _rule_params(rule: PriceRule, change_id: str | None) -> dict[str, object]:
    mechanic = rule.mechanic
    return {
        "rule_id": rule.rule_id,
        "sku": rule.sku,
        "kind": rule.kind.value,
        "store_id": rule.scope.store_id,
        "store_group": rule.scope.store_group,
        "channel": rule.scope.channel.value if rule.scope.channel else None,
        "member_tier": rule.scope.member_tier,
        "currency": rule.currency,
        "valid_from": rule.valid_from,
        "valid_to": rule.valid_to,
        "priority": rule.priority,
        "sequence": rule.sequence,
        "price_fen": rule.price_fen,
        "mechanic": None if mechanic is None else _MECHANIC_NAMES[type(mechanic)],
        "percent_off": mechanic.percent if isinstance(mechanic, PercentOff) else None,
        "multi_buy_quantity": mechanic.quantity if isinstance(mechanic, MultiBuy) else None,
        "bundle_price_fen": (
            mechanic.price_fen
            if isinstance(mechanic, FixedPrice)
            else mechanic.bundle_price_fen
            if isinstance(mechanic, MultiBuy)
            else None
        ),
        "name": rule.name,
        "change_id": change_id,
    }


_MECHANIC_NAMES: dict[type, str] = {FixedPrice: "fixed_price", PercentOff: "percent_off", MultiBuy: "multi_buy"}


async def set_regular_prices(session: AsyncSession, rules: Sequence[tuple[PriceRule, str]]) -> None:
    """Set the price of the open-ended regular rule (priority 0) with exactly each rule's scope (SKU, store,
    channel, currency), or add the rule: one ``UPDATE`` for those that have one, one ``INSERT`` for the others."""
    if not rules:
        return
    updated = await session.execute(
        text("""
            UPDATE price_rule AS r SET price_fen = v.price, change_id = v.change_id
            FROM unnest(CAST(:skus AS text[]), CAST(:stores AS text[]), CAST(:channels AS text[]),
                        CAST(:currencies AS text[]), CAST(:prices AS bigint[]), CAST(:change_ids AS text[]))
                 AS v(sku, store_id, channel, currency, price, change_id)
            WHERE r.sku = v.sku AND r.kind = 'regular' AND r.currency = v.currency AND r.priority = 0
              AND r.valid_from IS NULL AND r.valid_to IS NULL
              AND r.store_id IS NOT DISTINCT FROM v.store_id AND r.store_group IS NULL
              AND r.channel IS NOT DISTINCT FROM v.channel AND r.member_tier IS NULL
            RETURNING v.sku, v.store_id, v.channel, v.currency
        """),
        {
            "skus": [rule.sku for rule, _ in rules],
            "stores": [rule.scope.store_id for rule, _ in rules],
            "channels": [rule.scope.channel.value if rule.scope.channel else None for rule, _ in rules],
            "currencies": [rule.currency for rule, _ in rules],
            "prices": [rule.price_fen for rule, _ in rules],
            "change_ids": [change_id for _, change_id in rules],
        },
    )
    done = {(row.sku, row.store_id, row.channel, row.currency) for row in updated}
    missing = [
        _rule_params(rule, change_id)
        for rule, change_id in rules
        if (rule.sku, rule.scope.store_id, rule.scope.channel.value if rule.scope.channel else None, rule.currency)
        not in done
    ]
    if missing:
        await session.execute(
            text(f"""
                INSERT INTO price_rule ({_RULE_COLUMNS}, change_id)
                VALUES (:rule_id, :sku, :kind, :store_id, :store_group, :channel, :member_tier, :currency, :valid_from,
                        :valid_to, :priority, :sequence, :price_fen, :mechanic, :percent_off, :multi_buy_quantity,
                        :bundle_price_fen, :name, :change_id)
            """),
            missing,
        )


async def count_book_entries(session: AsyncSession) -> int:
    """Entries in every store's price book (removed ones not counted)."""
    return int((await session.execute(text("SELECT count(*) FROM book_entry WHERE NOT removed"))).scalar_one())


async def add_timers(session: AsyncSession, timers: Iterable[tuple[str, datetime]]) -> None:
    rows = [{"sku": sku, "due_at": due_at} for sku, due_at in set(timers)]
    if rows:
        await session.execute(
            text("INSERT INTO price_timer (sku, due_at) VALUES (:sku, :due_at) ON CONFLICT DO NOTHING"), rows
        )


async def due_timer_skus(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """SKUs with a window edge due (read without locking: the caller locks their items first)."""
    rows = await session.execute(
        text(
            "SELECT DISTINCT sku FROM (SELECT sku FROM price_timer WHERE due_at <= :now ORDER BY due_at "
            "LIMIT :limit) AS due"
        ),
        {"now": now, "limit": limit},
    )
    return sorted(row.sku for row in rows)


async def clear_due_timers(session: AsyncSession, skus: Sequence[str], now: datetime) -> None:
    """Consume the due timers of SKUs whose items the caller has locked (so no writer of these
    SKUs is adding timers meanwhile: items, then timers, is the lock order of every writer)."""
    await session.execute(
        text("DELETE FROM price_timer WHERE sku = ANY(:skus) AND due_at <= :now"), {"skus": list(skus), "now": now}
    )


async def next_timer(session: AsyncSession) -> datetime | None:
    moment: datetime | None = (
        await session.execute(
            text(
                "SELECT min(due_at) FROM (SELECT due_at FROM price_timer "
                "UNION ALL SELECT effective_at FROM price_change WHERE state = 'scheduled') AS d"
            )
        )
    ).scalar()
    return moment


async def audit(session: AsyncSession, at: datetime, actor: str, sku: str, action: str, detail: str) -> None:
    await session.execute(
        text(
            "INSERT INTO price_audit (occurred_at, actor, sku, action, detail) "
            "VALUES (:at, :actor, :sku, :action, CAST(:detail AS jsonb))"
        ),
        {"at": at, "actor": actor, "sku": sku, "action": action, "detail": detail},
    )


# -- scheduled changes -------------------------------------------------------------------------


async def insert_change(session: AsyncSession, change: ChangeRow, created_at: datetime, created_by: str) -> None:
    await session.execute(
        text("""
            INSERT INTO price_change (change_id, sku, price_fen, currency, effective_at, store_ids, channel, state,
                                      override_reason, markdown_id, created_at, created_by)
            VALUES (:change_id, :sku, :price, :currency, :effective_at, :stores, :channel, 'scheduled', :reason,
                    :markdown_id, :created_at, :created_by)
        """),
        {
            "change_id": change.change_id,
            "sku": change.sku,
            "price": change.price_fen,
            "currency": change.currency,
            "effective_at": change.effective_at,
            "stores": list(change.store_ids),
            "channel": change.channel,
            "reason": change.override_reason,
            "markdown_id": change.markdown_id,
            "created_at": created_at,
            "created_by": created_by,
        },
    )


async def claim_due_changes(session: AsyncSession, now: datetime, limit: int) -> list[ChangeRow]:
    """Claim due changes, only the earliest unapplied one of each SKU: while another scheduler
    holds a SKU's earlier change, its later ones wait, so they are applied in effective order."""
    rows = await session.execute(
        text(f"""
            SELECT {_CHANGE_COLUMNS} FROM price_change c WHERE state = 'scheduled' AND effective_at <= :now
              AND NOT EXISTS (SELECT 1 FROM price_change e WHERE e.sku = c.sku AND e.state = 'scheduled'
                              AND (e.effective_at, e.change_id) < (c.effective_at, c.change_id))
            ORDER BY effective_at, change_id LIMIT :limit FOR UPDATE SKIP LOCKED
        """),
        {"now": now, "limit": limit},
    )
    return [_change(row) for row in rows]


async def mark_changes_applied(session: AsyncSession, change_ids: Sequence[str], now: datetime) -> None:
    await session.execute(
        text("UPDATE price_change SET state = 'applied', applied_at = :now WHERE change_id = ANY(:ids)"),
        {"now": now, "ids": list(change_ids)},
    )


async def get_change(session: AsyncSession, change_id: str) -> ChangeRow | None:
    row = (
        await session.execute(
            text(f"SELECT {_CHANGE_COLUMNS} FROM price_change WHERE change_id = :id"), {"id": change_id}
        )
    ).one_or_none()
    return _change(row) if row else None


async def list_changes(session: AsyncSession, sku: str, offset: int, limit: int) -> list[ChangeRow]:
    condition = "WHERE sku = :sku" if sku else ""
    rows = await session.execute(
        text(
            f"SELECT {_CHANGE_COLUMNS} FROM price_change {condition} "
            "ORDER BY effective_at DESC, change_id LIMIT :limit OFFSET :offset"
        ),
        {"sku": sku, "limit": limit, "offset": offset},
    )
    return [_change(row) for row in rows]
