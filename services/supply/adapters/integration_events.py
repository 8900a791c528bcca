"""The supply context's integration events: facts mapped to outbox rows on the SUPPLY stream.

Subjects are ``retail.supply.v1.<event>`` (snake case, like the other contexts). A purchase
order's events share one aggregate (``purchase-order:<po_id>``), so the relay publishes them in
the order they happened; a receipt or return to vendor is its own aggregate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from retail.common.v1 import money_pb2
from retail.supply.v1 import events_pb2
from retail.supply.v1 import supply_service_pb2 as pb

from servicekit.messaging import StreamSpec
from servicekit.outbox import OutboxEvent
from servicekit.protowire import timestamp
from services.supply.adapters.receipt_store import ReceiptLineRow, ReturnLineRow, StoredReceipt
from services.supply.domain.purchase_orders import PoStatus

SUBJECT_PREFIX = "retail.supply.v1"
CURRENCY = "CNY"
SUPPLY_STREAM = StreamSpec(name="SUPPLY", subjects=[f"{SUBJECT_PREFIX}.>"], description="Facts of the supply context")
PURCHASE_ORDER_STATUS_CHANGED = f"{SUBJECT_PREFIX}.purchase_order_status_changed"
GOODS_RECEIVED = f"{SUBJECT_PREFIX}.goods_received"
GOODS_RETURNED_TO_VENDOR = f"{SUBJECT_PREFIX}.goods_returned_to_vendor"
STATEMENT_STATUS_CHANGED = f"{SUBJECT_PREFIX}.statement_status_changed"

PO_STATUSES = {
    PoStatus.DRAFT: pb.PURCHASE_ORDER_STATUS_DRAFT,
    PoStatus.APPROVED: pb.PURCHASE_ORDER_STATUS_APPROVED,
    PoStatus.SENT: pb.PURCHASE_ORDER_STATUS_SENT,
    PoStatus.CONFIRMED: pb.PURCHASE_ORDER_STATUS_CONFIRMED,
    PoStatus.PARTIALLY_RECEIVED: pb.PURCHASE_ORDER_STATUS_PARTIALLY_RECEIVED,
    PoStatus.RECEIVED: pb.PURCHASE_ORDER_STATUS_RECEIVED,
    PoStatus.CLOSED: pb.PURCHASE_ORDER_STATUS_CLOSED,
    PoStatus.CANCELLED: pb.PURCHASE_ORDER_STATUS_CANCELLED,
}


def money(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code=CURRENCY, minor_units=fen)


def purchase_order_status_changed(
    *,
    po_id: str,
    supplier_id: str,
    location_id: str,
    from_status: PoStatus | None,
    to_status: PoStatus,
    actor_id: str,
    at: datetime,
    version: int,
) -> OutboxEvent:
    message = events_pb2.PurchaseOrderStatusChanged(
        po_id=po_id,
        supplier_id=supplier_id,
        location_id=location_id,
        from_status=PO_STATUSES[from_status] if from_status else pb.PURCHASE_ORDER_STATUS_UNSPECIFIED,
        to_status=PO_STATUSES[to_status],
        actor_id=actor_id,
        occurred_at=timestamp(at),
        version=version,
    )
    return OutboxEvent.of(
        PURCHASE_ORDER_STATUS_CHANGED, message, aggregate_id=f"purchase-order:{po_id}", occurred_at=at
    )


def decimal_text(value: Decimal) -> str:
    """A quantity or rate as the contract writes it: plain digits, no exponent, no trailing zeros."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def wire_decimal(value: Decimal) -> money_pb2.Decimal:
    return money_pb2.Decimal(value=decimal_text(value))


def map_receipt_line(line: ReceiptLineRow) -> pb.ReceiptLine:
    return pb.ReceiptLine(
        po_line_number=line.po_line_number,
        sku=line.sku,
        accepted=wire_decimal(line.accepted),
        rejected=wire_decimal(line.rejected),
        reject_reason=line.reject_reason,
        lot=line.lot,
        expiry_date=line.expiry_date.isoformat() if line.expiry_date else "",
    )


def map_receipt(receipt: StoredReceipt) -> pb.GoodsReceipt:
    return pb.GoodsReceipt(
        receipt_id=receipt.receipt_id,
        po_id=receipt.po_id or "",
        supplier_id=receipt.supplier_id,
        location_id=receipt.location_id,
        lines=[map_receipt_line(line) for line in receipt.lines],
        received_at=timestamp(receipt.received_at),
        received_by=receipt.received_by,
    )


def goods_received(receipt: StoredReceipt, at: datetime) -> OutboxEvent:
    """A receipt as inventory applies it: each line's accepted quantity once, keyed by receipt and line;
    rejected quantities never enter stock. ``occurred_at`` is when the goods arrived."""
    message = events_pb2.GoodsReceived(
        receipt_id=receipt.receipt_id,
        po_id=receipt.po_id or "",
        supplier_id=receipt.supplier_id,
        location_id=receipt.location_id,
        lines=[map_receipt_line(line) for line in receipt.lines],
        occurred_at=timestamp(receipt.received_at),
        received_by=receipt.received_by,
    )
    return OutboxEvent.of(GOODS_RECEIVED, message, aggregate_id=f"receipt:{receipt.receipt_id}", occurred_at=at)


def goods_returned_to_vendor(
    *,
    return_id: str,
    po_id: str,
    supplier_id: str,
    location_id: str,
    lines: Sequence[ReturnLineRow],
    at: datetime,
) -> OutboxEvent:
    """Accepted goods going back: inventory issues each line's quantity (``accepted``) once."""
    message = events_pb2.GoodsReturnedToVendor(
        return_id=return_id,
        po_id=po_id,
        supplier_id=supplier_id,
        location_id=location_id,
        lines=[
            pb.ReceiptLine(
                po_line_number=line.po_line_number,
                sku=line.sku,
                accepted=wire_decimal(line.quantity),
                rejected=wire_decimal(Decimal(0)),
                reject_reason=line.reason,
            )
            for line in lines
        ],
        occurred_at=timestamp(at),
    )
    return OutboxEvent.of(GOODS_RETURNED_TO_VENDOR, message, aggregate_id=f"vendor-return:{return_id}", occurred_at=at)
