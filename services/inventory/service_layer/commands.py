"""Inventory commands: what a caller asks the service to do, as plain data (no wire types).

The gRPC servicer maps each request message to one of these (``entrypoints/wire.py``) and
hands it to the handler that owns its unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from google.protobuf.message import Message

from services.inventory.domain.model import Reservation


@dataclass(frozen=True)
class ReserveStock:
    """Hold ``quantity`` of ``sku``; ``request`` is the wire message, for the request-id store."""

    request_id: str
    sku: str
    quantity: Decimal
    location_id: str
    channel: str
    ttl: timedelta
    allow_split: bool
    request: Message
    owner: str = ""


@dataclass(frozen=True)
class ReservationCodec:
    """How a reservation is stored as the response of a request id (the wire format)."""

    encode: Callable[[Reservation], Message]
    decode: Callable[[bytes], Reservation]
