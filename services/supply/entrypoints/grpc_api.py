"""gRPC face of the supply service: maps the contract to commands and answers, nothing more.

Scopes are the gateway's; what the service itself enforces is ownership by the actor's binding
(defence in depth): a supplier user sees and acts on its own supplier's objects only — another
supplier's are NOT_FOUND, never "forbidden", so that nothing leaks — and a store's staff
receive goods for their own store only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import grpc
from retail.common.v1 import paging_pb2
from retail.supply.v1 import supply_service_pb2 as pb
from retail.supply.v1 import supply_service_pb2_grpc as pb_grpc

from servicekit.clock import Clock, utc_now
from servicekit.errors import InvalidArgument
from servicekit.idempotency import fingerprint
from servicekit.paging import InvalidPageToken, page_key, page_token
from servicekit.protowire import moment
from services.supply.adapters.integration_events import map_receipt
from services.supply.domain.purchase_orders import PoStatus
from services.supply.domain.suppliers import UnknownSupplier
from services.supply.entrypoints.settlement_api import SettlementRpcs
from services.supply.entrypoints.wire import (
    map_actor,
    map_confirmed_lines,
    map_contract,
    map_contract_request,
    map_invoice_outcome,
    map_invoiced_lines,
    map_optional_date,
    map_po,
    map_receipt_outcome,
    map_received_lines,
    map_returned_lines,
    map_scorecard,
    map_statuses,
    map_supplier,
    map_supplier_request,
    map_unplaced,
    map_wanted_lines,
    reply,
)
from services.supply.service_layer.accruals import Accruals
from services.supply.service_layer.purchase_orders import (
    ConfirmPurchaseOrder,
    CreatePurchaseOrder,
    EditPurchaseOrder,
    MovePurchaseOrder,
    PurchaseOrders,
)
from services.supply.service_layer.receiving import (
    Receiving,
    RecordGoodsReceipt,
    RecordSupplierInvoice,
    RecordVendorReturn,
)
from services.supply.service_layer.scorecards import Scorecards
from services.supply.service_layer.statements import Statements
from services.supply.service_layer.suppliers import CreateContract, Suppliers, UpsertSupplier

DEFAULT_PAGE = 50
MAX_PAGE = 500
_SEPARATOR = "\x1f"


def page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument("page_size is 0 or more", details={"field": "page.page_size"})
    return min(size or DEFAULT_PAGE, MAX_PAGE)


def split_key(token: str, parts: int) -> list[str] | None:
    key = page_key(token)
    if not key:
        return None
    values = key.split(_SEPARATOR)
    if len(values) != parts:
        raise InvalidPageToken("page_token is not one this service gave out")
    return values


def join_key(*values: str) -> str:
    return page_token(_SEPARATOR.join(values))


def time_key(token: str) -> tuple[datetime, str] | None:
    key = split_key(token, 2)
    if key is None:
        return None
    try:
        return datetime.fromisoformat(key[0]), key[1]
    except ValueError:
        raise InvalidPageToken("page_token is not one this service gave out") from None


def time_token(at: datetime, identifier: str) -> str:
    return join_key(at.isoformat(), identifier)


class SupplyServicer(SettlementRpcs, pb_grpc.SupplyServiceServicer):
    def __init__(
        self,
        *,
        suppliers: Suppliers,
        purchase_orders: PurchaseOrders,
        receiving: Receiving,
        scorecards: Scorecards,
        accruals: Accruals,
        statements: Statements,
        clock: Clock = utc_now,
    ) -> None:
        self.suppliers = suppliers
        self.purchase_orders = purchase_orders
        self.receiving = receiving
        self.scorecards = scorecards
        self.accruals = accruals
        self.statements = statements
        self.clock = clock

    # ---- suppliers and contracts -------------------------------------------------------------------------------

    async def UpsertSupplier(self, request: pb.UpsertSupplierRequest, context: Any) -> pb.UpsertSupplierResponse:
        map_actor(request.actor).check_retailer()
        command = UpsertSupplier(fingerprint(request), map_supplier_request(request.supplier), request.supplier.version)
        return await self.suppliers.upsert(
            command, reply(pb.UpsertSupplierResponse, lambda s: pb.UpsertSupplierResponse(supplier=map_supplier(s)))
        )

    async def GetSupplier(self, request: pb.GetSupplierRequest, context: Any) -> pb.GetSupplierResponse:
        if not map_actor(request.actor).sees(request.supplier_id):
            raise UnknownSupplier("no such supplier")
        return pb.GetSupplierResponse(supplier=map_supplier(await self.suppliers.get(request.supplier_id)))

    async def ListSuppliers(self, request: pb.ListSuppliersRequest, context: Any) -> pb.ListSuppliersResponse:
        actor = map_actor(request.actor)
        size = page_size(request.page.page_size)
        after = split_key(request.page.page_token, 1)
        found = await self.suppliers.list_suppliers(
            after_code=after[0] if after else None, limit=size + 1, only=actor.supplier_filter("")
        )
        page = found[:size]
        token = join_key(page[-1].supplier.code) if len(found) > size else ""
        return pb.ListSuppliersResponse(
            suppliers=[map_supplier(s) for s in page], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def CreateContract(self, request: pb.CreateContractRequest, context: Any) -> pb.CreateContractResponse:
        actor = map_actor(request.actor)
        actor.check_retailer()
        command = CreateContract(fingerprint(request), map_contract_request(request.contract), actor.client_id)
        return await self.suppliers.create_contract(
            command, reply(pb.CreateContractResponse, lambda c: pb.CreateContractResponse(contract=map_contract(c)))
        )

    async def ListContracts(self, request: pb.ListContractsRequest, context: Any) -> pb.ListContractsResponse:
        actor = map_actor(request.actor)
        if not request.supplier_id:
            raise InvalidArgument("supplier_id is required", details={"field": "supplier_id"})
        if not actor.sees(request.supplier_id):
            raise UnknownSupplier("no such supplier")
        size = page_size(request.page.page_size)
        key = split_key(request.page.page_token, 2)
        try:
            after = (date.fromisoformat(key[0]), key[1]) if key else None
        except ValueError:
            raise InvalidPageToken("page_token is not one this service gave out") from None
        found = await self.suppliers.list_contracts(request.supplier_id, after=after, limit=size + 1)
        page = found[:size]
        token = (
            join_key(page[-1].contract.valid_from.isoformat(), page[-1].contract.contract_id)
            if len(found) > size
            else ""
        )
        return pb.ListContractsResponse(
            contracts=[map_contract(c) for c in page], page=paging_pb2.PageInfo(next_page_token=token)
        )

    # ---- purchase orders -------------------------------------------------------------------------------------------

    async def CreatePurchaseOrder(
        self, request: pb.CreatePurchaseOrderRequest, context: Any
    ) -> pb.CreatePurchaseOrderResponse:
        command = CreatePurchaseOrder(
            fingerprint(request),
            map_actor(request.actor),
            request.supplier_id,
            request.location_id,
            map_wanted_lines(request.lines),
            map_optional_date(request.promised_date, "promised_date"),
        )
        return await self.purchase_orders.create(
            command,
            reply(pb.CreatePurchaseOrderResponse, lambda po: pb.CreatePurchaseOrderResponse(purchase_order=map_po(po))),
        )

    async def GetPurchaseOrder(self, request: pb.GetPurchaseOrderRequest, context: Any) -> pb.GetPurchaseOrderResponse:
        po = await self.purchase_orders.get(map_actor(request.actor), request.po_id)
        return pb.GetPurchaseOrderResponse(purchase_order=map_po(po))

    async def ListPurchaseOrders(
        self, request: pb.ListPurchaseOrdersRequest, context: Any
    ) -> pb.ListPurchaseOrdersResponse:
        size = page_size(request.page.page_size)
        found = await self.purchase_orders.list_orders(
            map_actor(request.actor),
            supplier_id=request.supplier_id,
            location_id=request.location_id,
            statuses=map_statuses(request.statuses),
            after=time_key(request.page.page_token),
            limit=size + 1,
        )
        page = found[:size]
        token = time_token(page[-1].created_at, page[-1].po_id) if len(found) > size else ""
        return pb.ListPurchaseOrdersResponse(
            purchase_orders=[map_po(po) for po in page], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def EditPurchaseOrder(
        self, request: pb.EditPurchaseOrderRequest, context: Any
    ) -> pb.EditPurchaseOrderResponse:
        command = EditPurchaseOrder(
            fingerprint(request),
            map_actor(request.actor),
            request.po_id,
            request.expected_version,
            map_wanted_lines(request.lines),
            map_optional_date(request.promised_date, "promised_date"),
        )
        return await self.purchase_orders.edit(
            command,
            reply(pb.EditPurchaseOrderResponse, lambda po: pb.EditPurchaseOrderResponse(purchase_order=map_po(po))),
        )

    async def ApprovePurchaseOrder(
        self, request: pb.ApprovePurchaseOrderRequest, context: Any
    ) -> pb.ApprovePurchaseOrderResponse:
        command = MovePurchaseOrder(
            fingerprint(request), map_actor(request.actor), request.po_id, PoStatus.APPROVED, request.expected_version
        )
        return await self.purchase_orders.move(
            command,
            reply(
                pb.ApprovePurchaseOrderResponse, lambda po: pb.ApprovePurchaseOrderResponse(purchase_order=map_po(po))
            ),
        )

    async def SendPurchaseOrder(
        self, request: pb.SendPurchaseOrderRequest, context: Any
    ) -> pb.SendPurchaseOrderResponse:
        command = MovePurchaseOrder(fingerprint(request), map_actor(request.actor), request.po_id, PoStatus.SENT)
        return await self.purchase_orders.move(
            command,
            reply(pb.SendPurchaseOrderResponse, lambda po: pb.SendPurchaseOrderResponse(purchase_order=map_po(po))),
        )

    async def ConfirmPurchaseOrder(
        self, request: pb.ConfirmPurchaseOrderRequest, context: Any
    ) -> pb.ConfirmPurchaseOrderResponse:
        command = ConfirmPurchaseOrder(
            fingerprint(request),
            map_actor(request.actor),
            request.po_id,
            map_confirmed_lines(request.lines),
            map_optional_date(request.promised_date, "promised_date"),
            request.note,
        )
        return await self.purchase_orders.confirm(
            command,
            reply(
                pb.ConfirmPurchaseOrderResponse, lambda po: pb.ConfirmPurchaseOrderResponse(purchase_order=map_po(po))
            ),
        )

    async def CancelPurchaseOrder(
        self, request: pb.CancelPurchaseOrderRequest, context: Any
    ) -> pb.CancelPurchaseOrderResponse:
        command = MovePurchaseOrder(
            fingerprint(request), map_actor(request.actor), request.po_id, PoStatus.CANCELLED, reason=request.reason
        )
        return await self.purchase_orders.move(
            command,
            reply(pb.CancelPurchaseOrderResponse, lambda po: pb.CancelPurchaseOrderResponse(purchase_order=map_po(po))),
        )

    async def ClosePurchaseOrder(
        self, request: pb.ClosePurchaseOrderRequest, context: Any
    ) -> pb.ClosePurchaseOrderResponse:
        command = MovePurchaseOrder(fingerprint(request), map_actor(request.actor), request.po_id, PoStatus.CLOSED)
        return await self.purchase_orders.move(
            command,
            reply(pb.ClosePurchaseOrderResponse, lambda po: pb.ClosePurchaseOrderResponse(purchase_order=map_po(po))),
        )

    # ---- receipts, returns, invoices -------------------------------------------------------------------------------

    async def RecordGoodsReceipt(
        self, request: pb.RecordGoodsReceiptRequest, context: Any
    ) -> pb.RecordGoodsReceiptResponse:
        command = RecordGoodsReceipt(
            fingerprint(request),
            map_actor(request.actor),
            request.po_id,
            request.supplier_id,
            request.location_id,
            map_received_lines(request.lines),
            moment(request.received_at) if request.HasField("received_at") else None,
        )
        return await self.receiving.record_receipt(command, reply(pb.RecordGoodsReceiptResponse, map_receipt_outcome))

    async def ListGoodsReceipts(
        self, request: pb.ListGoodsReceiptsRequest, context: Any
    ) -> pb.ListGoodsReceiptsResponse:
        size = page_size(request.page.page_size)
        found = await self.receiving.list_receipts(
            map_actor(request.actor),
            supplier_id=request.supplier_id,
            po_id=request.po_id,
            after=time_key(request.page.page_token),
            limit=size + 1,
        )
        page = found[:size]
        token = time_token(page[-1].received_at, page[-1].receipt_id) if len(found) > size else ""
        return pb.ListGoodsReceiptsResponse(
            receipts=[map_receipt(r) for r in page], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def RecordVendorReturn(
        self, request: pb.RecordVendorReturnRequest, context: Any
    ) -> pb.RecordVendorReturnResponse:
        command = RecordVendorReturn(
            fingerprint(request), map_actor(request.actor), request.po_id, map_returned_lines(request.lines)
        )
        return await self.receiving.record_return(
            command,
            reply(
                pb.RecordVendorReturnResponse,
                lambda outcome: pb.RecordVendorReturnResponse(
                    return_id=outcome.return_id, purchase_order=map_po(outcome.purchase_order)
                ),
            ),
        )

    async def RecordSupplierInvoice(
        self, request: pb.RecordSupplierInvoiceRequest, context: Any
    ) -> pb.RecordSupplierInvoiceResponse:
        command = RecordSupplierInvoice(
            fingerprint(request),
            map_actor(request.actor),
            request.invoice_number,
            request.supplier_id,
            request.po_id,
            map_invoiced_lines(request.lines),
        )
        return await self.receiving.record_invoice(
            command, reply(pb.RecordSupplierInvoiceResponse, map_invoice_outcome)
        )

    async def ListUnplacedSuggestions(
        self, request: pb.ListUnplacedSuggestionsRequest, context: Any
    ) -> pb.ListUnplacedSuggestionsResponse:
        map_actor(request.actor).check_retailer()
        size = page_size(request.page.page_size)
        found = await self.purchase_orders.unplaced(
            location_id=request.location_id or None, after=time_key(request.page.page_token), limit=size + 1
        )
        page = found[:size]
        token = time_token(page[-1].recorded_at, page[-1].suggestion.suggestion_id) if len(found) > size else ""
        return pb.ListUnplacedSuggestionsResponse(
            suggestions=[map_unplaced(s) for s in page], page=paging_pb2.PageInfo(next_page_token=token)
        )

    # ---- scorecards ------------------------------------------------------------------------------------------------

    async def GetScorecard(self, request: pb.GetScorecardRequest, context: Any) -> pb.GetScorecardResponse:
        found = await self.scorecards.of(
            map_actor(request.actor),
            request.supplier_id,
            map_optional_date(request.from_date, "from_date"),
            map_optional_date(request.to_date, "to_date"),
        )
        return pb.GetScorecardResponse(scorecard=map_scorecard(found))


def register(servicer: SupplyServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_SupplyServiceServicer_to_server(servicer, server)

    return add
