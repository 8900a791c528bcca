"""The inventory service's one protobuf mapping: domain values ↔ contract messages.

Every ``map_*`` function turns one domain value into its message or one request message
into a command; the servicer, the integration events and the planning answers all map
through here, so a quantity or a status has one wire form.
"""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal
from typing import Any, overload

from retail.common.v1 import money_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb

from servicekit.errors import InvalidArgument
from servicekit.idempotency import MAX_REQUEST_ID_LENGTH, ReplyCodec, fingerprint, message_codec
from servicekit.protowire import from_wire, timestamp, to_wire
from services.inventory.adapters.transfer_store import TransferRow
from services.inventory.domain.locations import Location
from services.inventory.domain.model import (
    Allocation,
    CountedLine,
    DiscrepancyKind,
    PendingSaleLine,
    Reservation,
    ReservationStatus,
    StockPosition,
    Transfer,
    TransferStatus,
    format_quantity,
    parse_quantity,
    reservation_ttl,
)
from services.inventory.service_layer.commands import (
    ApplyPendingSaleLines,
    CancelTransfer,
    CommitReservation,
    DispatchTransfer,
    ImportSalesHistory,
    PendingLinesReport,
    ReceiveTransfer,
    RecordStockCount,
    ReleaseReservation,
    RequestTransfer,
    ReserveStock,
    StoredReplies,
)

# Reservations are kept under this name in the request-id store (not the message type, as elsewhere).
RESERVE_METHOD = "retail.inventory.v1.InventoryService/ReserveStock"


@overload
def map_decimal(value: Decimal) -> money_pb2.Decimal: ...
@overload
def map_decimal(value: Decimal | None) -> money_pb2.Decimal | None: ...
def map_decimal(value: Decimal | None) -> money_pb2.Decimal | None:
    """A quantity (or rate) as a wire decimal in its canonical text; ``None`` stays unset."""
    return money_pb2.Decimal(value=format_quantity(value)) if value is not None else None


def map_level(position: StockPosition) -> pb.StockLevel:
    return pb.StockLevel(
        sku=position.sku,
        location_id=position.location_id,
        on_hand=map_decimal(position.on_hand),
        reserved=map_decimal(position.reserved),
        in_transit=map_decimal(position.in_transit),
        safety_stock=map_decimal(position.safety_stock),
        available_to_promise=map_decimal(position.available_to_promise),
    )


def map_reservation_status(status: ReservationStatus) -> Any:
    return to_wire(pb.ReservationStatus, "RESERVATION_STATUS", status)


def map_transfer_status(status: TransferStatus) -> Any:
    return to_wire(pb.TransferStatus, "TRANSFER_STATUS", status)


def map_discrepancy_kind(kind: DiscrepancyKind) -> Any:
    return to_wire(pb.StockDiscrepancyKind, "STOCK_DISCREPANCY_KIND", kind)


def map_location(location: Location) -> pb.Location:
    return pb.Location(
        location_id=location.location_id,
        name=location.name,
        kind=to_wire(pb.LocationKind, "LOCATION_KIND", location.kind),
        city=location.city,
        channels=list(location.channels),
    )


def map_allocations(reservation: Reservation) -> list[pb.Allocation]:
    return [
        pb.Allocation(location_id=allocation.location_id, quantity=map_decimal(allocation.quantity))
        for allocation in reservation.allocations
    ]


def map_reservation(reservation: Reservation) -> pb.Reservation:
    return pb.Reservation(
        reservation_id=reservation.reservation_id,
        sku=reservation.sku,
        allocations=map_allocations(reservation),
        status=map_reservation_status(reservation.status),
        expires_at=timestamp(reservation.expires_at),
        channel=reservation.channel,
        sale_id=reservation.sale_id,
        owner=reservation.owner,
    )


def map_reservation_back(message: pb.Reservation) -> Reservation:
    return Reservation(
        reservation_id=message.reservation_id,
        sku=message.sku,
        channel=message.channel,
        status=ReservationStatus(from_wire(pb.ReservationStatus, "RESERVATION_STATUS", message.status)),
        expires_at=message.expires_at.ToDatetime(tzinfo=UTC),
        allocations=[Allocation(a.location_id, Decimal(a.quantity.value)) for a in message.allocations],
        sale_id=message.sale_id,
        owner=message.owner,
    )


RESERVATION_CODEC: ReplyCodec[Reservation] = ReplyCodec(
    encode=lambda reservation: map_reservation(reservation).SerializeToString(deterministic=True),
    decode=lambda data: map_reservation_back(pb.Reservation.FromString(data)),
)


def map_reserve(request: pb.ReserveStockRequest) -> ReserveStock:
    if not request.request_id or len(request.request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument("request_id is required (at most 200 characters)", reason="request-id-missing")
    if not request.sku:
        raise InvalidArgument("sku is required", reason="sku-missing")
    if not request.location_id and not request.channel:
        raise InvalidArgument("either location_id or channel is required", reason="location-or-channel-missing")
    return ReserveStock(
        request=fingerprint(request, RESERVE_METHOD),
        sku=request.sku,
        quantity=parse_quantity(request.quantity.value),
        location_id=request.location_id,
        channel=request.channel,
        ttl=reservation_ttl(request.ttl_seconds),
        allow_split=request.allow_split,
        owner=request.owner,
    )


def map_commit(request: pb.CommitReservationRequest) -> CommitReservation:
    return CommitReservation(fingerprint(request), request.reservation_id, request.owner)


def map_release(request: pb.ReleaseReservationRequest) -> ReleaseReservation:
    return ReleaseReservation(fingerprint(request), request.reservation_id, request.owner)


def map_request_transfer(request: pb.RequestTransferRequest) -> RequestTransfer:
    return RequestTransfer(
        fingerprint(request),
        sku=request.sku,
        quantity=parse_quantity(request.quantity.value),
        from_location=request.from_location_id,
        to_location=request.to_location_id,
    )


def map_dispatch_transfer(request: pb.DispatchTransferRequest) -> DispatchTransfer:
    return DispatchTransfer(fingerprint(request), request.transfer_id)


def map_receive_transfer(request: pb.ReceiveTransferRequest) -> ReceiveTransfer:
    received = parse_quantity(request.received_quantity.value, field_name="received_quantity", allow_zero=True)
    return ReceiveTransfer(fingerprint(request), request.transfer_id, received)


def map_cancel_transfer(request: pb.CancelTransferRequest) -> CancelTransfer:
    return CancelTransfer(fingerprint(request), request.transfer_id)


def map_import_sales_history(request: pb.ImportSalesHistoryRequest) -> ImportSalesHistory:
    return ImportSalesHistory(
        fingerprint(request), request.location_id, [map_history_line(line) for line in request.lines]
    )


def map_record_stock_count(request: pb.RecordStockCountRequest) -> RecordStockCount:
    return RecordStockCount(fingerprint(request), request.location_id, [map_count_line(line) for line in request.lines])


def map_apply_pending_sale_lines(request: pb.ApplyPendingSaleLinesRequest) -> ApplyPendingSaleLines:
    return ApplyPendingSaleLines(fingerprint(request), request.location_id)


def map_pending_line(line: PendingSaleLine) -> pb.PendingSaleLine:
    message = pb.PendingSaleLine(
        discrepancy_id=line.discrepancy_id,
        kind=map_discrepancy_kind(line.kind),
        sale_id=line.sale_id,
        location_id=line.location_id,
        sku=line.sku,
        quantity=map_decimal(line.quantity),
        is_return=line.is_return,
    )
    if line.occurred_at is not None:
        message.occurred_at.FromDatetime(line.occurred_at)
    return message


def map_history_line(line: pb.SalesHistoryLine) -> tuple[str, date, Decimal]:
    try:
        day = date.fromisoformat(line.date)
    except ValueError:
        raise InvalidArgument(f"date {line.date!r} of {line.sku} is not YYYY-MM-DD", reason="invalid-date") from None
    quantity = parse_quantity(line.quantity.value, field_name=f"quantity of {line.sku} on {line.date}", allow_zero=True)
    return line.sku, day, quantity


def map_count_line(line: pb.CountLine) -> CountedLine:
    counted = parse_quantity(line.counted_quantity.value, field_name=f"counted_quantity of {line.sku}", allow_zero=True)
    return CountedLine(line.sku, counted, line.reason[:200])


def map_transfer(transfer: Transfer) -> pb.Transfer:
    return pb.Transfer(
        transfer_id=transfer.transfer_id,
        sku=transfer.sku,
        from_location_id=transfer.from_location,
        to_location_id=transfer.to_location,
        quantity=map_decimal(transfer.quantity),
        status=map_transfer_status(transfer.status),
        received_quantity=map_decimal(transfer.received_quantity),
    )


def map_transfer_listing(row: TransferRow) -> pb.TransferListing:
    return pb.TransferListing(
        transfer=map_transfer(row.transfer),
        requested_at=timestamp(row.requested_at),
        updated_at=timestamp(row.updated_at),
    )


def map_transfer_status_back(status: int) -> TransferStatus:
    """A wire status asked for; an unspecified or unknown one is refused."""
    try:
        name = from_wire(pb.TransferStatus, "TRANSFER_STATUS", status)
    except ValueError:
        name = ""
    if not name:
        raise InvalidArgument(f"transfer status {status} is not one a transfer can be in", reason="invalid-status")
    return TransferStatus(name)


def map_transfer_back(message: pb.Transfer) -> Transfer:
    return Transfer(
        transfer_id=message.transfer_id,
        sku=message.sku,
        from_location=message.from_location_id,
        to_location=message.to_location_id,
        quantity=Decimal(message.quantity.value),
        status=TransferStatus(from_wire(pb.TransferStatus, "TRANSFER_STATUS", message.status)),
        received_quantity=Decimal(message.received_quantity.value),
    )


def map_pending_line_back(message: pb.PendingSaleLine) -> PendingSaleLine:
    return PendingSaleLine(
        discrepancy_id=message.discrepancy_id,
        kind=DiscrepancyKind(from_wire(pb.StockDiscrepancyKind, "STOCK_DISCREPANCY_KIND", message.kind)),
        sale_id=message.sale_id,
        location_id=message.location_id,
        sku=message.sku,
        quantity=Decimal(message.quantity.value),
        is_return=message.is_return,
        occurred_at=message.occurred_at.ToDatetime(tzinfo=UTC) if message.HasField("occurred_at") else None,
    )


def map_pending_report(report: PendingLinesReport) -> pb.ApplyPendingSaleLinesResponse:
    return pb.ApplyPendingSaleLinesResponse(
        applied_lines=report.applied,
        pending_total=report.still_waiting,
        pending_lines=[map_pending_line(line) for line in report.oldest_waiting],
    )


def map_pending_report_back(message: pb.ApplyPendingSaleLinesResponse) -> PendingLinesReport:
    return PendingLinesReport(
        applied=message.applied_lines,
        still_waiting=message.pending_total,
        oldest_waiting=[map_pending_line_back(line) for line in message.pending_lines],
    )


def _kept_reservation(response_type: Any) -> ReplyCodec[Reservation]:
    """A reservation kept as a response message holding it in its ``reservation`` field."""
    return message_codec(
        response_type,
        lambda reservation: response_type(reservation=map_reservation(reservation)),
        lambda message: map_reservation_back(message.reservation),
    )


def _kept_transfer(response_type: Any) -> ReplyCodec[Transfer]:
    """A transfer kept as a response message holding it in its ``transfer`` field."""
    return message_codec(
        response_type,
        lambda transfer: response_type(transfer=map_transfer(transfer)),
        lambda message: map_transfer_back(message.transfer),
    )


STORED_REPLIES = StoredReplies(
    reservation=RESERVATION_CODEC,
    committed=_kept_reservation(pb.CommitReservationResponse),
    released=_kept_reservation(pb.ReleaseReservationResponse),
    transfer_requested=_kept_transfer(pb.RequestTransferResponse),
    transfer_dispatched=_kept_transfer(pb.DispatchTransferResponse),
    transfer_received=_kept_transfer(pb.ReceiveTransferResponse),
    transfer_cancelled=_kept_transfer(pb.CancelTransferResponse),
    history_imported=message_codec(
        pb.ImportSalesHistoryResponse,
        lambda imported: pb.ImportSalesHistoryResponse(imported_lines=imported),
        lambda message: message.imported_lines,
    ),
    stock_counted=message_codec(
        pb.RecordStockCountResponse,
        lambda adjusted: pb.RecordStockCountResponse(adjusted_levels=adjusted),
        lambda message: message.adjusted_levels,
    ),
    pending_lines=message_codec(pb.ApplyPendingSaleLinesResponse, map_pending_report, map_pending_report_back),
)
