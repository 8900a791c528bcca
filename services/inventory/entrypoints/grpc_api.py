"""The InventoryService gRPC servicer: map the wire message, call the handler, map back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from retail.common.v1 import paging_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

from servicekit.db import UnitOfWork
from servicekit.errors import FailedPrecondition, InvalidArgument
from servicekit.idempotency import run_request_once
from services.inventory.adapters import stock_store
from services.inventory.domain.model import ZERO, parse_quantity
from services.inventory.entrypoints import planning_api
from services.inventory.entrypoints.wire import (
    map_count_line,
    map_decimal,
    map_history_line,
    map_level,
    map_location,
    map_pending_line,
    map_reservation,
    map_reserve,
    map_transfer,
)
from services.inventory.service_layer.handlers import CHINA_STANDARD_TIME, InventoryService
from services.inventory.service_layer.replenishment import ReplenishmentPlanner
from services.inventory.service_layer.transfers import TransferSaga, import_sales_history, record_stock_count

ResponseT = TypeVar("ResponseT", bound=Message)
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100


class InventoryServicer(pb_grpc.InventoryServiceServicer):
    """gRPC face of the inventory service."""

    def __init__(
        self,
        service: InventoryService,
        unit_of_work: Any,
        saga: TransferSaga | None = None,
        planner: ReplenishmentPlanner | None = None,
    ) -> None:
        self._service = service
        self._uow = unit_of_work
        self._saga = saga or TransferSaga()
        self._planner = planner

    async def _once(
        self, request: Any, response_type: type[ResponseT], effect: Callable[[UnitOfWork], Awaitable[ResponseT]]
    ) -> ResponseT:
        return await run_request_once(self._uow(), request, response_type, effect)

    async def RequestTransfer(self, request: pb.RequestTransferRequest, context: Any) -> pb.RequestTransferResponse:
        """Start a transfer: the source holds the units."""
        quantity = parse_quantity(request.quantity.value)

        async def effect(uow: UnitOfWork) -> pb.RequestTransferResponse:
            transfer = await self._saga.request(
                uow,
                sku=request.sku,
                quantity=quantity,
                from_location=request.from_location_id,
                to_location=request.to_location_id,
            )
            return pb.RequestTransferResponse(transfer=map_transfer(transfer))

        return await self._once(request, pb.RequestTransferResponse, effect)

    async def DispatchTransfer(self, request: pb.DispatchTransferRequest, context: Any) -> pb.DispatchTransferResponse:
        """The units left the source and are in transit to the destination."""

        async def effect(uow: UnitOfWork) -> pb.DispatchTransferResponse:
            return pb.DispatchTransferResponse(
                transfer=map_transfer(await self._saga.dispatch(uow, request.transfer_id))
            )

        return await self._once(request, pb.DispatchTransferResponse, effect)

    async def ReceiveTransfer(self, request: pb.ReceiveTransferRequest, context: Any) -> pb.ReceiveTransferResponse:
        """Book what arrived; the shortfall is recorded as shrink."""
        received = parse_quantity(request.received_quantity.value, field_name="received_quantity", allow_zero=True)

        async def effect(uow: UnitOfWork) -> pb.ReceiveTransferResponse:
            transfer = await self._saga.receive(uow, request.transfer_id, received)
            return pb.ReceiveTransferResponse(transfer=map_transfer(transfer))

        return await self._once(request, pb.ReceiveTransferResponse, effect)

    async def CancelTransfer(self, request: pb.CancelTransferRequest, context: Any) -> pb.CancelTransferResponse:
        """Call a transfer off before dispatch."""

        async def effect(uow: UnitOfWork) -> pb.CancelTransferResponse:
            return pb.CancelTransferResponse(transfer=map_transfer(await self._saga.cancel(uow, request.transfer_id)))

        return await self._once(request, pb.CancelTransferResponse, effect)

    async def ImportSalesHistory(
        self, request: pb.ImportSalesHistoryRequest, context: Any
    ) -> pb.ImportSalesHistoryResponse:
        """Backfill daily sold quantities (an upsert; re-importing changes nothing; stock untouched)."""
        rows = [map_history_line(line) for line in request.lines]
        today = datetime.now(CHINA_STANDARD_TIME).date()

        async def effect(uow: UnitOfWork) -> pb.ImportSalesHistoryResponse:
            imported = await import_sales_history(uow, request.location_id, rows, today)
            return pb.ImportSalesHistoryResponse(imported_lines=imported)

        return await self._once(request, pb.ImportSalesHistoryResponse, effect)

    async def RecordStockCount(self, request: pb.RecordStockCountRequest, context: Any) -> pb.RecordStockCountResponse:
        """Counted quantities become adjustment movements, for the whole count or not at all."""
        lines = [map_count_line(line) for line in request.lines]

        async def effect(uow: UnitOfWork) -> pb.RecordStockCountResponse:
            adjusted = await record_stock_count(uow, request.location_id, lines)
            return pb.RecordStockCountResponse(adjusted_levels=adjusted)

        return await self._once(request, pb.RecordStockCountResponse, effect)

    async def ListLocations(self, request: pb.ListLocationsRequest, context: Any) -> pb.ListLocationsResponse:
        """Every active location with the channels it serves."""
        async with self._uow() as uow:
            rows = await stock_store.list_locations(uow.session)
        return pb.ListLocationsResponse(locations=[map_location(location) for location in rows])

    async def GetSkuAvailability(
        self, request: pb.GetSkuAvailabilityRequest, context: Any
    ) -> pb.GetSkuAvailabilityResponse:
        """One SKU at every location, with the chain's total available-to-promise."""
        positions, supplier_id = await self._service.availability(request.sku)
        total = sum((p.available_to_promise for p in positions), ZERO)
        return pb.GetSkuAvailabilityResponse(
            sku=request.sku,
            levels=[map_level(p) for p in positions],
            total_available_to_promise=map_decimal(total),
            supplier_id=supplier_id,
        )

    async def ListLocationStock(
        self, request: pb.ListLocationStockRequest, context: Any
    ) -> pb.ListLocationStockResponse:
        """A page of one location's stock levels, ordered by SKU; the token is the last SKU."""
        size = request.page.page_size or DEFAULT_PAGE_SIZE
        if not 0 < size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}", reason="invalid-page-size")
        positions = await self._service.location_stock(request.location_id, request.page.page_token, size + 1)
        page, more = positions[:size], len(positions) > size
        return pb.ListLocationStockResponse(
            levels=[map_level(p) for p in page],
            page_info=paging_pb2.PageInfo(next_page_token=page[-1].sku if more else ""),
        )

    async def ReserveStock(self, request: pb.ReserveStockRequest, context: Any) -> pb.ReserveStockResponse:
        """Hold units for an online order (coalesced per hot SKU and location)."""
        reservation = await self._service.reserve(map_reserve(request))
        return pb.ReserveStockResponse(reservation=map_reservation(reservation))

    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: Any
    ) -> pb.CommitReservationResponse:
        """Mark a reservation as paid; the journaled sale then sells the units."""

        async def effect(uow: UnitOfWork) -> pb.CommitReservationResponse:
            reservation = await self._service.commit(uow, request.reservation_id, request.owner)
            return pb.CommitReservationResponse(reservation=map_reservation(reservation))

        return await self._once(request, pb.CommitReservationResponse, effect)

    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: Any
    ) -> pb.ReleaseReservationResponse:
        """Give a reservation's units back to available-to-promise."""

        async def effect(uow: UnitOfWork) -> pb.ReleaseReservationResponse:
            reservation = await self._service.release(uow, request.reservation_id, request.owner)
            return pb.ReleaseReservationResponse(reservation=map_reservation(reservation))

        return await self._once(request, pb.ReleaseReservationResponse, effect)

    async def GetReservation(self, request: pb.GetReservationRequest, context: Any) -> pb.GetReservationResponse:
        """A reservation and where its units are held."""
        return pb.GetReservationResponse(
            reservation=map_reservation(await self._service.get_reservation(request.reservation_id, request.owner))
        )

    async def CheckLedger(self, request: pb.CheckLedgerRequest, context: Any) -> pb.CheckLedgerResponse:
        """Prove that a stock level equals the sum of its movements."""
        position, (on_hand, reserved, in_transit) = await self._service.ledger_check(request.sku, request.location_id)
        return pb.CheckLedgerResponse(
            level=map_level(position),
            ledger_on_hand=map_decimal(on_hand),
            ledger_reserved=map_decimal(reserved),
            ledger_in_transit=map_decimal(in_transit),
            consistent=(on_hand, reserved, in_transit) == (position.on_hand, position.reserved, position.in_transit),
        )

    async def GetForecast(self, request: pb.GetForecastRequest, context: Any) -> pb.GetForecastResponse:
        """One SKU's daily forecast from today on, with how the location's model fared in the backtest."""
        answer = await self._planning().forecast(request.location_id, request.sku, request.horizon_days)
        return planning_api.map_forecast(request.location_id, answer)

    async def ListReplenishment(
        self, request: pb.ListReplenishmentRequest, context: Any
    ) -> pb.ListReplenishmentResponse:
        """A page of a selling location's order suggestions and stock alerts, by SKU."""
        size = request.page.page_size or DEFAULT_PAGE_SIZE
        if not 0 < size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}", reason="invalid-page-size")
        page = await self._planning().replenishment(
            request.location_id, after_sku=request.page.page_token, limit=size, supplier_id=request.supplier_id
        )
        return planning_api.map_replenishment(page)

    async def GetStockKpis(self, request: pb.GetStockKpisRequest, context: Any) -> pb.GetStockKpisResponse:
        """Stock-out rate, sell-through (动销率), days of cover and shrink of a location over a period."""
        start, end, kpis, discrepancies = await self._planning().stock_kpis(
            request.location_id,
            sku=request.sku,
            start=planning_api.parse_day(request.from_date, "from_date"),
            end=planning_api.parse_day(request.to_date, "to_date"),
            supplier_id=request.supplier_id,
        )
        return planning_api.map_kpis(request.location_id, start, end, kpis, discrepancies)

    async def ApplyPendingSaleLines(
        self, request: pb.ApplyPendingSaleLinesRequest, context: Any
    ) -> pb.ApplyPendingSaleLinesResponse:
        """Apply, once each, the waiting sale lines whose SKU and location now exist; report the rest."""

        async def effect(uow: UnitOfWork) -> pb.ApplyPendingSaleLinesResponse:
            report = await self._service.apply_pending_sale_lines(uow, request.location_id)
            return pb.ApplyPendingSaleLinesResponse(
                applied_lines=report.applied,
                pending_total=report.still_waiting,
                pending_lines=[map_pending_line(line) for line in report.oldest_waiting],
            )

        return await self._once(request, pb.ApplyPendingSaleLinesResponse, effect)

    def _planning(self) -> ReplenishmentPlanner:
        if self._planner is None:
            raise FailedPrecondition("replenishment planning is not configured here", reason="planning-unavailable")
        return self._planner


def register(servicer: InventoryServicer) -> Any:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_InventoryServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return add
