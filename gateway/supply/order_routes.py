"""Purchase orders, goods receipts, returns to vendors and supplier invoices.

A purchase order goes draft → approved → sent → confirmed by the supplier → partially
received → received / closed (or cancelled). Buyers (`purchases:write`, headquarters) raise,
edit, approve, send, cancel and close; the supplier confirms in its portal
(`purchase-orders:confirm`); a store manager receives goods at their own store
(`receipts:write`). A supplier user sees its own orders only and a store manager its own
store's: anyone else's order is `404`, its existence does not leak. The ordered value is the
sum over lines of quantity × unit cost, each line rounded half up to the fen.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response
from retail.supply.v1 import supply_service_pb2 as pb

from gateway.domain.clients import ClientKind
from gateway.domain.scopes import (
    PURCHASE_ORDERS_CONFIRM,
    PURCHASES_READ,
    PURCHASES_WRITE,
    RECEIPTS_WRITE,
    SETTLEMENT_WRITE,
)
from gateway.http import problems
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.members.wire import actor_of
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from gateway.supply.order_schemas import (
    CancelIn,
    ConfirmOrderIn,
    GoodsReceiptIn,
    GoodsReceiptPage,
    InvoiceIn,
    InvoiceOut,
    PurchaseOrderEdit,
    PurchaseOrderIn,
    PurchaseOrderOut,
    PurchaseOrderPage,
    PurchaseOrderStatusName,
    RecordedReceiptOut,
    VendorReturnIn,
    VendorReturnOut,
    VersionIn,
)
from gateway.supply.schemas import ID_PATTERN, PoId, SupplierId
from gateway.supply.wire import (
    decimal,
    map_invoice,
    map_invoice_lines,
    map_order_lines,
    map_purchase_order,
    map_receipt,
    map_receipt_in,
    status_numbers,
)

router = ContextRouter(prefix="/v1", tags=["supply"])

Reader = Annotated[Principal, Depends(require(PURCHASES_READ))]
Statuses = Annotated[list[PurchaseOrderStatusName] | None, Query(description="only orders in these states")]


def _order(principal: Principal, order: pb.PurchaseOrder) -> PurchaseOrderOut:
    """The order as the caller may see it: a supplier user only its own supplier's, a store-bound
    client only its own store's (else `404`; the service answers so too, this is the gateway's
    own guard)."""
    others = principal.supplier_id is not None and order.supplier_id != principal.supplier_id
    if others or (principal.store_id is not None and order.location_id != principal.store_id):
        raise problems.ProblemError(problems.NOT_FOUND, f"no purchase order {order.po_id}")
    return map_purchase_order(order)


async def _list_orders(
    resources: Resources, principal: Principal, page: Paging, supplier_id: str, location_id: str, statuses: list[str]
) -> PurchaseOrderPage:
    if principal.store_id is not None:
        if location_id and location_id != principal.store_id:
            raise problems.ProblemError(problems.FORBIDDEN, f"this client sees store {principal.store_id}'s orders")
        location_id = principal.store_id
    answer = await resources.supply_service.ListPurchaseOrders(
        pb.ListPurchaseOrdersRequest(
            actor=actor_of(principal),
            supplier_id=principal.supplier_id or supplier_id,
            location_id=location_id,
            statuses=status_numbers(pb.PurchaseOrderStatus, "PURCHASE_ORDER_STATUS", statuses),
            page=page.request(),
        )
    )
    return PurchaseOrderPage(
        purchase_orders=[_order(principal, order) for order in answer.purchase_orders],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.get("/suppliers/{supplier_id}/purchase-orders", responses=problems.problem_responses(404))
async def supplier_purchase_orders(
    resources: Resources, principal: Reader, supplier_id: SupplierId, page: Paging, status: Statuses = None
) -> PurchaseOrderPage:
    """The supplier's purchase orders, newest first (the supplier portal). Scope `purchases:read`;
    headquarters, or the supplier's own users (another supplier is `404`)."""
    principal.ensure_supplier(supplier_id)
    return await _list_orders(resources, principal, page, supplier_id, "", list(status or []))


@router.get("/purchase-orders")
async def list_purchase_orders(
    resources: Resources,
    principal: Reader,
    page: Paging,
    supplier_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="one supplier's")] = None,
    location_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="one receiving location's")] = None,
    status: Statuses = None,
) -> PurchaseOrderPage:
    """Purchase orders, newest first. Scope `purchases:read`; a store manager sees their own
    store's, a supplier user its own."""
    return await _list_orders(resources, principal, page, supplier_id or "", location_id or "", list(status or []))


@router.post(
    "/purchase-orders", status_code=201, responses=problems.problem_responses(404, 409), response_model=PurchaseOrderOut
)
async def create_purchase_order(
    body: PurchaseOrderIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASES_WRITE))],
) -> Response:
    """Draft a manual purchase order; unit costs come from the supplier's contract and quantities
    are rounded up to its pack size and minimum order. Scope `purchases:write`, headquarters."""
    call.principal.ensure_headquarters()
    request = pb.CreatePurchaseOrderRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        supplier_id=body.supplier_id,
        location_id=body.location_id,
        lines=map_order_lines(body.lines),
        promised_date=body.promised_date.isoformat() if body.promised_date else "",
    )
    return await call.forward(
        lambda: resources.supply_service.CreatePurchaseOrder(request),
        lambda answer: (201, map_purchase_order(answer.purchase_order)),
    )


@router.get("/purchase-orders/{po_id}", responses=problems.problem_responses(404))
async def get_purchase_order(resources: Resources, principal: Reader, po_id: PoId) -> PurchaseOrderOut:
    """A purchase order with its lines, what the supplier confirmed and what was received,
    accepted, rejected and returned. Scope `purchases:read`; another supplier's order (or
    another store's, for a store manager) is `404`."""
    answer = await resources.supply_service.GetPurchaseOrder(
        pb.GetPurchaseOrderRequest(actor=actor_of(principal), po_id=po_id)
    )
    return _order(principal, answer.purchase_order)


@router.patch(
    "/purchase-orders/{po_id}", responses=problems.problem_responses(404, 409), response_model=PurchaseOrderOut
)
async def edit_purchase_order(
    po_id: PoId,
    body: PurchaseOrderEdit,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASES_WRITE))],
) -> Response:
    """Replace a draft's lines and wanted date at the version read (`409` once it moved on or
    left draft). Scope `purchases:write`, headquarters; `Idempotency-Key` required."""
    call.principal.ensure_headquarters()
    request = pb.EditPurchaseOrderRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        po_id=po_id,
        expected_version=body.expected_version,
        lines=map_order_lines(body.lines),
        promised_date=body.promised_date.isoformat() if body.promised_date else "",
    )
    return await call.forward(
        lambda: resources.supply_service.EditPurchaseOrder(request),
        lambda answer: (200, map_purchase_order(answer.purchase_order)),
    )


@router.post(
    "/purchase-orders/{po_id}/approve", responses=problems.problem_responses(404, 409), response_model=PurchaseOrderOut
)
async def approve_purchase_order(
    po_id: PoId,
    body: VersionIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASES_WRITE))],
) -> Response:
    """Approve a draft at the version read. Scope `purchases:write`, headquarters."""
    call.principal.ensure_headquarters()
    request = pb.ApprovePurchaseOrderRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        po_id=po_id,
        expected_version=body.expected_version,
    )
    return await call.forward(
        lambda: resources.supply_service.ApprovePurchaseOrder(request),
        lambda answer: (200, map_purchase_order(answer.purchase_order)),
    )


@router.post(
    "/purchase-orders/{po_id}/send", responses=problems.problem_responses(404, 409), response_model=PurchaseOrderOut
)
async def send_purchase_order(
    po_id: PoId, resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASES_WRITE))]
) -> Response:
    """Send an approved order to its supplier (it shows in the supplier's portal).
    Scope `purchases:write`, headquarters."""
    call.principal.ensure_headquarters()
    request = pb.SendPurchaseOrderRequest(request_id=call.request_id, actor=actor_of(call.principal), po_id=po_id)
    return await call.forward(
        lambda: resources.supply_service.SendPurchaseOrder(request),
        lambda answer: (200, map_purchase_order(answer.purchase_order)),
    )


@router.post(
    "/purchase-orders/{po_id}/confirm", responses=problems.problem_responses(404, 409), response_model=PurchaseOrderOut
)
async def confirm_purchase_order(
    po_id: PoId,
    body: ConfirmOrderIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASE_ORDERS_CONFIRM))],
) -> Response:
    """The supplier confirms a sent order: the date it promises and, per line, what it will
    deliver (at most what was ordered; lines not named in full). Scope `purchase-orders:confirm`:
    the supplier's own users (another supplier's order is `404`), or headquarters on its behalf."""
    if call.principal.kind is not ClientKind.SUPPLIER_USER:
        call.principal.ensure_headquarters()
    request = pb.ConfirmPurchaseOrderRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        po_id=po_id,
        lines=[pb.ConfirmedLine(line_number=line.line_number, quantity=decimal(line.quantity)) for line in body.lines],
        promised_date=body.promised_date.isoformat(),
        note=body.note,
    )
    return await call.forward(
        lambda: resources.supply_service.ConfirmPurchaseOrder(request),
        lambda answer: (200, map_purchase_order(answer.purchase_order)),
    )


@router.post(
    "/purchase-orders/{po_id}/cancel", responses=problems.problem_responses(404, 409), response_model=PurchaseOrderOut
)
async def cancel_purchase_order(
    po_id: PoId,
    body: CancelIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASES_WRITE))],
) -> Response:
    """Cancel an order nothing was received against (`409` otherwise). Scope `purchases:write`, headquarters."""
    call.principal.ensure_headquarters()
    request = pb.CancelPurchaseOrderRequest(
        request_id=call.request_id, actor=actor_of(call.principal), po_id=po_id, reason=body.reason
    )
    return await call.forward(
        lambda: resources.supply_service.CancelPurchaseOrder(request),
        lambda answer: (200, map_purchase_order(answer.purchase_order)),
    )


@router.post(
    "/purchase-orders/{po_id}/close", responses=problems.problem_responses(404, 409), response_model=PurchaseOrderOut
)
async def close_purchase_order(
    po_id: PoId, resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASES_WRITE))]
) -> Response:
    """Close a received or partly received order: the rest will not come. Scope `purchases:write`, headquarters."""
    call.principal.ensure_headquarters()
    request = pb.ClosePurchaseOrderRequest(request_id=call.request_id, actor=actor_of(call.principal), po_id=po_id)
    return await call.forward(
        lambda: resources.supply_service.ClosePurchaseOrder(request),
        lambda answer: (200, map_purchase_order(answer.purchase_order)),
    )


@router.post(
    "/purchase-orders/{po_id}/vendor-returns",
    status_code=201,
    responses=problems.problem_responses(404, 409),
    response_model=VendorReturnOut,
)
async def return_to_vendor(
    po_id: PoId,
    body: VendorReturnIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASES_WRITE))],
) -> Response:
    """Send accepted goods of an order back to the supplier (at most what was accepted and not yet
    returned); under a purchase contract (经销) it is credited on the statement. Scope
    `purchases:write`, headquarters."""
    call.principal.ensure_headquarters()
    request = pb.RecordVendorReturnRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        po_id=po_id,
        lines=[
            pb.VendorReturnLine(po_line_number=line.po_line_number, quantity=decimal(line.quantity), reason=line.reason)
            for line in body.lines
        ],
    )
    return await call.forward(
        lambda: resources.supply_service.RecordVendorReturn(request),
        lambda answer: (
            201,
            VendorReturnOut(return_id=answer.return_id, purchase_order=map_purchase_order(answer.purchase_order)),
        ),
    )


@router.post(
    "/goods-receipts",
    status_code=201,
    responses=problems.problem_responses(404, 409),
    response_model=RecordedReceiptOut,
)
async def record_goods_receipt(
    body: GoodsReceiptIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(RECEIPTS_WRITE))],
) -> Response:
    """Record goods arriving, against a purchase order or (where the contract allows it) as a
    direct store delivery: accepted quantities go into stock once (inventory applies the
    receipt exactly once), rejects need a reason, more than the line's allowance is `409`
    `over-receipt`. One delivery note, one `Idempotency-Key`. Scope `receipts:write`; a store
    manager receives at their own store only (`403` otherwise)."""
    call.principal.ensure_store(body.location_id)
    request = pb.RecordGoodsReceiptRequest(
        request_id=call.request_id, actor=actor_of(call.principal), **map_receipt_in(body)
    )

    def answer(reply: pb.RecordGoodsReceiptResponse) -> tuple[int, RecordedReceiptOut]:
        order = map_purchase_order(reply.purchase_order) if reply.HasField("purchase_order") else None
        return 201, RecordedReceiptOut(receipt=map_receipt(reply.receipt), purchase_order=order)

    return await call.forward(lambda: resources.supply_service.RecordGoodsReceipt(request), answer)


@router.get("/goods-receipts")
async def list_goods_receipts(
    resources: Resources,
    principal: Reader,
    page: Paging,
    supplier_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="one supplier's")] = None,
    po_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="against one purchase order")] = None,
) -> GoodsReceiptPage:
    """Goods receipts, newest first. Scope `purchases:read`; a supplier user sees its own, a
    store manager their own store's (a page then holds only those, and may hold fewer)."""
    answer = await resources.supply_service.ListGoodsReceipts(
        pb.ListGoodsReceiptsRequest(
            actor=actor_of(principal),
            supplier_id=principal.supplier_id or supplier_id or "",
            po_id=po_id or "",
            page=page.request(),
        )
    )
    visible = [
        receipt
        for receipt in answer.receipts
        if principal.store_id is None or receipt.location_id == principal.store_id
        if principal.supplier_id is None or receipt.supplier_id == principal.supplier_id
    ]
    return GoodsReceiptPage(
        receipts=[map_receipt(r) for r in visible], next_page_token=page.next_token(answer.page.next_page_token)
    )


@router.post(
    "/supplier-invoices", status_code=201, responses=problems.problem_responses(404, 409), response_model=InvoiceOut
)
async def record_supplier_invoice(
    body: InvoiceIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(SETTLEMENT_WRITE))],
) -> Response:
    """Record a supplier's invoice and match it three ways: per line, the PO price × billed
    quantity (half up, in fen) against what was received and billed, within the contract's
    price tolerance. A mismatched line (`quantity_above_received`, `price_above_order`) holds
    the invoice (`matched: false`), it is not paid. Another supplier's order is `404`. Scope
    `settlement:write`, headquarters finance."""
    call.principal.ensure_headquarters()
    request = pb.RecordSupplierInvoiceRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        invoice_number=body.invoice_number,
        supplier_id=body.supplier_id,
        po_id=body.po_id,
        lines=map_invoice_lines(body),
    )
    return await call.forward(
        lambda: resources.supply_service.RecordSupplierInvoice(request), lambda answer: (201, map_invoice(answer))
    )
