"""Stock, reservations and the movement ledger: the rules, in plain Python.

A :class:`StockPosition` is one SKU at one location. It changes only by applying a
:class:`Movement`, and every movement is also written to the ledger, so the balance always
equals the sum of its ledger. Reservations never take available-to-promise below zero;
sales that already happened (often offline) are always applied, and a sale that drives
on-hand below zero is reported as a discrepancy rather than refused. A sale line that
cannot be applied yet (its SKU or location unknown to inventory) is not refused either: it
is kept as a :class:`PendingSaleLine` and applied once when both exist. Goods received from
a supplier and goods returned to one (:class:`SupplyLine`) follow the same rule.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from servicekit.errors import FailedPrecondition, InvalidArgument, NotFound

ZERO = Decimal(0)
MAX_QUANTITY = Decimal(100_000)
QUANTITY_PLACES = 3  # kilograms to the gram
DEFAULT_RESERVATION_TTL = timedelta(minutes=15)
MAX_RESERVATION_TTL = timedelta(days=2)


class MovementKind(enum.StrEnum):
    OPENING_BALANCE = "opening_balance"
    RECEIPT = "receipt"
    SALE = "sale"
    RETURN = "return"
    RESERVATION = "reservation"
    RELEASE = "release"
    EXPIRY = "expiry"
    RESERVED_SALE = "reserved_sale"  # a committed reservation turned into sold units
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    COUNT_ADJUSTMENT = "count_adjustment"
    SHRINK = "shrink"
    VENDOR_RETURN = "vendor_return"  # goods sent back to their supplier


class DiscrepancyKind(enum.StrEnum):
    """What a recorded stock discrepancy is (the journal's facts are never refused or dropped)."""

    NEGATIVE_STOCK = "negative_stock"  # a sale took on-hand below zero; applied
    UNKNOWN_SKU = "unknown_sku"  # a line of a SKU inventory does not know; waits, unapplied
    UNKNOWN_LOCATION = "unknown_location"  # a line at a location inventory does not know; waits
    UNREADABLE_QUANTITY = "unreadable_quantity"  # a line whose quantity cannot move stock


WAITING_KINDS = (DiscrepancyKind.UNKNOWN_SKU, DiscrepancyKind.UNKNOWN_LOCATION)


class LineSource(enum.StrEnum):
    """Where a line that moves stock comes from: the sales journal or supply's goods documents."""

    SALE = "sale"  # a sale or return at a till (SaleRecorded)
    RECEIPT = "receipt"  # accepted goods from a supplier (GoodsReceived)
    VENDOR_RETURN = "vendor_return"  # goods sent back to a supplier (GoodsReturnedToVendor)


class ReservationStatus(enum.StrEnum):
    ACTIVE = "active"
    COMMITTED = "committed"
    FULFILLED = "fulfilled"
    RELEASED = "released"
    EXPIRED = "expired"


class OutOfStock(FailedPrecondition):
    """Not enough available-to-promise; ``details`` says how much there is."""

    reason = "out-of-stock"


class UnknownSku(NotFound):
    reason = "unknown-sku"


class UnknownLocation(NotFound):
    reason = "unknown-location"


class ReservationNotFound(NotFound):
    reason = "reservation-not-found"


class ReservationNotActive(FailedPrecondition):
    """The reservation was already committed, released, expired or fulfilled."""

    reason = "reservation-not-active"


def format_quantity(quantity: Decimal) -> str:
    """The canonical text of a quantity: no exponent, no trailing zeros ("2", "0.375")."""
    return format(quantity.normalize(), "f") if quantity else "0"


def parse_quantity(text: str, *, field_name: str = "quantity", allow_zero: bool = False) -> Decimal:
    """A positive (or, where allowed, zero) quantity with at most three decimals, below an absurd bound."""
    try:
        quantity = Decimal(text)
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidArgument(f"{field_name} {text!r} is not a decimal number", reason="invalid-quantity") from None
    if not quantity.is_finite() or quantity < ZERO or (quantity == ZERO and not allow_zero):
        raise InvalidArgument(f"{field_name} must be positive, got {text!r}", reason="invalid-quantity")
    if quantity > MAX_QUANTITY:
        raise InvalidArgument(f"{field_name} {text} exceeds the maximum of {MAX_QUANTITY}", reason="invalid-quantity")
    if -quantity.as_tuple().exponent > QUANTITY_PLACES:  # type: ignore[operator]
        raise InvalidArgument(
            f"{field_name} {text} has more than {QUANTITY_PLACES} decimals", reason="invalid-quantity"
        )
    return quantity


def reservation_ttl(seconds: int) -> timedelta:
    if seconds < 0:
        raise InvalidArgument("ttl_seconds must not be negative", reason="invalid-ttl")
    if seconds == 0:
        return DEFAULT_RESERVATION_TTL
    ttl = timedelta(seconds=seconds)
    if ttl > MAX_RESERVATION_TTL:
        raise InvalidArgument(
            f"ttl_seconds may be at most {int(MAX_RESERVATION_TTL.total_seconds())}", reason="invalid-ttl"
        )
    return ttl


@dataclass(frozen=True)
class Movement:
    """One ledger line: what changed on one stock position, and why."""

    sku: str
    location_id: str
    kind: MovementKind
    on_hand_delta: Decimal = ZERO
    reserved_delta: Decimal = ZERO
    in_transit_delta: Decimal = ZERO
    reference: str = ""


@dataclass
class StockPosition:
    """One SKU at one location."""

    sku: str
    location_id: str
    on_hand: Decimal = ZERO
    reserved: Decimal = ZERO
    in_transit: Decimal = ZERO
    safety_stock: Decimal = ZERO
    movements: list[Movement] = field(default_factory=list)

    @property
    def available_to_promise(self) -> Decimal:
        return max(ZERO, self.on_hand - self.reserved - self.safety_stock)

    def _apply(self, movement: Movement) -> Movement:
        self.on_hand += movement.on_hand_delta
        self.reserved += movement.reserved_delta
        self.in_transit += movement.in_transit_delta
        self.movements.append(movement)
        return movement

    def reserve(self, quantity: Decimal, reservation_id: str) -> Movement:
        if quantity > self.available_to_promise:
            raise OutOfStock(
                f"only {self.available_to_promise} of {self.sku} available at {self.location_id}, {quantity} requested",
                details={
                    "sku": self.sku,
                    "location_id": self.location_id,
                    "available": format_quantity(self.available_to_promise),
                    "requested": format_quantity(quantity),
                },
            )
        return self._apply(
            Movement(self.sku, self.location_id, MovementKind.RESERVATION, ZERO, quantity, ZERO, reservation_id)
        )

    def unreserve(self, quantity: Decimal, reservation_id: str, kind: MovementKind) -> Movement:
        """Release or expiry: the held units become available again."""
        return self._apply(Movement(self.sku, self.location_id, kind, ZERO, -quantity, ZERO, reservation_id))

    def sell_reserved(self, quantity: Decimal, sale_id: str) -> Movement:
        """A committed reservation's sale: the held units leave the building."""
        return self._apply(
            Movement(self.sku, self.location_id, MovementKind.RESERVED_SALE, -quantity, -quantity, ZERO, sale_id)
        )

    def sell(self, quantity: Decimal, sale_id: str) -> Movement:
        """A sale that happened; applied even if it takes on-hand below zero."""
        return self._apply(Movement(self.sku, self.location_id, MovementKind.SALE, -quantity, ZERO, ZERO, sale_id))

    def take_back(self, quantity: Decimal, sale_id: str) -> Movement:
        return self._apply(Movement(self.sku, self.location_id, MovementKind.RETURN, quantity, ZERO, ZERO, sale_id))

    def receive(self, quantity: Decimal, reference: str, kind: MovementKind = MovementKind.RECEIPT) -> Movement:
        return self._apply(Movement(self.sku, self.location_id, kind, quantity, ZERO, ZERO, reference))

    def return_to_vendor(self, quantity: Decimal, reference: str) -> Movement:
        """Goods that went back to their supplier; applied even if it takes on-hand below zero."""
        return self._apply(
            Movement(self.sku, self.location_id, MovementKind.VENDOR_RETURN, -quantity, ZERO, ZERO, reference)
        )

    @property
    def is_short(self) -> bool:
        """On-hand below zero: sales were recorded that the stock cannot explain."""
        return self.on_hand < ZERO


@dataclass(frozen=True)
class PendingSaleLine:
    """A line recorded but not applied yet because its SKU or location was unknown: a journaled
    sale's or return's, or a goods receipt's or return to vendor's (``source``; then ``sale_id``
    is the line's reference, see :meth:`SupplyLine.reference`)."""

    discrepancy_id: str
    kind: DiscrepancyKind
    sale_id: str
    location_id: str
    sku: str
    quantity: Decimal
    is_return: bool
    occurred_at: datetime | None
    source: LineSource = LineSource.SALE

    def apply_to(self, position: StockPosition) -> Movement:
        """The line's movement, as the sale, return, receipt or return to vendor would have made it on arrival."""
        if self.source is LineSource.RECEIPT:
            return position.receive(self.quantity, self.sale_id)
        if self.source is LineSource.VENDOR_RETURN:
            return position.return_to_vendor(self.quantity, self.sale_id)
        if self.is_return:
            return position.take_back(self.quantity, self.sale_id)
        return position.sell(self.quantity, self.sale_id)

    @property
    def takes_stock_out(self) -> bool:
        """Whether the line's units leave the location (a sale or a return to vendor)."""
        return self.source is LineSource.VENDOR_RETURN or (self.source is LineSource.SALE and not self.is_return)


@dataclass(frozen=True)
class SupplyLine:
    """One line of a goods receipt (accepted units in) or of a return to vendor (units out).

    Lot and expiry are kept beside the movement as its metadata; stock is not tracked by lot.
    """

    source: LineSource  # RECEIPT or VENDOR_RETURN
    document_id: str  # the receipt_id or return_id
    line_index: int  # the line's position in the event, from 0
    sku: str
    quantity: Decimal  # accepted (receipt) or returned units; zero moves nothing
    rejected: Decimal | None = ZERO  # a receipt's rejected units, never stock (None: unreadable)
    reject_reason: str = ""
    po_line_number: int = 0
    lot: str = ""
    expiry_date: str = ""

    @property
    def reference(self) -> str:
        """The line's key and its movement's reference: ``receipt:<id>#<line>``, ``vendor-return:<id>#<line>``."""
        prefix = "receipt" if self.source is LineSource.RECEIPT else "vendor-return"
        return f"{prefix}:{self.document_id}#{self.line_index}"


@dataclass
class Allocation:
    location_id: str
    quantity: Decimal


@dataclass
class Reservation:
    reservation_id: str
    sku: str
    channel: str
    status: ReservationStatus
    expires_at: datetime
    allocations: list[Allocation]
    sale_id: str = ""
    owner: str = ""

    def ensure_owned_by(self, client: str) -> None:
        """Another client's reservation does not exist, as far as the caller can tell."""
        if client and self.owner and client != self.owner:
            raise ReservationNotFound(f"reservation {self.reservation_id} does not exist")

    @property
    def quantity(self) -> Decimal:
        return sum((allocation.quantity for allocation in self.allocations), ZERO)

    def ensure_open(self, now: datetime) -> None:
        """Still holding units that a commit or release may act on."""
        if self.status is ReservationStatus.ACTIVE and self.expires_at <= now:
            raise ReservationNotActive(f"reservation {self.reservation_id} expired at {self.expires_at.isoformat()}")
        if self.status is not ReservationStatus.ACTIVE:
            raise ReservationNotActive(f"reservation {self.reservation_id} is {self.status.value}")


def choose_location(candidates: list[StockPosition], quantity: Decimal) -> list[StockPosition]:
    """Allocation order for a reservation without a named location: most available first.

    Only positions that could serve the whole quantity are listed; the caller tries them in
    order (another request may take the stock between reading and locking).
    """
    able = [position for position in candidates if position.available_to_promise >= quantity]
    return sorted(able, key=lambda p: (-p.available_to_promise, p.location_id))


def split_allocation(candidates: list[StockPosition], quantity: Decimal) -> list[Allocation]:
    """Spread ``quantity`` over as few locations as possible, most available first."""
    remaining = quantity
    allocations: list[Allocation] = []
    for position in sorted(candidates, key=lambda p: (-p.available_to_promise, p.location_id)):
        if remaining <= ZERO:
            break
        take = min(remaining, position.available_to_promise)
        if take > ZERO:
            allocations.append(Allocation(position.location_id, take))
            remaining -= take
    if remaining > ZERO:
        available = sum((p.available_to_promise for p in candidates), ZERO)
        sku = candidates[0].sku if candidates else ""
        raise OutOfStock(
            f"only {available} of {sku} available across locations, {quantity} requested",
            details={"sku": sku, "available": format_quantity(available), "requested": format_quantity(quantity)},
        )
    return allocations


@dataclass(frozen=True)
class LocationStock:
    """One SKU's stock at one location, with what the location is and which sales channels it serves."""

    position: StockPosition
    kind: str
    channels: tuple[str, ...]

    def serves(self, channel: str) -> bool:
        return channel in self.channels

    def fact(self) -> dict[str, object]:
        """The location's part of a refusal's details (quantities as canonical text)."""
        return {
            "location_id": self.position.location_id,
            "kind": self.kind,
            "channels": list(self.channels),
            "available_to_promise": format_quantity(self.position.available_to_promise),
        }


# A refusal names this many locations at most: enough to show where the stock is.
MAX_LOCATIONS_NAMED = 10


def channel_shortfall(
    sku: str, channel: str, requested: Decimal, stock: list[LocationStock], *, allow_split: bool
) -> OutOfStock:
    """Why ``requested`` of ``sku`` cannot be promised to ``channel``: what the locations serving it
    hold, and where the rest of the stock stands and why it is not promisable to this channel.

    A reservation for a channel draws only from active locations that serve the channel (a
    warehouse serves none: its stock reaches a channel by a transfer). Without ``allow_split``
    one location must hold the whole quantity.
    """
    serving = sorted((s for s in stock if s.serves(channel)), key=_most_available_first)
    elsewhere = sorted(
        (s for s in stock if not s.serves(channel) and s.position.available_to_promise > ZERO),
        key=_most_available_first,
    )
    total = sum((s.position.available_to_promise for s in serving), ZERO)
    best = serving[0].position.available_to_promise if serving else ZERO
    sources = ", ".join(s.position.location_id for s in serving) or "no location holding it"
    message = (
        f"{format_quantity(total)} of {sku} available for channel {channel} (draws from: {sources}), "
        f"{format_quantity(requested)} requested"
    )
    if not allow_split and total >= requested:
        message += f"; no single location has it all (at most {format_quantity(best)} at one), allow_split would"
    if elsewhere:
        named = ", ".join(
            f"{format_quantity(s.position.available_to_promise)} at {s.position.location_id} ({_serves(s)})"
            for s in elsewhere[:MAX_LOCATIONS_NAMED]
        )
        message += f"; not promisable to {channel}: {named}"
    return OutOfStock(
        message,
        details={
            "sku": sku,
            "channel": channel,
            "requested": format_quantity(requested),
            "available": format_quantity(total if allow_split else best),
            "available_total": format_quantity(total),
            "draws_from": [s.fact() for s in serving[:MAX_LOCATIONS_NAMED]],
            "not_promisable": [s.fact() for s in elsewhere[:MAX_LOCATIONS_NAMED]],
        },
    )


def _most_available_first(stock: LocationStock) -> tuple[Decimal, str]:
    return -stock.position.available_to_promise, stock.position.location_id


def _serves(stock: LocationStock) -> str:
    served = ", ".join(stock.channels) if stock.channels else "no sales channel"
    return f"{stock.kind}, serves {served}"


class TransferStatus(enum.StrEnum):
    REQUESTED = "requested"  # the source holds the units
    DISPATCHED = "dispatched"  # left the source, in transit to the destination
    RECEIVED = "received"  # arrived (perhaps short: the difference is shrink)
    CANCELLED = "cancelled"  # called off before dispatch; the source's hold released


class TransferNotFound(NotFound):
    reason = "transfer-not-found"


class TransferStepNotAllowed(FailedPrecondition):
    """The saga is not at the step this command needs (e.g. receiving before dispatch)."""

    reason = "transfer-step-not-allowed"


@dataclass
class Transfer:
    """An inter-store transfer, moved one step at a time; each step is one transaction.

    Through every step on-hand + in-transit of the SKU across both locations stays the
    same, except for shrink, which is recorded as such on receipt.
    """

    transfer_id: str
    sku: str
    from_location: str
    to_location: str
    quantity: Decimal
    status: TransferStatus = TransferStatus.REQUESTED
    received_quantity: Decimal = ZERO

    @classmethod
    def request(
        cls, transfer_id: str, sku: str, from_location: str, to_location: str, quantity: Decimal, source: StockPosition
    ) -> Transfer:
        if from_location == to_location:
            raise InvalidArgument("a transfer needs two different locations", reason="transfer-to-same-location")
        transfer = cls(transfer_id, sku, from_location, to_location, quantity)
        source.reserve(quantity, transfer_id)
        return transfer

    def _expect(self, status: TransferStatus, step: str) -> None:
        if self.status is not status:
            raise TransferStepNotAllowed(f"transfer {self.transfer_id} is {self.status.value}; cannot {step}")

    def dispatch(self, source: StockPosition, destination: StockPosition) -> None:
        self._expect(TransferStatus.REQUESTED, "dispatch")
        source._apply(
            Movement(
                self.sku,
                source.location_id,
                MovementKind.TRANSFER_OUT,
                -self.quantity,
                -self.quantity,
                ZERO,
                self.transfer_id,
            )
        )
        destination._apply(
            Movement(
                self.sku,
                destination.location_id,
                MovementKind.TRANSFER_OUT,
                ZERO,
                ZERO,
                self.quantity,
                self.transfer_id,
            )
        )
        self.status = TransferStatus.DISPATCHED

    def receive(self, received: Decimal, destination: StockPosition) -> Decimal:
        """Book what arrived; returns the shrink (dispatched but never arrived)."""
        self._expect(TransferStatus.DISPATCHED, "receive")
        if received > self.quantity:
            raise InvalidArgument(
                f"received {format_quantity(received)} but only {format_quantity(self.quantity)} were dispatched",
                reason="received-more-than-dispatched",
            )
        if received < ZERO:
            raise InvalidArgument("received quantity must not be negative", reason="invalid-quantity")
        destination._apply(
            Movement(
                self.sku, destination.location_id, MovementKind.TRANSFER_IN, received, ZERO, -received, self.transfer_id
            )
        )
        shrink = self.quantity - received
        if shrink > ZERO:
            destination._apply(
                Movement(self.sku, destination.location_id, MovementKind.SHRINK, ZERO, ZERO, -shrink, self.transfer_id)
            )
        self.received_quantity = received
        self.status = TransferStatus.RECEIVED
        return shrink

    def cancel(self, source: StockPosition) -> None:
        self._expect(TransferStatus.REQUESTED, "cancel")
        source.unreserve(self.quantity, self.transfer_id, MovementKind.RELEASE)
        self.status = TransferStatus.CANCELLED


@dataclass(frozen=True)
class CountedLine:
    sku: str
    counted: Decimal
    reason: str = ""


def apply_count(position: StockPosition, line: CountedLine, count_id: str) -> Movement | None:
    """A stock count (盘点): the counted quantity becomes on-hand through an adjustment movement."""
    if line.counted < ZERO:
        raise InvalidArgument(f"counted quantity of {line.sku} must not be negative", reason="invalid-quantity")
    delta = line.counted - position.on_hand
    if delta == ZERO:
        return None
    reference = f"{count_id}:{line.reason}" if line.reason else count_id
    return position._apply(
        Movement(position.sku, position.location_id, MovementKind.COUNT_ADJUSTMENT, delta, ZERO, ZERO, reference)
    )
