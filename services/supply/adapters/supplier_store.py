"""Suppliers and their contracts in PostgreSQL (rows ↔ :mod:`services.supply.domain`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.supply.domain.contracts import Contract, SettlementMode
from services.supply.domain.settlement import CycleKind, QualityBand, RateTier, SettlementCycle
from services.supply.domain.suppliers import Supplier
from services.supply.domain.terms import ContractTerms, ItemTerms


@dataclass(frozen=True, slots=True)
class StoredSupplier:
    supplier: Supplier
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredContract:
    terms: ContractTerms
    created_by: str
    created_at: datetime

    @property
    def contract(self) -> Contract:
        return self.terms.contract


def _supplier(row: Any) -> StoredSupplier:
    return StoredSupplier(
        Supplier(row.supplier_id, row.code, row.name, row.payment_terms_days, row.active),
        row.version,
        row.created_at,
        row.updated_at,
    )


_SUPPLIER_COLUMNS = "supplier_id, code, name, payment_terms_days, active, version, created_at, updated_at"


async def get_supplier(session: AsyncSession, supplier_id: str, *, lock: bool = False) -> StoredSupplier | None:
    row = (
        await session.execute(
            text(f"SELECT {_SUPPLIER_COLUMNS} FROM supplier WHERE supplier_id = :id{' FOR UPDATE' if lock else ''}"),
            {"id": supplier_id},
        )
    ).first()
    return None if row is None else _supplier(row)


async def code_taken(session: AsyncSession, code: str, supplier_id: str) -> bool:
    row = await session.execute(
        text("SELECT 1 FROM supplier WHERE code = :code AND supplier_id <> :id"), {"code": code, "id": supplier_id}
    )
    return row.first() is not None


async def insert_supplier(session: AsyncSession, supplier: Supplier, at: datetime) -> bool:
    """Whether it was inserted (False: the id or the code is taken, e.g. by a concurrent create)."""
    row = await session.execute(
        text(
            "INSERT INTO supplier (supplier_id, code, name, payment_terms_days, active, version, created_at, "
            "updated_at) VALUES (:id, :code, :name, :terms, :active, 1, :at, :at) "
            "ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {
            "id": supplier.supplier_id,
            "code": supplier.code,
            "name": supplier.name,
            "terms": supplier.payment_terms_days,
            "active": supplier.active,
            "at": at,
        },
    )
    return row.first() is not None


async def update_supplier(session: AsyncSession, supplier: Supplier, at: datetime) -> None:
    await session.execute(
        text(
            "UPDATE supplier SET code = :code, name = :name, payment_terms_days = :terms, active = :active, "
            "version = version + 1, updated_at = :at WHERE supplier_id = :id"
        ),
        {
            "id": supplier.supplier_id,
            "code": supplier.code,
            "name": supplier.name,
            "terms": supplier.payment_terms_days,
            "active": supplier.active,
            "at": at,
        },
    )


async def list_suppliers(
    session: AsyncSession, *, after_code: str | None, limit: int, only: str | None = None
) -> list[StoredSupplier]:
    rows = await session.execute(
        text(
            f"SELECT {_SUPPLIER_COLUMNS} FROM supplier WHERE (CAST(:after AS text) IS NULL OR code > :after) "
            "AND (CAST(:only AS text) IS NULL OR supplier_id = :only) ORDER BY code LIMIT :limit"
        ),
        {"after": after_code, "limit": limit, "only": only},
    )
    return [_supplier(row) for row in rows]


# ---- contracts -----------------------------------------------------------------------------------------------------

_CONTRACT_COLUMNS = (
    "contract_id, supplier_id, mode, valid_from, valid_until, commission_rate, store_commission_rates, "
    "allows_direct_delivery, rejects_billed, over_delivery_allowance, price_tolerance, cycle, cycle_days, "
    "cycle_anchor, rebate_tiers, quality_bands, created_by, created_at"
)


def _terms_json(terms: ContractTerms) -> dict[str, str]:
    return {
        "store_rates": json.dumps({s: str(r) for s, r in terms.contract.store_commission_rates.items()}),
        "tiers": json.dumps([{"threshold_fen": t.threshold_fen, "rate": str(t.rate)} for t in terms.rebate_tiers]),
        "bands": json.dumps([{"score_below": str(b.score_below), "rate": str(b.rate)} for b in terms.quality_bands]),
    }


async def insert_contract(session: AsyncSession, terms: ContractTerms, created_by: str, at: datetime) -> None:
    contract = terms.contract
    await session.execute(
        text(
            f"INSERT INTO contract ({_CONTRACT_COLUMNS}) VALUES (:id, :supplier, :mode, :from_, :until, :commission, "
            "CAST(:store_rates AS jsonb), :direct, :rejects_billed, :allowance, :tolerance, :cycle, :cycle_days, "
            "CAST(:anchor AS date), CAST(:tiers AS jsonb), CAST(:bands AS jsonb), :by, :at)"
        ),
        {
            "id": contract.contract_id,
            "supplier": contract.supplier_id,
            "mode": contract.mode.value,
            "from_": contract.valid_from,
            "until": contract.valid_until,
            "commission": contract.commission_rate,
            "direct": contract.allows_direct_delivery,
            "rejects_billed": contract.rejects_billed,
            "allowance": terms.over_delivery_allowance,
            "tolerance": terms.price_tolerance,
            "cycle": terms.cycle.kind.value,
            "cycle_days": terms.cycle.days if terms.cycle.kind is CycleKind.DAYS else None,
            "anchor": terms.cycle.anchor if terms.cycle.kind is CycleKind.DAYS else None,
            "by": created_by,
            "at": at,
            **_terms_json(terms),
        },
    )
    skus = sorted(contract.skus)
    await session.execute(
        text(
            "INSERT INTO contract_item (contract_id, sku, unit_cost_fen, pack_size, minimum_order) "
            "SELECT :id, sku, cost, pack, minimum FROM unnest(CAST(:skus AS text[]), CAST(:costs AS bigint[]), "
            "CAST(:packs AS numeric[]), CAST(:minimums AS numeric[])) AS v(sku, cost, pack, minimum)"
        ),
        {
            "id": contract.contract_id,
            "skus": skus,
            "costs": [contract.unit_cost_fen.get(sku) for sku in skus],
            "packs": [terms.item(sku).pack_size for sku in skus],
            "minimums": [terms.item(sku).minimum_order for sku in skus],
        },
    )


def _contract(row: Any, items: Sequence[Any]) -> StoredContract:
    mode = SettlementMode(row.mode)
    contract = Contract(
        contract_id=row.contract_id,
        supplier_id=row.supplier_id,
        mode=mode,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        skus=frozenset(item.sku for item in items),
        unit_cost_fen={item.sku: item.unit_cost_fen for item in items if item.unit_cost_fen is not None},
        commission_rate=row.commission_rate,
        store_commission_rates={store: Decimal(rate) for store, rate in row.store_commission_rates.items()},
        allows_direct_delivery=row.allows_direct_delivery,
        rejects_billed=row.rejects_billed,
    )
    cycle = (
        SettlementCycle(CycleKind.DAYS, row.cycle_days, row.cycle_anchor)
        if row.cycle == CycleKind.DAYS.value
        else SettlementCycle()
    )
    terms = ContractTerms(
        contract=contract,
        items={item.sku: ItemTerms(item.pack_size, item.minimum_order) for item in items},
        over_delivery_allowance=row.over_delivery_allowance,
        price_tolerance=row.price_tolerance,
        cycle=cycle,
        rebate_tiers=tuple(RateTier(t["threshold_fen"], Decimal(t["rate"])) for t in row.rebate_tiers),
        quality_bands=tuple(QualityBand(Decimal(b["score_below"]), Decimal(b["rate"])) for b in row.quality_bands),
    )
    return StoredContract(terms, row.created_by, row.created_at)


async def _with_items(session: AsyncSession, rows: Sequence[Any]) -> list[StoredContract]:
    if not rows:
        return []
    items = await session.execute(
        text(
            "SELECT contract_id, sku, unit_cost_fen, pack_size, minimum_order FROM contract_item "
            "WHERE contract_id = ANY (CAST(:ids AS text[])) ORDER BY contract_id, sku"
        ),
        {"ids": [row.contract_id for row in rows]},
    )
    by_contract: dict[str, list[Any]] = {}
    for item in items:
        by_contract.setdefault(item.contract_id, []).append(item)
    return [_contract(row, by_contract.get(row.contract_id, [])) for row in rows]


async def contracts_of(session: AsyncSession, supplier_id: str) -> list[StoredContract]:
    """Every contract of a supplier (for the overlap check, taken with the supplier's row locked)."""
    rows = (
        await session.execute(
            text(f"SELECT {_CONTRACT_COLUMNS} FROM contract WHERE supplier_id = :supplier"), {"supplier": supplier_id}
        )
    ).all()
    return await _with_items(session, rows)


async def get_contract(session: AsyncSession, contract_id: str) -> StoredContract | None:
    rows = (
        await session.execute(
            text(f"SELECT {_CONTRACT_COLUMNS} FROM contract WHERE contract_id = :id"), {"id": contract_id}
        )
    ).all()
    found = await _with_items(session, rows)
    return found[0] if found else None


async def list_contracts(
    session: AsyncSession, supplier_id: str, *, after: tuple[date, str] | None, limit: int
) -> list[StoredContract]:
    """Newest window first, then by id."""
    rows = (
        await session.execute(
            text(
                f"SELECT {_CONTRACT_COLUMNS} FROM contract WHERE supplier_id = :supplier "
                "AND (CAST(:after_from AS date) IS NULL OR (valid_from, contract_id) < (:after_from, :after_id)) "
                "ORDER BY valid_from DESC, contract_id DESC LIMIT :limit"
            ),
            {
                "supplier": supplier_id,
                "after_from": after[0] if after else None,
                "after_id": after[1] if after else "",
                "limit": limit,
            },
        )
    ).all()
    return await _with_items(session, rows)


async def contracts_covering(
    session: AsyncSession, supplier_id: str, skus: Sequence[str], on: date
) -> dict[str, StoredContract]:
    """Per SKU, the supplier's contract covering it on ``on`` (SKUs without one are absent)."""
    rows = (
        await session.execute(
            text(
                f"SELECT DISTINCT {', '.join('c.' + c.strip() for c in _CONTRACT_COLUMNS.split(','))} "
                "FROM contract c JOIN contract_item i USING (contract_id) "
                "WHERE c.supplier_id = :supplier AND i.sku = ANY (CAST(:skus AS text[])) AND c.valid_from <= :on "
                "AND (c.valid_until IS NULL OR c.valid_until > :on)"
            ),
            {"supplier": supplier_id, "skus": list(skus), "on": on},
        )
    ).all()
    found: dict[str, StoredContract] = {}
    for stored in await _with_items(session, rows):
        for sku in skus:
            if stored.contract.covers(sku, on):
                found[sku] = stored
    return found
