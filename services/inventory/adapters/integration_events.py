"""The inventory context's integration events: domain objects mapped to outbox rows.

Subjects are ``retail.inventory.v1.<event>.<location_id>`` on the INVENTORY stream; a split
reservation's carry its lowest location, a transfer's both (``<from>.<to>``). A stock level's
events share one aggregate (``sku@location``) and a reservation's or a transfer's share its
id, so the relay publishes each one's events in the order they were written.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from google.protobuf.message import Message
from retail.inventory.v1 import events_pb2

from servicekit.outbox import OutboxEvent
from servicekit.protowire import timestamp
from services.inventory.domain.model import (
    DiscrepancyKind,
    Reservation,
    StockPosition,
    Transfer,
    TransferStatus,
)
from services.inventory.entrypoints.wire import map_allocations, map_decimal, map_discrepancy_kind, map_transfer_status

SUBJECT_PREFIX = "retail.inventory.v1"


class StockChangeCause(enum.Enum):
    """The command that changed stock levels; one per transaction."""

    RESERVATION = events_pb2.STOCK_CHANGE_CAUSE_RESERVATION
    RELEASE = events_pb2.STOCK_CHANGE_CAUSE_RELEASE
    EXPIRY = events_pb2.STOCK_CHANGE_CAUSE_EXPIRY
    SALE = events_pb2.STOCK_CHANGE_CAUSE_SALE
    RETURN = events_pb2.STOCK_CHANGE_CAUSE_RETURN
    TRANSFER = events_pb2.STOCK_CHANGE_CAUSE_TRANSFER
    COUNT = events_pb2.STOCK_CHANGE_CAUSE_COUNT
    RECEIPT = events_pb2.STOCK_CHANGE_CAUSE_RECEIPT
    VENDOR_RETURN = events_pb2.STOCK_CHANGE_CAUSE_VENDOR_RETURN


def stock_level_changes(
    positions: Iterable[StockPosition], cause: StockChangeCause, occurred_at: datetime
) -> list[OutboxEvent]:
    """One StockLevelChanged per level, with the last state seen of each (a level saved twice counts once)."""
    latest = {(position.sku, position.location_id): position for position in positions}
    when = timestamp(occurred_at)
    return [
        OutboxEvent.of(
            f"{SUBJECT_PREFIX}.stock_level_changed.{location_id}",
            events_pb2.StockLevelChanged(
                sku=sku,
                location_id=location_id,
                on_hand=map_decimal(position.on_hand),
                reserved=map_decimal(position.reserved),
                in_transit=map_decimal(position.in_transit),
                safety_stock=map_decimal(position.safety_stock),
                available_to_promise=map_decimal(position.available_to_promise),
                cause=cause.value,
                occurred_at=when,
            ),
            aggregate_id=f"{sku}@{location_id}",
            occurred_at=occurred_at,
        )
        for (sku, location_id), position in sorted(latest.items())
    ]


def reservation_made(reservation: Reservation, occurred_at: datetime) -> OutboxEvent:
    message = events_pb2.ReservationMade(
        reservation_id=reservation.reservation_id,
        sku=reservation.sku,
        allocations=map_allocations(reservation),
        channel=reservation.channel,
        expires_at=timestamp(reservation.expires_at),
        occurred_at=timestamp(occurred_at),
    )
    return _reservation_event("reservation_made", reservation, message, occurred_at)


def reservation_committed(reservation: Reservation, occurred_at: datetime) -> OutboxEvent:
    """The sale named by ``reservation.sale_id`` sold the held units."""
    message = events_pb2.ReservationCommitted(
        reservation_id=reservation.reservation_id,
        sku=reservation.sku,
        allocations=map_allocations(reservation),
        channel=reservation.channel,
        sale_id=reservation.sale_id,
        occurred_at=timestamp(occurred_at),
    )
    return _reservation_event("reservation_committed", reservation, message, occurred_at)


def reservation_released(reservation: Reservation, occurred_at: datetime) -> OutboxEvent:
    message = events_pb2.ReservationReleased(
        reservation_id=reservation.reservation_id,
        sku=reservation.sku,
        allocations=map_allocations(reservation),
        channel=reservation.channel,
        occurred_at=timestamp(occurred_at),
    )
    return _reservation_event("reservation_released", reservation, message, occurred_at)


def reservation_expired(reservation: Reservation, occurred_at: datetime) -> OutboxEvent:
    message = events_pb2.ReservationExpired(
        reservation_id=reservation.reservation_id,
        sku=reservation.sku,
        allocations=map_allocations(reservation),
        channel=reservation.channel,
        expires_at=timestamp(reservation.expires_at),
        occurred_at=timestamp(occurred_at),
    )
    return _reservation_event("reservation_expired", reservation, message, occurred_at)


def transfer_state_changed(transfer: Transfer, occurred_at: datetime) -> OutboxEvent:
    """The transfer's new step; on both locations' subject tokens, so either side can filter on it."""
    message = events_pb2.TransferStateChanged(
        transfer_id=transfer.transfer_id,
        sku=transfer.sku,
        from_location_id=transfer.from_location,
        to_location_id=transfer.to_location,
        quantity=map_decimal(transfer.quantity),
        status=map_transfer_status(transfer.status),
        occurred_at=timestamp(occurred_at),
    )
    if transfer.status is TransferStatus.RECEIVED:
        message.received_quantity.CopyFrom(map_decimal(transfer.received_quantity))
        message.shrink_quantity.CopyFrom(map_decimal(transfer.quantity - transfer.received_quantity))
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.transfer_state_changed.{transfer.from_location}.{transfer.to_location}",
        message,
        aggregate_id=f"transfer:{transfer.transfer_id}",
        occurred_at=occurred_at,
    )


def stock_discrepancy_recorded(
    discrepancy_id: str,
    kind: DiscrepancyKind,
    *,
    sku: str,
    location_id: str,
    sale_id: str,
    sale_occurred_at: datetime,
    on_hand_after: Decimal | None = None,
    quantity: Decimal | None = None,
    is_return: bool = False,
) -> OutboxEvent:
    """A journaled sale left something to reconcile: a shortfall it caused, or a line it could not apply."""
    message = events_pb2.StockDiscrepancyRecorded(
        discrepancy_id=discrepancy_id,
        kind=map_discrepancy_kind(kind),
        sku=sku,
        location_id=location_id,
        sale_id=sale_id,
        is_return=is_return,
    )
    if on_hand_after is not None:
        message.on_hand_after.CopyFrom(map_decimal(on_hand_after))
    if quantity is not None:
        message.quantity.CopyFrom(map_decimal(quantity))
    message.occurred_at.FromDatetime(sale_occurred_at)  # when the sale happened, as documented
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.stock_discrepancy_recorded.{_subject_token(location_id)}",
        message,
        aggregate_id=f"{sku}@{location_id}",
    )


def _subject_token(value: str) -> str:
    """``value`` as one subject token: a location inventory does not know may hold anything."""
    token = re.sub(r"[.*>\s]", "_", value)
    return token or "_"


def _reservation_event(
    event_name: str, reservation: Reservation, message: Message, occurred_at: datetime
) -> OutboxEvent:
    # A split reservation is published once, under the lowest of its locations.
    location_id = min(allocation.location_id for allocation in reservation.allocations)
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.{event_name}.{location_id}",
        message,
        aggregate_id=f"reservation:{reservation.reservation_id}",
        occurred_at=occurred_at,
    )
