"""Inventory commands: one handler each, in a unit of work, calling the domain.

Reservations go through a :class:`Coalescer` per location, so a burst on one hot SKU (and
whatever else that location is asked meanwhile) becomes few transactions, the levels locked
in a fixed order. Every mutating command is idempotent by ``request_id``;
sales from the journal are idempotent by sale id through the consumer's inbox. Each one
writes its integration events to the outbox in its own transaction: one StockLevelChanged
per level it changed, whatever the number of reservations or movements behind it.

A journaled sale is never refused: a line inventory cannot apply yet (its SKU or store
unknown) waits as a discrepancy and is applied exactly once when the SKU is registered
(from the catalogue, in the registration's transaction) or when headquarters reconciles.
Goods received from suppliers and returned to them (supply's events) are facts too, and
follow the same rule; each of their lines is applied once, by its receipt or return id and
its position, however often the event arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from servicekit.coalescing import Coalescer
from servicekit.db import UnitOfWork
from servicekit.errors import FailedPrecondition, InvalidArgument
from servicekit.idempotency import (
    ReplyCodec,
    RequestIdReused,
    claim_fingerprint,
    claim_fingerprints,
    release_claims,
    store_replies,
    store_reply,
)
from services.inventory.adapters import stock_store, transfer_store
from services.inventory.adapters.integration_events import (
    StockChangeCause,
    reservation_committed,
    reservation_expired,
    reservation_made,
    reservation_released,
    stock_level_changes,
)
from services.inventory.adapters.transfer_store import TransferRow
from services.inventory.domain.journal import AppliedSale, JournalSale, apply_journal_sale
from services.inventory.domain.locations import Location
from services.inventory.domain.model import (
    ZERO,
    Allocation,
    DiscrepancyKind,
    LineSource,
    MovementKind,
    OutOfStock,
    PendingSaleLine,
    Reservation,
    ReservationNotFound,
    ReservationStatus,
    StockPosition,
    TransferStatus,
    UnknownLocation,
    UnknownSku,
    channel_shortfall,
    choose_location,
    split_allocation,
)
from services.inventory.service_layer.commands import PendingLinesReport, ReserveStock
from services.inventory.service_layer.discrepancies import lock_known_positions, record_discrepancy

# The chain trades in China: a sale belongs to the local calendar day it happened on.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8))
# How many other locations to try when the best one sold out between reading and locking.
ALLOCATION_ATTEMPTS = 3
# How many of the sale lines still waiting a reconciliation reports by name.
PENDING_LINES_REPORTED = 100
# The change a waiting line's movement announces; a level several lines moved names the first listed.
_WAITING_LINE_CAUSES = (
    StockChangeCause.SALE,
    StockChangeCause.VENDOR_RETURN,
    StockChangeCause.RECEIPT,
    StockChangeCause.RETURN,
)


class InventoryService:
    """The inventory application service: what the gRPC servicer and the consumers call."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        codec: ReplyCodec[Reservation],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_batch: int = 256,
    ) -> None:
        self._uow = unit_of_work
        self._codec = codec
        self._clock = clock
        self.coalescer: Coalescer[str, ReserveStock, Reservation] = Coalescer(self._reserve_batch, max_batch=max_batch)

    # -- reservations ----------------------------------------------------------------------
    async def reserve(self, command: ReserveStock) -> Reservation:
        if command.location_id:
            return await self.coalescer.submit(command.location_id, command)
        if command.allow_split:
            return await self._reserve_split(command)
        async with self._uow() as uow:
            candidates = await stock_store.positions_for_channel(uow.session, command.sku, command.channel)
        for position in choose_location(candidates, command.quantity)[:ALLOCATION_ATTEMPTS]:
            try:
                return await self.coalescer.submit(position.location_id, command)
            except OutOfStock:  # taken by someone else meanwhile: next best location
                continue
        async with self._uow() as uow:
            raise await self._channel_refusal(uow, command)

    async def _reserve_batch(
        self, location_id: str, commands: Sequence[ReserveStock]
    ) -> list[Reservation | BaseException]:
        """One transaction for every queued reservation at one location, whatever their SKUs: a
        flash sale's hot SKU and the rest of the location's orders share its commits."""
        outcomes: list[Reservation | BaseException | None] = [None] * len(commands)
        first_of: dict[str, int] = {}
        async with self._uow() as uow:
            session = uow.session
            distinct: list[int] = []
            for index, command in enumerate(commands):
                if command.request_id not in first_of:  # the same request twice in one batch shares an answer
                    first_of[command.request_id] = index
                    distinct.append(index)
            claims = await claim_fingerprints(session, [commands[i].request for i in distinct])
            live: list[int] = []
            for index, claim in zip(distinct, claims, strict=True):
                if claim is None:
                    live.append(index)
                elif isinstance(claim, BaseException):
                    outcomes[index] = claim
                else:
                    outcomes[index] = self._codec.decode(claim)
            positions = await stock_store.lock_positions(session, {(commands[i].sku, location_id) for i in live})
            granted: list[tuple[int, Reservation]] = []
            refused: list[str] = []
            not_stocked: dict[str, BaseException] = {}
            now = self._clock()
            for index in live:
                command = commands[index]
                position = positions.get((command.sku, location_id))
                if position is None:
                    if command.sku not in not_stocked:
                        not_stocked[command.sku] = await self._unknown_error(
                            uow, command.sku, location_id
                        ) or OutOfStock(
                            f"{command.sku} is not stocked at {location_id}",
                            details={"sku": command.sku, "location_id": location_id, "available": "0"},
                        )
                    outcomes[index] = not_stocked[command.sku]
                    refused.append(command.request_id)
                    continue
                reservation_id = str(uuid.uuid4())
                try:
                    position.reserve(command.quantity, reservation_id)
                except OutOfStock as refusal:
                    outcomes[index] = refusal
                    refused.append(command.request_id)
                    continue
                reservation = Reservation(
                    reservation_id=reservation_id,
                    sku=command.sku,
                    channel=command.channel,
                    status=ReservationStatus.ACTIVE,
                    expires_at=now + command.ttl,
                    allocations=[Allocation(location_id, command.quantity)],
                    owner=command.owner,
                )
                granted.append((index, reservation))
                outcomes[index] = reservation
            if granted:
                await stock_store.insert_reservations(session, [r for _, r in granted])
                changed = await stock_store.save_positions(session, positions.values())
                await store_replies(session, [(commands[i].request_id, self._codec.encode(r)) for i, r in granted])
                # Each level the batch moved is one level change; each reservation granted is a fact of its own.
                uow.publish(*stock_level_changes(changed, StockChangeCause.RESERVATION, now))
                uow.publish(*(reservation_made(reservation, now) for _, reservation in granted))
            await release_claims(session, refused)
            await uow.commit()
        for index, command in enumerate(commands):
            if outcomes[index] is None:  # a duplicate inside the batch shares the first one's outcome
                first = outcomes[first_of[command.request_id]]
                same = command.request == commands[first_of[command.request_id]].request
                outcomes[index] = (
                    first
                    if same
                    else RequestIdReused(f"request_id {command.request_id!r} was already used for a different request")
                )
        return [outcome for outcome in outcomes if outcome is not None]

    async def _reserve_split(self, command: ReserveStock) -> Reservation:
        async with self._uow() as uow:
            stored = await claim_fingerprint(uow.session, command.request)
            if stored is not None:
                return self._codec.decode(stored)
            candidates = await stock_store.positions_for_channel(uow.session, command.sku, command.channel)
            locked = await stock_store.lock_positions(uow.session, [(p.sku, p.location_id) for p in candidates])
            try:
                allocations = split_allocation(list(locked.values()), command.quantity)
            except OutOfStock:
                raise await self._channel_refusal(uow, command) from None
            now = self._clock()
            reservation = Reservation(
                reservation_id=str(uuid.uuid4()),
                sku=command.sku,
                channel=command.channel,
                status=ReservationStatus.ACTIVE,
                expires_at=now + command.ttl,
                allocations=allocations,
                owner=command.owner,
            )
            for allocation in allocations:
                locked[(command.sku, allocation.location_id)].reserve(allocation.quantity, reservation.reservation_id)
            await stock_store.insert_reservations(uow.session, [reservation])
            changed = await stock_store.save_positions(uow.session, locked.values())
            await store_reply(uow.session, command.request_id, self._codec.encode(reservation))
            uow.publish(
                *stock_level_changes(changed, StockChangeCause.RESERVATION, now), reservation_made(reservation, now)
            )
            await uow.commit()
            return reservation

    async def commit(self, uow: UnitOfWork, reservation_id: str, owner: str = "") -> Reservation:
        """Paid: stop the clock. The journaled sale carrying this id sells the units."""
        reservation = await self._open_reservation(uow, reservation_id, owner)
        reservation.status = ReservationStatus.COMMITTED
        await stock_store.set_reservation_status(uow.session, reservation)
        return reservation

    async def release(self, uow: UnitOfWork, reservation_id: str, owner: str = "") -> Reservation:
        reservation = await self._open_reservation(uow, reservation_id, owner)
        changed = await self._give_back(uow, reservation, MovementKind.RELEASE, ReservationStatus.RELEASED)
        now = self._clock()
        uow.publish(
            *stock_level_changes(changed, StockChangeCause.RELEASE, now), reservation_released(reservation, now)
        )
        return reservation

    async def get_reservation(self, reservation_id: str, owner: str = "") -> Reservation:
        async with self._uow() as uow:
            reservation = await stock_store.load_reservation(uow.session, reservation_id, lock=False)
        if reservation is None:
            raise ReservationNotFound(f"reservation {reservation_id} does not exist")
        reservation.ensure_owned_by(owner)
        return reservation

    async def expire_due(self, limit: int = 500) -> int:
        """Release expired reservations in one batch; returns how many expired."""
        async with self._uow() as uow:
            now = self._clock()
            due = await stock_store.lock_expired_reservations(uow.session, now, limit)
            changed: list[StockPosition] = []
            for reservation in due:
                changed += await self._give_back(uow, reservation, MovementKind.EXPIRY, ReservationStatus.EXPIRED)
                uow.publish(reservation_expired(reservation, now))
            # A level that several expiries touched is announced once, as the sweep left it.
            uow.publish(*stock_level_changes(changed, StockChangeCause.EXPIRY, now))
            await uow.commit()
        return len(due)

    async def _open_reservation(self, uow: UnitOfWork, reservation_id: str, owner: str) -> Reservation:
        reservation = await stock_store.load_reservation(uow.session, reservation_id, lock=True)
        if reservation is None:
            raise ReservationNotFound(f"reservation {reservation_id} does not exist")
        reservation.ensure_owned_by(owner)
        reservation.ensure_open(self._clock())
        return reservation

    async def _give_back(
        self, uow: UnitOfWork, reservation: Reservation, kind: MovementKind, status: ReservationStatus
    ) -> list[StockPosition]:
        """Return the held units; returns the levels that changed."""
        keys = [(reservation.sku, a.location_id) for a in reservation.allocations]
        positions = await stock_store.lock_positions(uow.session, keys)
        for allocation in reservation.allocations:
            positions[(reservation.sku, allocation.location_id)].unreserve(
                allocation.quantity, reservation.reservation_id, kind
            )
        reservation.status = status
        await stock_store.set_reservation_status(uow.session, reservation)
        return await stock_store.save_positions(uow.session, positions.values())

    # -- the sales journal -----------------------------------------------------------------
    async def apply_sale(
        self,
        uow: UnitOfWork,
        *,
        sale_id: str,
        location_id: str,
        is_return: bool,
        lines: Sequence[tuple[str, Decimal]],
        reservation_id: str,
        occurred_at: datetime | None,
        unreadable: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Apply one journal entry; called once per sale id (the consumer's inbox sees to that).

        The sale happened, so nothing of it is refused or dropped. The lines inventory can
        apply move stock now. A line whose SKU or location inventory does not know waits as a
        discrepancy and is applied exactly once when both exist (:meth:`apply_waiting_lines`).
        A line whose quantity cannot move stock (``unreadable``: the SKU and the quantity as
        journaled) is recorded for the store to count. The rules are :func:`apply_journal_sale`'s,
        applied as :meth:`apply_sales` applies a batch of one.
        """
        sale = JournalSale(sale_id, location_id, is_return, lines, reservation_id, occurred_at, unreadable)
        await self.apply_sales(uow, [sale])

    async def apply_sales(self, uow: UnitOfWork, sales: Sequence[JournalSale]) -> None:
        """Apply journal entries in their order, leaving exactly what :meth:`apply_sale` for each
        in turn leaves, in a fixed number of statements whatever the batch's size.

        The SALES consumer hands it the fresh sales of one fetch (each sale id once, through its
        inbox). Every reservation the batch names is locked first (one statement, id order), then
        every stock level it touches, once, in (sku, location) order (reservations before levels,
        as everywhere, so nothing deadlocks). Each entry is then applied in memory, in order, by
        :func:`apply_journal_sale` — the one copy of the rules — so a later sale of a level sees
        the earlier ones, and a negative-stock discrepancy names the on-hand its own sale left.
        The levels and their movements are saved once, the daily totals accumulated once, and each
        level changed is announced once, as the batch left it: a ``SALE`` if a sale (not a return)
        moved it, else a ``RETURN``. Reservation and discrepancy events follow per entry.
        """
        if not sales:
            return
        session = uow.session
        reservations = await stock_store.load_reservations(
            session, sorted({sale.fulfils for sale in sales if sale.fulfils}), lock=True
        )
        keys = {(sku, sale.location_id) for sale in sales for sku, _ in sale.lines}
        for reservation in reservations.values():
            if reservation.status in (ReservationStatus.ACTIVE, ReservationStatus.COMMITTED):
                keys |= {(reservation.sku, allocation.location_id) for allocation in reservation.allocations}
        positions, unknown, unknown_locations = await lock_known_positions(
            session, keys, {sale.location_id for sale in sales}
        )
        applied = [
            apply_journal_sale(
                sale,
                positions,
                reservations.get(sale.fulfils),
                unknown_skus=unknown,
                location_known=sale.location_id not in unknown_locations,
            )
            for sale in sales
        ]
        for outcome in applied:
            if outcome.fulfilled is not None:
                await stock_store.set_reservation_status(session, outcome.fulfilled)
        changed = await stock_store.save_positions(session, positions.values())
        now = self._clock()
        daily: dict[tuple[str, date, str], Decimal] = {}
        for sale, outcome in zip(sales, applied, strict=True):
            day = self._business_day(sale.occurred_at)
            for sku, quantity in outcome.sold:
                daily[(sale.location_id, day, sku)] = daily.get((sale.location_id, day, sku), ZERO) + quantity
        await stock_store.add_journal_sales(session, daily)
        sold = {
            key for sale, outcome in zip(sales, applied, strict=True) if not sale.is_return for key in outcome.levels
        }
        uow.publish(
            *stock_level_changes([p for p in changed if (p.sku, p.location_id) in sold], StockChangeCause.SALE, now)
        )
        uow.publish(
            *stock_level_changes(
                [p for p in changed if (p.sku, p.location_id) not in sold], StockChangeCause.RETURN, now
            )
        )
        for sale, outcome in zip(sales, applied, strict=True):
            await self._record_sale_discrepancies(uow, now, sale, outcome)

    async def _record_sale_discrepancies(
        self, uow: UnitOfWork, now: datetime, sale: JournalSale, outcome: AppliedSale
    ) -> None:
        """What one applied entry leaves for people: its reservation fulfilled, the levels its sale
        took below zero, its lines waiting for their SKU or location, its unreadable quantities."""
        if outcome.fulfilled is not None:
            uow.publish(reservation_committed(outcome.fulfilled, now))
        for sku, where, on_hand in outcome.short:
            await record_discrepancy(
                uow,
                now,
                DiscrepancyKind.NEGATIVE_STOCK,
                sku=sku,
                location_id=where,
                sale_id=sale.sale_id,
                occurred_at=sale.occurred_at,
                on_hand_after=on_hand,
            )
        for sku, (kind, quantity) in sorted(outcome.waiting.items()):
            await record_discrepancy(
                uow,
                now,
                kind,
                sku=sku,
                location_id=sale.location_id,
                sale_id=sale.sale_id,
                occurred_at=sale.occurred_at,
                quantity=quantity,
                is_return=sale.is_return,
            )
        for sku, quantity_text in sale.unreadable:
            await record_discrepancy(
                uow,
                now,
                DiscrepancyKind.UNREADABLE_QUANTITY,
                sku=sku,
                location_id=sale.location_id,
                sale_id=sale.sale_id,
                occurred_at=sale.occurred_at,
                is_return=sale.is_return,
                detail=f"quantity {quantity_text!r} cannot move stock",
            )

    async def register_item(
        self, uow: UnitOfWork, *, sku: str, name: str, category: str, unit: str, supplier_id: str, active: bool
    ) -> int:
        """The catalogue describes ``sku``: inventory knows it from now on, and the sale lines that
        waited for it are applied, each once, in this same transaction. Returns how many."""
        await stock_store.lock_item_registration(uow.session, sku)
        await stock_store.register_item(
            uow.session, sku=sku, name=name, category=category, unit=unit, supplier_id=supplier_id, active=active
        )
        return await self.apply_waiting_lines(uow, sku=sku)

    async def apply_waiting_lines(
        self, uow: UnitOfWork, *, sku: str | None = None, location_id: str | None = None
    ) -> int:
        """Apply the waiting sale lines (of one SKU, at one location) whose SKU and location exist now.

        Each line moves stock exactly once: it is row-locked, applied and marked in one
        transaction, and lines another transaction is applying are left to it. Returns how
        many were applied.
        """
        session = uow.session
        lines = await stock_store.lock_applicable_waiting_lines(session, sku=sku, location_id=location_id)
        if not lines:
            return 0
        positions = await stock_store.lock_or_create_positions(
            session, {(line.sku, line.location_id) for line in lines}
        )
        shortfalls: list[tuple[PendingSaleLine, Decimal]] = []
        causes: dict[tuple[str, str], set[StockChangeCause]] = {}
        for line in lines:
            position = positions[(line.sku, line.location_id)]
            line.apply_to(position)
            causes.setdefault((line.sku, line.location_id), set()).add(_waiting_line_cause(line))
            if line.takes_stock_out and position.is_short:
                shortfalls.append((line, position.on_hand))
        changed = await stock_store.save_positions(session, positions.values())
        now = self._clock()
        await stock_store.mark_lines_applied(session, [line.discrepancy_id for line in lines], now)
        daily: dict[tuple[str, date, str], Decimal] = {}
        for line in lines:
            if line.source is not LineSource.SALE:
                continue  # goods received or returned to a supplier are no demand
            key = (line.location_id, self._business_day(line.occurred_at), line.sku)
            daily[key] = daily.get(key, ZERO) + (-line.quantity if line.is_return else line.quantity)
        await stock_store.add_journal_sales(session, daily)
        named = {key: next(c for c in _WAITING_LINE_CAUSES if c in found) for key, found in causes.items()}
        for cause in _WAITING_LINE_CAUSES:
            uow.publish(
                *stock_level_changes([p for p in changed if named[(p.sku, p.location_id)] is cause], cause, now)
            )
        for line, on_hand in shortfalls:
            await record_discrepancy(
                uow,
                now,
                DiscrepancyKind.NEGATIVE_STOCK,
                sku=line.sku,
                location_id=line.location_id,
                sale_id=line.sale_id,
                occurred_at=line.occurred_at,
                on_hand_after=on_hand,
                source=line.source,
            )
        return len(lines)

    async def apply_pending_sale_lines(self, uow: UnitOfWork, location_id: str = "") -> PendingLinesReport:
        """Apply what has become applicable (at one location, or everywhere) and report what still waits."""
        applied = await self.apply_waiting_lines(uow, location_id=location_id or None)
        total, oldest = await stock_store.waiting_lines(
            uow.session, location_id=location_id or None, limit=PENDING_LINES_REPORTED
        )
        return PendingLinesReport(applied=applied, still_waiting=total, oldest_waiting=oldest)

    def _business_day(self, occurred_at: datetime | None) -> date:
        return (occurred_at or self._clock()).astimezone(CHINA_STANDARD_TIME).date()

    # -- questions -----------------------------------------------------------------------------
    async def locations(self) -> list[Location]:
        """Every active location with the channels it serves."""
        async with self._uow() as uow:
            return await stock_store.list_locations(uow.session)

    async def availability(self, sku: str) -> tuple[list[StockPosition], str]:
        """The SKU's stock at every location, and its supplier."""
        async with self._uow() as uow:
            positions = await stock_store.read_positions(uow.session, sku=sku)
            if not positions and not await stock_store.known_sku(uow.session, sku):
                raise UnknownSku(f"SKU {sku} does not exist")
            return positions, await stock_store.supplier_of(uow.session, sku)

    async def location_stock(self, location_id: str, after_sku: str, limit: int) -> list[StockPosition]:
        async with self._uow() as uow:
            if not await stock_store.known_location(uow.session, location_id):
                raise UnknownLocation(f"location {location_id} does not exist")
            return await stock_store.read_positions(
                uow.session, location_id=location_id, after_sku=after_sku, limit=limit
            )

    async def transfers(
        self, location_id: str, statuses: Sequence[TransferStatus], page_token: str, limit: int
    ) -> tuple[list[TransferRow], str]:
        """A page of the transfers into or out of a location, newest first, and the next page's token."""
        after = _transfer_cursor(page_token)
        async with self._uow() as uow:
            if not await stock_store.known_location(uow.session, location_id):
                raise UnknownLocation(f"location {location_id} does not exist")
            rows = await transfer_store.list_transfers(uow.session, location_id, statuses, after, limit + 1)
        page = rows[:limit]
        token = f"{page[-1].requested_at.isoformat()}|{page[-1].transfer.transfer_id}" if len(rows) > limit else ""
        return page, token

    async def ledger_check(self, sku: str, location_id: str) -> tuple[StockPosition, tuple[Decimal, Decimal, Decimal]]:
        async with self._uow() as uow:
            positions = await stock_store.read_positions(uow.session, sku=sku, location_id=location_id, limit=1)
            if not positions:
                raise await self._unknown_error(uow, sku, location_id) or FailedPrecondition(
                    f"{sku} is not stocked at {location_id}", reason="not-stocked"
                )
            return positions[0], await stock_store.ledger_sums(uow.session, sku, location_id)

    async def _unknown_error(
        self, uow: UnitOfWork, sku: str, location_id: str | None
    ) -> UnknownSku | UnknownLocation | None:
        """Why a SKU (at a location) has no stock level: unknown SKU or location, or None if both exist."""
        if not await stock_store.known_sku(uow.session, sku):
            return UnknownSku(f"SKU {sku} does not exist")
        if location_id is not None and not await stock_store.known_location(uow.session, location_id):
            return UnknownLocation(f"location {location_id} does not exist")
        return None

    async def _channel_refusal(
        self, uow: UnitOfWork, command: ReserveStock
    ) -> UnknownSku | UnknownLocation | OutOfStock:
        """Why a reservation for a channel is refused: what the channel's locations hold and where
        the rest of the stock is (an unknown SKU is ``NOT_FOUND`` instead)."""
        unknown = await self._unknown_error(uow, command.sku, None)
        if unknown is not None:
            return unknown
        stock = await stock_store.stock_by_location(uow.session, command.sku)
        return channel_shortfall(command.sku, command.channel, command.quantity, stock, allow_split=command.allow_split)


def _waiting_line_cause(line: PendingSaleLine) -> StockChangeCause:
    if line.source is LineSource.RECEIPT:
        return StockChangeCause.RECEIPT
    if line.source is LineSource.VENDOR_RETURN:
        return StockChangeCause.VENDOR_RETURN
    return StockChangeCause.RETURN if line.is_return else StockChangeCause.SALE


def _transfer_cursor(token: str) -> tuple[datetime, str] | None:
    """The (requested_at, transfer id) a transfers page token names; ``None`` for the first page."""
    if not token:
        return None
    moment, _, transfer_id = token.partition("|")
    try:
        return datetime.fromisoformat(moment), str(uuid.UUID(transfer_id))
    except ValueError:
        raise InvalidArgument("page_token is not one this list gave", reason="invalid-page-token") from None
