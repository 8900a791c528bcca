"""A SALES journal entry applied to stock: the one copy of a journaled sale's rules.

A sale or return that happened at a till is a fact: nothing of it is refused. Units a
reservation holds for it are sold from the reservation; the rest sells (or comes back) at the
entry's location, even below zero; a line of a SKU or location inventory does not know waits.
The service applies entries one at a time or a batch at once with these same rules
(``InventoryService.apply_sales``), so both leave the same stock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.inventory.domain.model import (
    ZERO,
    DiscrepancyKind,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockPosition,
)


@dataclass(frozen=True)
class JournalSale:
    """One entry of the SALES journal as inventory applies it: a sale or a return at a location.

    ``lines`` holds one quantity per SKU (a sale's lines of one SKU summed); ``unreadable``
    the SKUs whose quantity cannot move stock, with the quantity as journaled.
    """

    sale_id: str
    location_id: str
    is_return: bool
    lines: Sequence[tuple[str, Decimal]]
    reservation_id: str = ""
    occurred_at: datetime | None = None
    unreadable: Sequence[tuple[str, str]] = ()

    @property
    def fulfils(self) -> str:
        """The reservation this entry sells the units of, if any (a return fulfils none)."""
        return "" if self.is_return else self.reservation_id


@dataclass(frozen=True)
class AppliedSale:
    """What applying one :class:`JournalSale` to the stock levels did, beyond their movements."""

    waiting: dict[str, tuple[DiscrepancyKind, Decimal]]  # SKU → why its line (or the rest of it) waits, and how much
    levels: list[tuple[str, str]]  # the levels the entry moved or could have moved, in (sku, location) order
    short: list[tuple[str, str, Decimal]]  # a sale's levels left below zero: (sku, location, on-hand after it)
    fulfilled: Reservation | None  # the reservation it sold, now fulfilled
    sold: list[tuple[str, Decimal]]  # per SKU, the quantity that moved stock, negative for a return


def apply_journal_sale(
    sale: JournalSale,
    positions: Mapping[tuple[str, str], StockPosition],
    reservation: Reservation | None,
    *,
    unknown_skus: Collection[str],
    location_known: bool,
) -> AppliedSale:
    """Apply one journal entry to the (locked) stock levels: the rules of a journaled sale.

    Nothing of it is refused. Units a still open ``reservation`` holds for the entry are sold
    from it first, and what it held beyond the sale goes back to available-to-promise; the
    rest sells (or, for a return, comes back) at the entry's location, even below zero. A line
    whose SKU (``unknown_skus``) or location inventory does not know waits instead. ``positions``
    must hold every level of the entry's known SKUs at its location (unless that is unknown)
    and of the reservation's allocations.
    """
    if reservation is not None and reservation.status not in (ReservationStatus.ACTIVE, ReservationStatus.COMMITTED):
        reservation = None  # expired or released before the sale arrived: a plain sale
    location_id, sale_id = sale.location_id, sale.sale_id
    from_reservation: dict[str, Decimal] = {}
    waiting: dict[str, tuple[DiscrepancyKind, Decimal]] = {}
    for sku, quantity in sale.lines:
        if sku in unknown_skus:
            waiting[sku] = (DiscrepancyKind.UNKNOWN_SKU, quantity)
            continue
        remaining = quantity
        if reservation is not None and sku == reservation.sku:
            for allocation in reservation.allocations:
                take = min(remaining, allocation.quantity - from_reservation.get(allocation.location_id, ZERO))
                if take > ZERO:
                    positions[(sku, allocation.location_id)].sell_reserved(take, sale_id)
                    from_reservation[allocation.location_id] = from_reservation.get(allocation.location_id, ZERO) + take
                    remaining -= take
        if remaining <= ZERO:
            continue
        if not location_known:
            waiting[sku] = (DiscrepancyKind.UNKNOWN_LOCATION, remaining)
        elif sale.is_return:
            positions[(sku, location_id)].take_back(remaining, sale_id)
        else:
            positions[(sku, location_id)].sell(remaining, sale_id)
    keys = {(sku, location_id) for sku, _ in sale.lines}
    if reservation is not None:
        keys |= {(reservation.sku, allocation.location_id) for allocation in reservation.allocations}
        # Units held beyond what the sale took go back to available-to-promise.
        for allocation in reservation.allocations:
            leftover = allocation.quantity - from_reservation.get(allocation.location_id, ZERO)
            if leftover > ZERO:
                positions[(reservation.sku, allocation.location_id)].unreserve(
                    leftover, reservation.reservation_id, MovementKind.RELEASE
                )
        reservation.status = ReservationStatus.FULFILLED
        reservation.sale_id = sale_id
    levels = sorted(key for key in keys if key in positions)
    short = [] if sale.is_return else [(sku, where, positions[(sku, where)].on_hand) for sku, where in levels]
    sign = Decimal(-1) if sale.is_return else Decimal(1)
    sold = [(sku, quantity - waiting[sku][1] if sku in waiting else quantity) for sku, quantity in sale.lines]
    return AppliedSale(
        waiting=waiting,
        levels=levels,
        short=[(sku, where, on_hand) for sku, where, on_hand in short if on_hand < ZERO],
        fulfilled=reservation,
        sold=[(sku, sign * quantity) for sku, quantity in sold if quantity > ZERO],
    )
