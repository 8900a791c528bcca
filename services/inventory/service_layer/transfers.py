"""Inter-store transfers and stock counts.

A transfer is a saga of steps — request (the source holds the units), dispatch (they
leave the source and are in transit), receive (they arrive; a short receipt is shrink) or
cancel before dispatch — each one transaction, retried safely under its request_id. A
failure inside a step rolls the whole step back, so on-hand + in-transit is conserved
whatever fails and whenever. Each step writes a TransferStateChanged and the stock levels it
changed to the outbox in the same transaction, so a rolled-back step announces nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from services.inventory.adapters import stock_store, transfer_store
from services.inventory.adapters.integration_events import (
    StockChangeCause,
    stock_level_changes,
    transfer_state_changed,
)
from services.inventory.domain.model import (
    CountedLine,
    StockPosition,
    Transfer,
    TransferNotFound,
    UnknownLocation,
    UnknownSku,
    apply_count,
)

MAX_COUNT_LINES = 5000

# Called at the end of each step, before commit; tests use it to inject failures.
FaultHook = Callable[[str], None]


def _no_fault(step: str) -> None:
    return None


class TransferSaga:
    def __init__(self, fault: FaultHook = _no_fault) -> None:
        self._fault = fault

    async def request(
        self, uow: UnitOfWork, *, sku: str, quantity: Decimal, from_location: str, to_location: str
    ) -> Transfer:
        session = uow.session
        if from_location == to_location:
            raise InvalidArgument("a transfer needs two different locations", reason="transfer-to-same-location")
        if not await stock_store.known_sku(session, sku):
            raise UnknownSku(f"SKU {sku} does not exist")
        for location in (from_location, to_location):
            if not await stock_store.known_location(session, location):
                raise UnknownLocation(f"location {location} does not exist")
        positions = await stock_store.lock_or_create_positions(session, [(sku, from_location), (sku, to_location)])
        transfer = Transfer.request(
            str(uuid.uuid4()), sku, from_location, to_location, quantity, positions[(sku, from_location)]
        )
        await transfer_store.insert_transfer(session, transfer)
        _announce(uow, transfer, await stock_store.save_positions(session, positions.values()))
        self._fault("request")
        return transfer

    async def dispatch(self, uow: UnitOfWork, transfer_id: str) -> Transfer:
        transfer, positions = await self._load(uow, transfer_id)
        transfer.dispatch(
            positions[(transfer.sku, transfer.from_location)], positions[(transfer.sku, transfer.to_location)]
        )
        await self._save(uow, transfer, positions, "dispatch")
        return transfer

    async def receive(self, uow: UnitOfWork, transfer_id: str, received: Decimal) -> Transfer:
        transfer, positions = await self._load(uow, transfer_id)
        transfer.receive(received, positions[(transfer.sku, transfer.to_location)])
        await self._save(uow, transfer, positions, "receive")
        return transfer

    async def cancel(self, uow: UnitOfWork, transfer_id: str) -> Transfer:
        transfer, positions = await self._load(uow, transfer_id)
        transfer.cancel(positions[(transfer.sku, transfer.from_location)])
        await self._save(uow, transfer, positions, "cancel")
        return transfer

    async def get(self, uow: UnitOfWork, transfer_id: str) -> Transfer:
        transfer = await transfer_store.load_transfer(uow.session, transfer_id, lock=False)
        if transfer is None:
            raise TransferNotFound(f"transfer {transfer_id} does not exist")
        return transfer

    async def _load(self, uow: UnitOfWork, transfer_id: str) -> tuple[Transfer, dict[tuple[str, str], StockPosition]]:
        transfer = await transfer_store.load_transfer(uow.session, transfer_id, lock=True)
        if transfer is None:
            raise TransferNotFound(f"transfer {transfer_id} does not exist")
        positions = await stock_store.lock_positions(
            uow.session, [(transfer.sku, transfer.from_location), (transfer.sku, transfer.to_location)]
        )
        return transfer, positions

    async def _save(
        self, uow: UnitOfWork, transfer: Transfer, positions: dict[tuple[str, str], StockPosition], step: str
    ) -> None:
        await transfer_store.save_transfer(uow.session, transfer)
        _announce(uow, transfer, await stock_store.save_positions(uow.session, positions.values()))
        self._fault(step)


def _announce(uow: UnitOfWork, transfer: Transfer, changed: Iterable[StockPosition]) -> None:
    now = datetime.now(UTC)
    uow.publish(*stock_level_changes(changed, StockChangeCause.TRANSFER, now), transfer_state_changed(transfer, now))


async def record_stock_count(uow: UnitOfWork, location_id: str, lines: Sequence[CountedLine]) -> int:
    """Apply a count of one location; returns how many levels were adjusted. All or nothing."""
    session = uow.session
    if not lines:
        raise InvalidArgument("a stock count needs at least one line", reason="empty-count")
    if len(lines) > MAX_COUNT_LINES:
        raise InvalidArgument(f"a stock count may have at most {MAX_COUNT_LINES} lines", reason="count-too-large")
    if len({line.sku for line in lines}) != len(lines):
        raise InvalidArgument("each SKU may appear once in a count", reason="duplicate-sku")
    if not await stock_store.known_location(session, location_id):
        raise UnknownLocation(f"location {location_id} does not exist")
    for line in lines:
        if not await stock_store.known_sku(session, line.sku):
            raise UnknownSku(f"SKU {line.sku} does not exist")
    positions = await stock_store.lock_or_create_positions(session, [(line.sku, location_id) for line in lines])
    count_id = f"count-{uuid.uuid4()}"
    adjusted = sum(1 for line in lines if apply_count(positions[(line.sku, location_id)], line, count_id) is not None)
    changed = await stock_store.save_positions(session, positions.values())
    # Only adjusted levels changed; a line that confirms the books announces nothing.
    uow.publish(*stock_level_changes(changed, StockChangeCause.COUNT, datetime.now(UTC)))
    return adjusted


MAX_HISTORY_LINES = 10_000


async def import_sales_history(
    uow: UnitOfWork, location_id: str, rows: Sequence[tuple[str, date, Decimal]], today: date
) -> int:
    """Store backfilled daily totals for one location: validated first, then all or nothing."""
    session = uow.session
    if not rows:
        raise InvalidArgument("a sales-history import needs at least one line", reason="empty-import")
    if len(rows) > MAX_HISTORY_LINES:
        raise InvalidArgument(f"at most {MAX_HISTORY_LINES} lines per request", reason="import-too-large")
    if len({(sku, day) for sku, day, _ in rows}) != len(rows):
        raise InvalidArgument("each (sku, date) may appear once per request", reason="duplicate-line")
    future = [day for _, day, _ in rows if day > today]
    if future:
        raise InvalidArgument(f"history cannot be in the future ({min(future).isoformat()})", reason="future-date")
    if not await stock_store.known_location(session, location_id):
        raise UnknownLocation(f"location {location_id} does not exist")
    unknown = await stock_store.unknown_skus(session, {sku for sku, _, _ in rows})
    if unknown:
        raise UnknownSku(
            f"unknown SKUs: {', '.join(sorted(unknown)[:10])}", details={"unknown_skus": sorted(unknown)[:100]}
        )
    await stock_store.upsert_imported_sales(session, location_id, rows)
    return len(rows)
