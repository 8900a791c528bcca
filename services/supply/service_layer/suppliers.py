"""Supplier and contract commands, and the catalogue projection (SKU → supplier)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TypeVar

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import AlreadyExists, Conflict, NotFound
from servicekit.idempotency import Reply, RequestFingerprint, keep_reply, replay
from services.supply.adapters import catalogue_store, supplier_store
from services.supply.adapters.supplier_store import StoredContract, StoredSupplier
from services.supply.domain.contracts import check_no_overlap
from services.supply.domain.suppliers import Supplier, UnknownSupplier
from services.supply.domain.terms import ContractTerms

R = TypeVar("R")


class SupplierCodeTaken(AlreadyExists):
    reason = "supplier-code-taken"


class SupplierExists(AlreadyExists):
    reason = "supplier-exists"


class StaleSupplier(Conflict):
    reason = "supplier-version-moved"


class UnknownContract(NotFound):
    reason = "contract-not-found"


def new_contract_id() -> str:
    return f"CT{secrets.token_hex(6).upper()}"


@dataclass(frozen=True, slots=True)
class UpsertSupplier:
    request: RequestFingerprint
    supplier: Supplier
    expected_version: int  # 0: create


@dataclass(frozen=True, slots=True)
class CreateContract:
    request: RequestFingerprint
    # Built with a placeholder contract id; the handler assigns the real one.
    terms: ContractTerms
    created_by: str


class Suppliers:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_contract_id,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._new_id = new_id

    async def upsert(self, command: UpsertSupplier, reply: Reply[StoredSupplier, R]) -> R:
        supplier = command.supplier
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            if await supplier_store.code_taken(uow.session, supplier.code, supplier.supplier_id):
                raise SupplierCodeTaken(f"another supplier has code {supplier.code}", details={"code": supplier.code})
            now = self._clock()
            if command.expected_version == 0:
                if not await supplier_store.insert_supplier(uow.session, supplier, now):
                    if await supplier_store.code_taken(uow.session, supplier.code, supplier.supplier_id):
                        raise SupplierCodeTaken(
                            f"another supplier has code {supplier.code}", details={"code": supplier.code}
                        )
                    raise SupplierExists(
                        "the supplier exists: change it with its version", details={"supplier_id": supplier.supplier_id}
                    )
            else:
                current = await supplier_store.get_supplier(uow.session, supplier.supplier_id, lock=True)
                if current is None:
                    raise UnknownSupplier("no such supplier", details={"supplier_id": supplier.supplier_id})
                if current.version != command.expected_version:
                    raise StaleSupplier(
                        "the supplier changed since it was read",
                        details={"version": current.version, "expected": command.expected_version},
                    )
                await supplier_store.update_supplier(uow.session, supplier, now)
            saved = await supplier_store.get_supplier(uow.session, supplier.supplier_id)
            assert saved is not None
            answer = reply.render(saved)
            await keep_reply(uow.session, command.request, reply.codec, answer)
            await uow.commit()
        return answer

    async def get(self, supplier_id: str) -> StoredSupplier:
        async with self._unit_of_work() as uow:
            found = await supplier_store.get_supplier(uow.session, supplier_id)
        if found is None:
            raise UnknownSupplier("no such supplier", details={"supplier_id": supplier_id})
        return found

    async def list_suppliers(
        self, *, after_code: str | None, limit: int, only: str | None = None
    ) -> list[StoredSupplier]:
        async with self._unit_of_work() as uow:
            return await supplier_store.list_suppliers(uow.session, after_code=after_code, limit=limit, only=only)

    async def create_contract(self, command: CreateContract, reply: Reply[StoredContract, R]) -> R:
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            supplier_id = command.terms.contract.supplier_id
            # The supplier's row is the lock of its contracts: two overlapping contracts created at the same
            # time are checked one after the other, so they never both pass.
            if await supplier_store.get_supplier(uow.session, supplier_id, lock=True) is None:
                raise UnknownSupplier("no such supplier", details={"supplier_id": supplier_id})
            terms = replace(command.terms, contract=replace(command.terms.contract, contract_id=self._new_id()))
            existing = await supplier_store.contracts_of(uow.session, supplier_id)
            check_no_overlap(terms.contract, [stored.contract for stored in existing])
            await supplier_store.insert_contract(uow.session, terms, command.created_by, self._clock())
            saved = await supplier_store.get_contract(uow.session, terms.contract_id)
            assert saved is not None
            answer = reply.render(saved)
            await keep_reply(uow.session, command.request, reply.codec, answer)
            await uow.commit()
        return answer

    async def list_contracts(
        self, supplier_id: str, *, after: tuple[date, str] | None, limit: int
    ) -> list[StoredContract]:
        async with self._unit_of_work() as uow:
            return await supplier_store.list_contracts(uow.session, supplier_id, after=after, limit=limit)

    async def item_changed(
        self,
        uow: UnitOfWork,
        *,
        sku: str,
        supplier_id: str | None,
        category: str,
        name: str,
        version: int,
        at: datetime,
    ) -> bool:
        """Pricing's item as it is now (in the consumer's unit of work); an older version changes nothing."""
        return await catalogue_store.upsert_item(
            uow.session, sku=sku, supplier_id=supplier_id, category=category, name=name, version=version, at=at
        )
