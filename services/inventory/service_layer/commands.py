"""Inventory commands: what a caller asks the service to do, as plain data (no wire types).

The gRPC servicer maps each request message to one of these (``entrypoints/wire.py``) and
hands it to the one handler that owns its unit of work. A mutating command carries its
request's :class:`RequestFingerprint`, so a retry with the same ``request_id`` gets the
first answer and the same id with a different request is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from servicekit.idempotency import ReplyCodec, RequestFingerprint
from services.inventory.domain.model import CountedLine, PendingSaleLine, Reservation, Transfer


@dataclass(frozen=True)
class ReserveStock:
    """Hold ``quantity`` of ``sku`` at ``location_id``, or for ``channel`` at its best location(s)."""

    request: RequestFingerprint
    sku: str
    quantity: Decimal
    location_id: str
    channel: str
    ttl: timedelta
    allow_split: bool
    owner: str = ""

    @property
    def request_id(self) -> str:
        return self.request.request_id


@dataclass(frozen=True)
class CommitReservation:
    """The order was paid: stop the reservation's clock (the journaled sale sells the units)."""

    request: RequestFingerprint
    reservation_id: str
    owner: str = ""


@dataclass(frozen=True)
class ReleaseReservation:
    """Give a reservation's units back to available-to-promise."""

    request: RequestFingerprint
    reservation_id: str
    owner: str = ""


@dataclass(frozen=True)
class RequestTransfer:
    """Move ``quantity`` of ``sku`` from one location to another: the source holds the units."""

    request: RequestFingerprint
    sku: str
    quantity: Decimal
    from_location: str
    to_location: str


@dataclass(frozen=True)
class DispatchTransfer:
    """The transfer's units left the source and are in transit."""

    request: RequestFingerprint
    transfer_id: str


@dataclass(frozen=True)
class ReceiveTransfer:
    """Book what arrived of a transfer; the shortfall is shrink."""

    request: RequestFingerprint
    transfer_id: str
    received_quantity: Decimal


@dataclass(frozen=True)
class CancelTransfer:
    """Call a transfer off before dispatch."""

    request: RequestFingerprint
    transfer_id: str


@dataclass(frozen=True)
class ImportSalesHistory:
    """Backfill daily sold quantities of one location: (sku, day, quantity) lines."""

    request: RequestFingerprint
    location_id: str
    lines: Sequence[tuple[str, date, Decimal]]


@dataclass(frozen=True)
class RecordStockCount:
    """Counted quantities of one location, to become adjustment movements."""

    request: RequestFingerprint
    location_id: str
    lines: Sequence[CountedLine]


@dataclass(frozen=True)
class ApplyPendingSaleLines:
    """Apply the waiting sale lines that have become applicable (at one location, or everywhere)."""

    request: RequestFingerprint
    location_id: str = ""


@dataclass(frozen=True)
class PendingLinesReport:
    """What applying the waiting sale lines did: how many it applied, how many still wait, the oldest of those."""

    applied: int
    still_waiting: int
    oldest_waiting: list[PendingSaleLine]


@dataclass(frozen=True)
class StoredReplies:
    """How each command's answer is kept under its request id, in the wire format the entrypoints
    supply (``entrypoints/wire.py``), so a replay answers exactly as the first call did."""

    reservation: ReplyCodec[Reservation]
    committed: ReplyCodec[Reservation]
    released: ReplyCodec[Reservation]
    transfer_requested: ReplyCodec[Transfer]
    transfer_dispatched: ReplyCodec[Transfer]
    transfer_received: ReplyCodec[Transfer]
    transfer_cancelled: ReplyCodec[Transfer]
    history_imported: ReplyCodec[int]
    stock_counted: ReplyCodec[int]
    pending_lines: ReplyCodec[PendingLinesReport]
