"""The InventoryService gRPC servicer: map the wire message, call the handler, map back."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from retail.common.v1 import paging_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

from servicekit.errors import DomainError, FailedPrecondition, InvalidArgument
from servicekit.grpc_server import refusal_of
from services.inventory.domain.model import ZERO
from services.inventory.entrypoints import planning_api
from services.inventory.entrypoints.wire import (
    map_apply_pending_sale_lines,
    map_cancel_transfer,
    map_commit,
    map_decimal,
    map_dispatch_transfer,
    map_import_sales_history,
    map_level,
    map_location,
    map_pending_report,
    map_receive_transfer,
    map_record_stock_count,
    map_release,
    map_request_transfer,
    map_reservation,
    map_reserve,
    map_transfer,
    map_transfer_listing,
    map_transfer_status_back,
)
from services.inventory.service_layer.command_handlers import InventoryCommands
from services.inventory.service_layer.handlers import InventoryService
from services.inventory.service_layer.replenishment import ReplenishmentPlanner

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
# Reservation requests one ReserveStocks call may carry (the gateway sends at most its batch size).
MAX_RESERVATIONS_AT_ONCE = 500


class InventoryServicer(pb_grpc.InventoryServiceServicer):
    """gRPC face of the inventory service: each RPC maps its request to a command or a question,
    calls the one handler that answers it, and maps the answer back."""

    def __init__(
        self,
        commands: InventoryCommands,
        service: InventoryService,
        planner: ReplenishmentPlanner | None = None,
    ) -> None:
        self._commands = commands
        self._service = service
        self._planner = planner

    async def RequestTransfer(self, request: pb.RequestTransferRequest, context: Any) -> pb.RequestTransferResponse:
        """Start a transfer: the source holds the units."""
        transfer = await self._commands.request_transfer(map_request_transfer(request))
        return pb.RequestTransferResponse(transfer=map_transfer(transfer))

    async def DispatchTransfer(self, request: pb.DispatchTransferRequest, context: Any) -> pb.DispatchTransferResponse:
        """The units left the source and are in transit to the destination."""
        transfer = await self._commands.dispatch_transfer(map_dispatch_transfer(request))
        return pb.DispatchTransferResponse(transfer=map_transfer(transfer))

    async def ReceiveTransfer(self, request: pb.ReceiveTransferRequest, context: Any) -> pb.ReceiveTransferResponse:
        """Book what arrived; the shortfall is recorded as shrink."""
        transfer = await self._commands.receive_transfer(map_receive_transfer(request))
        return pb.ReceiveTransferResponse(transfer=map_transfer(transfer))

    async def CancelTransfer(self, request: pb.CancelTransferRequest, context: Any) -> pb.CancelTransferResponse:
        """Call a transfer off before dispatch."""
        transfer = await self._commands.cancel_transfer(map_cancel_transfer(request))
        return pb.CancelTransferResponse(transfer=map_transfer(transfer))

    async def ListTransfers(self, request: pb.ListTransfersRequest, context: Any) -> pb.ListTransfersResponse:
        """A page of the transfers into or out of a location, newest first, in the statuses asked for."""
        size = request.page.page_size or DEFAULT_PAGE_SIZE
        if not 0 < size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}", reason="invalid-page-size")
        statuses = [map_transfer_status_back(status) for status in request.statuses]
        rows, token = await self._service.transfers(request.location_id, statuses, request.page.page_token, size)
        return pb.ListTransfersResponse(
            transfers=[map_transfer_listing(row) for row in rows], page_info=paging_pb2.PageInfo(next_page_token=token)
        )

    async def ImportSalesHistory(
        self, request: pb.ImportSalesHistoryRequest, context: Any
    ) -> pb.ImportSalesHistoryResponse:
        """Backfill daily sold quantities (an upsert; re-importing changes nothing; stock untouched)."""
        imported = await self._commands.import_sales_history(map_import_sales_history(request))
        return pb.ImportSalesHistoryResponse(imported_lines=imported)

    async def RecordStockCount(self, request: pb.RecordStockCountRequest, context: Any) -> pb.RecordStockCountResponse:
        """Counted quantities become adjustment movements, for the whole count or not at all."""
        adjusted = await self._commands.record_stock_count(map_record_stock_count(request))
        return pb.RecordStockCountResponse(adjusted_levels=adjusted)

    async def ListLocations(self, request: pb.ListLocationsRequest, context: Any) -> pb.ListLocationsResponse:
        """Every active location with the channels it serves."""
        locations = await self._service.locations()
        return pb.ListLocationsResponse(locations=[map_location(location) for location in locations])

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
        """Hold units for an online order (coalesced with the location's concurrent reservations)."""
        reservation = await self._commands.reserve_stock(map_reserve(request))
        return pb.ReserveStockResponse(reservation=map_reservation(reservation))

    async def ReserveStocks(self, request: pb.ReserveStocksRequest, context: Any) -> pb.ReserveStocksResponse:
        """Several reservations in one call (the gateway's coalesced ones): each as ReserveStock alone."""
        if len(request.requests) > MAX_RESERVATIONS_AT_ONCE:
            raise InvalidArgument(
                f"at most {MAX_RESERVATIONS_AT_ONCE} reservations at once", details={"field": "requests"}
            )
        # Concurrently, so that requests for one location share the coalesced transactions.
        outcomes = await asyncio.gather(
            *(self._reserve_outcome(one) for one in request.requests), return_exceptions=True
        )
        answered: list[pb.ReserveOutcome] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # a fault (the database unreachable): the whole call fails, retries replay
            answered.append(outcome)
        return pb.ReserveStocksResponse(outcomes=answered)

    async def _reserve_outcome(self, request: pb.ReserveStockRequest) -> pb.ReserveOutcome:
        try:
            reservation = await self._commands.reserve_stock(map_reserve(request))
        except DomainError as refused:  # this request alone is refused: the others of its batch are answered
            return pb.ReserveOutcome(refusal=refusal_of(refused))
        return pb.ReserveOutcome(reservation=map_reservation(reservation))

    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: Any
    ) -> pb.CommitReservationResponse:
        """Mark a reservation as paid; the journaled sale then sells the units."""
        reservation = await self._commands.commit_reservation(map_commit(request))
        return pb.CommitReservationResponse(reservation=map_reservation(reservation))

    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: Any
    ) -> pb.ReleaseReservationResponse:
        """Give a reservation's units back to available-to-promise."""
        reservation = await self._commands.release_reservation(map_release(request))
        return pb.ReleaseReservationResponse(reservation=map_reservation(reservation))

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
        return map_pending_report(await self._commands.apply_pending_sale_lines(map_apply_pending_sale_lines(request)))

    def _planning(self) -> ReplenishmentPlanner:
        if self._planner is None:
            raise FailedPrecondition("replenishment planning is not configured here", reason="planning-unavailable")
        return self._planner


def register(servicer: InventoryServicer) -> Any:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_InventoryServiceServicer_to_server(servicer, server)

    return add
