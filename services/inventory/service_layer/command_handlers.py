"""One handler per inventory command; each owns its unit of work.

A handler claims the command's request id, calls the domain (through the inventory service
or the transfer saga, which work inside the handler's unit of work), keeps its answer under
the request id and commits — all in one transaction, so the effect, its outbox events and
the stored answer commit together. A retry with the same id gets the first answer; a
domain error rolls back the claim too, so a corrected retry with the same id may succeed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from servicekit.db import UnitOfWork
from servicekit.idempotency import keep_reply, replay
from services.inventory.domain.model import Reservation, Transfer
from services.inventory.service_layer import commands
from services.inventory.service_layer.handlers import CHINA_STANDARD_TIME, InventoryService
from services.inventory.service_layer.transfers import TransferSaga, import_sales_history, record_stock_count


class InventoryCommands:
    """The handlers the gRPC servicer calls, one per mutating RPC."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        service: InventoryService,
        saga: TransferSaga,
        replies: commands.StoredReplies,
    ) -> None:
        self._uow = unit_of_work
        self._service = service
        self._saga = saga
        self._replies = replies

    async def reserve_stock(self, command: commands.ReserveStock) -> Reservation:
        """Hold units (coalesced per location: the batch's transaction is the handler's)."""
        return await self._service.reserve(command)

    async def commit_reservation(self, command: commands.CommitReservation) -> Reservation:
        async with self._uow() as uow:
            if (earlier := await replay(uow.session, command.request, self._replies.committed)) is not None:
                return earlier
            reservation = await self._service.commit(uow, command.reservation_id, command.owner)
            await keep_reply(uow.session, command.request, self._replies.committed, reservation)
            await uow.commit()
        return reservation

    async def release_reservation(self, command: commands.ReleaseReservation) -> Reservation:
        async with self._uow() as uow:
            if (earlier := await replay(uow.session, command.request, self._replies.released)) is not None:
                return earlier
            reservation = await self._service.release(uow, command.reservation_id, command.owner)
            await keep_reply(uow.session, command.request, self._replies.released, reservation)
            await uow.commit()
        return reservation

    async def request_transfer(self, command: commands.RequestTransfer) -> Transfer:
        async with self._uow() as uow:
            if (earlier := await replay(uow.session, command.request, self._replies.transfer_requested)) is not None:
                return earlier
            transfer = await self._saga.request(
                uow,
                sku=command.sku,
                quantity=command.quantity,
                from_location=command.from_location,
                to_location=command.to_location,
            )
            await keep_reply(uow.session, command.request, self._replies.transfer_requested, transfer)
            await uow.commit()
        return transfer

    async def dispatch_transfer(self, command: commands.DispatchTransfer) -> Transfer:
        async with self._uow() as uow:
            if (earlier := await replay(uow.session, command.request, self._replies.transfer_dispatched)) is not None:
                return earlier
            transfer = await self._saga.dispatch(uow, command.transfer_id)
            await keep_reply(uow.session, command.request, self._replies.transfer_dispatched, transfer)
            await uow.commit()
        return transfer

    async def receive_transfer(self, command: commands.ReceiveTransfer) -> Transfer:
        async with self._uow() as uow:
            if (earlier := await replay(uow.session, command.request, self._replies.transfer_received)) is not None:
                return earlier
            transfer = await self._saga.receive(uow, command.transfer_id, command.received_quantity)
            await keep_reply(uow.session, command.request, self._replies.transfer_received, transfer)
            await uow.commit()
        return transfer

    async def cancel_transfer(self, command: commands.CancelTransfer) -> Transfer:
        async with self._uow() as uow:
            if (earlier := await replay(uow.session, command.request, self._replies.transfer_cancelled)) is not None:
                return earlier
            transfer = await self._saga.cancel(uow, command.transfer_id)
            await keep_reply(uow.session, command.request, self._replies.transfer_cancelled, transfer)
            await uow.commit()
        return transfer

    async def import_sales_history(self, command: commands.ImportSalesHistory) -> int:
        """Returns how many lines were stored (an upsert: re-importing changes nothing)."""
        # "Future" is judged on the chain's calendar, where the business day is.
        today = datetime.now(CHINA_STANDARD_TIME).date()
        async with self._uow() as uow:
            if (earlier := await replay(uow.session, command.request, self._replies.history_imported)) is not None:
                return earlier
            imported = await import_sales_history(uow, command.location_id, command.lines, today)
            await keep_reply(uow.session, command.request, self._replies.history_imported, imported)
            await uow.commit()
        return imported

    async def record_stock_count(self, command: commands.RecordStockCount) -> int:
        """Returns how many stock levels the count adjusted."""
        async with self._uow() as uow:
            if (earlier := await replay(uow.session, command.request, self._replies.stock_counted)) is not None:
                return earlier
            adjusted = await record_stock_count(uow, command.location_id, command.lines)
            await keep_reply(uow.session, command.request, self._replies.stock_counted, adjusted)
            await uow.commit()
        return adjusted

    async def apply_pending_sale_lines(self, command: commands.ApplyPendingSaleLines) -> commands.PendingLinesReport:
        async with self._uow() as uow:
            if (earlier := await replay(uow.session, command.request, self._replies.pending_lines)) is not None:
                return earlier
            report = await self._service.apply_pending_sale_lines(uow, command.location_id)
            await keep_reply(uow.session, command.request, self._replies.pending_lines, report)
            await uow.commit()
        return report
