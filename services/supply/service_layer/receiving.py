"""Goods receipts, returns to vendor and supplier invoices: one handler per command, owning its unit of work.

A receipt against a purchase order takes the order's row lock first, so concurrent receipts on
one order are applied one after the other and never together bring a line beyond its ordered
quantity × (1 + the contract's over-delivery allowance) (:func:`~services.supply.domain.
purchase_orders.receive`). The receipt, the order's new quantities and status, and the
``GoodsReceived`` event (which inventory applies once per receipt and line) commit together.
Receipts without an order are direct store deliveries, allowed where the SKU's contract says so.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from servicekit.idempotency import Reply, RequestFingerprint, keep_reply, replay
from services.supply.adapters import purchase_store, receipt_store, supplier_store
from services.supply.adapters.integration_events import (
    goods_received,
    goods_returned_to_vendor,
    purchase_order_status_changed,
)
from services.supply.adapters.purchase_store import StoredPurchaseOrder
from services.supply.adapters.receipt_store import (
    InvoiceLineRow,
    ReceiptLineRow,
    ReturnLineRow,
    StoredReceipt,
    StoredReturn,
)
from services.supply.domain.contracts import NoContract
from services.supply.domain.purchase_orders import (
    LineQuantities,
    PoStatus,
    check_quantity,
    match_invoice_line,
    receive,
    return_to_vendor,
    status_after_receipt,
    transition,
)
from services.supply.domain.suppliers import Actor, UnknownSupplier
from services.supply.service_layer.purchase_orders import UnknownPurchaseOrder, business_day, visible_po

R = TypeVar("R")
MAX_LINES = 500
MAX_TEXT = 500


class RejectReasonRequired(InvalidArgument):
    reason = "reject-reason-required"


class NotTheOrderLocation(InvalidArgument):
    reason = "not-the-order-location"


class UnknownOrderLine(InvalidArgument):
    reason = "purchase-order-line-not-found"


class DirectDeliveryNotAllowed(FailedPrecondition):
    reason = "direct-delivery-not-allowed"


class InvoiceNumberTaken(AlreadyExists):
    reason = "invoice-number-taken"


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(6).upper()}"


@dataclass(frozen=True, slots=True)
class ReceivedLine:
    po_line_number: int  # 0: found by SKU (or no order)
    sku: str
    accepted: Decimal
    rejected: Decimal
    reject_reason: str = ""
    lot: str = ""
    expiry_date: date | None = None


@dataclass(frozen=True, slots=True)
class RecordGoodsReceipt:
    request: RequestFingerprint
    actor: Actor
    po_id: str  # '' for a direct delivery
    supplier_id: str
    location_id: str
    lines: tuple[ReceivedLine, ...]
    received_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    receipt: StoredReceipt
    purchase_order: StoredPurchaseOrder | None


@dataclass(frozen=True, slots=True)
class ReturnedLine:
    po_line_number: int
    quantity: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class RecordVendorReturn:
    request: RequestFingerprint
    actor: Actor
    po_id: str
    lines: tuple[ReturnedLine, ...]


@dataclass(frozen=True, slots=True)
class ReturnOutcome:
    return_id: str
    purchase_order: StoredPurchaseOrder


@dataclass(frozen=True, slots=True)
class InvoicedLine:
    po_line_number: int
    quantity: Decimal
    unit_cost_fen: int


@dataclass(frozen=True, slots=True)
class RecordSupplierInvoice:
    request: RequestFingerprint
    actor: Actor
    invoice_number: str
    supplier_id: str
    po_id: str
    lines: tuple[InvoicedLine, ...]


@dataclass(frozen=True, slots=True)
class InvoiceOutcome:
    invoice_id: str
    lines: tuple[InvoiceLineRow, ...]
    matched: bool


def _check_lines(lines: Sequence[object]) -> None:
    if not lines:
        raise InvalidArgument("at least one line", details={"field": "lines"})
    if len(lines) > MAX_LINES:
        raise InvalidArgument(f"at most {MAX_LINES} lines", details={"field": "lines"})


def _check_received(line: ReceivedLine) -> None:
    check_quantity(line.accepted, field_name="lines.accepted", allow_zero=True)
    check_quantity(line.rejected, field_name="lines.rejected", allow_zero=True)
    if line.accepted + line.rejected == 0:
        raise InvalidArgument("a receipt line receives something", details={"field": "lines.accepted"})
    if line.rejected > 0 and not line.reject_reason.strip():
        raise RejectReasonRequired("rejected goods need the reason they were rejected", details={"sku": line.sku})
    if len(line.reject_reason) > MAX_TEXT or len(line.lot) > 64:
        raise InvalidArgument("a reason is at most 500 characters and a lot 64", details={"field": "lines"})


class ReceivingListener(Protocol):
    """Told of each receipt and return to vendor in the transaction that records it (settlement
    accrues 经销 lines from them, so that an accrual exists exactly when its fact does)."""

    async def receipt_recorded(self, uow: UnitOfWork, receipt: StoredReceipt) -> None: ...

    async def return_recorded(self, uow: UnitOfWork, returned: StoredReturn) -> None: ...


class Receiving:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        clock: Clock = utc_now,
        listeners: Sequence[ReceivingListener] = (),
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._listeners = tuple(listeners)

    async def record_receipt(self, command: RecordGoodsReceipt, reply: Reply[ReceiptOutcome, R]) -> R:
        _check_lines(command.lines)
        for line in command.lines:
            _check_received(line)
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            now = self._clock()
            received_at = command.received_at or now
            if command.po_id:
                receipt, po = await self._against_order(uow, command, received_at, now)
            else:
                receipt, po = await self._direct(uow, command, received_at), None
            await receipt_store.insert_receipt(uow.session, receipt, now)
            uow.publish(goods_received(receipt, now))
            for listener in self._listeners:
                await listener.receipt_recorded(uow, receipt)
            answer = reply.render(ReceiptOutcome(receipt, po))
            await keep_reply(uow.session, command.request, reply.codec, answer)
            await uow.commit()
        return answer

    async def _against_order(
        self, uow: UnitOfWork, command: RecordGoodsReceipt, received_at: datetime, now: datetime
    ) -> tuple[StoredReceipt, StoredPurchaseOrder]:
        session = uow.session
        po = await visible_po(session, command.actor, command.po_id, lock=True, by_store=False)
        if command.supplier_id and command.supplier_id != po.supplier_id:
            raise UnknownPurchaseOrder("no such purchase order of this supplier", details={"po_id": command.po_id})
        command.actor.check_receives_at(po.location_id)
        if command.location_id and command.location_id != po.location_id:
            raise NotTheOrderLocation(
                f"the order is received at {po.location_id}", details={"location_id": po.location_id}
            )
        if po.status not in (PoStatus.CONFIRMED, PoStatus.PARTIALLY_RECEIVED):
            raise FailedPrecondition(
                f"goods are received against a confirmed order; this one is {po.status.value}",
                reason="purchase-order-state",
                details={"status": po.status.value},
            )
        quantities: dict[int, LineQuantities] = {line.line_number: line.quantities for line in po.lines}
        by_sku = {line.sku: line for line in po.lines}
        rows = []
        touched: dict[int, LineQuantities] = {}
        for number, received in enumerate(command.lines, start=1):
            po_line = po.line(received.po_line_number) if received.po_line_number else by_sku.get(received.sku)
            if po_line is None or (received.sku and received.sku != po_line.sku):
                raise UnknownOrderLine(
                    "the order has no such line",
                    details={"po_line_number": received.po_line_number, "sku": received.sku},
                )
            after = receive(
                quantities[po_line.line_number],
                received.accepted,
                received.rejected,
                allowance=po_line.over_delivery_allowance,
            )
            quantities[po_line.line_number] = touched[po_line.line_number] = after
            rows.append(
                ReceiptLineRow(
                    number,
                    po_line.line_number,
                    po_line.sku,
                    po_line.contract_id,
                    po_line.unit_cost_fen,
                    received.accepted,
                    received.rejected,
                    received.reject_reason.strip(),
                    received.lot,
                    received.expiry_date,
                )
            )
        for line_number, after in touched.items():
            await purchase_store.set_received(
                session,
                po.po_id,
                line_number,
                accepted=after.accepted,
                rejected=after.rejected,
                arrived_at=received_at,
                fully_delivered_at=received_at if after.delivered >= after.ordered else None,
            )
        status = transition(po.status, status_after_receipt(list(quantities.values())))
        version = await purchase_store.touch(session, po.po_id, now, status=status.value)
        if status is not po.status:
            uow.publish(
                purchase_order_status_changed(
                    po_id=po.po_id,
                    supplier_id=po.supplier_id,
                    location_id=po.location_id,
                    from_status=po.status,
                    to_status=status,
                    actor_id=command.actor.client_id,
                    at=now,
                    version=version,
                )
            )
        after_po = await purchase_store.get_po(session, po.po_id)
        assert after_po is not None
        receipt = StoredReceipt(
            new_id("GR"), po.po_id, po.supplier_id, po.location_id, received_at, command.actor.client_id, tuple(rows)
        )
        return receipt, after_po

    async def _direct(self, uow: UnitOfWork, command: RecordGoodsReceipt, received_at: datetime) -> StoredReceipt:
        session = uow.session
        if not command.supplier_id or not command.location_id:
            raise InvalidArgument(
                "a delivery without an order names its supplier and location", details={"field": "supplier_id"}
            )
        if not command.actor.sees(command.supplier_id) or (
            await supplier_store.get_supplier(session, command.supplier_id) is None
        ):
            raise UnknownSupplier("no such supplier", details={"supplier_id": command.supplier_id})
        command.actor.check_receives_at(command.location_id)
        skus = [line.sku for line in command.lines]
        if not all(skus):
            raise InvalidArgument("each line names its SKU", details={"field": "lines.sku"})
        day = business_day(received_at)
        contracts = await supplier_store.contracts_covering(session, command.supplier_id, skus, day)
        rows = []
        for number, line in enumerate(command.lines, start=1):
            stored = contracts.get(line.sku)
            if stored is None:
                raise NoContract(f"no contract covers {line.sku} on {day.isoformat()}", details={"sku": line.sku})
            if not stored.contract.allows_direct_delivery:
                raise DirectDeliveryNotAllowed(
                    f"contract {stored.contract.contract_id} does not allow deliveries without an order",
                    details={"contract_id": stored.contract.contract_id, "sku": line.sku},
                )
            rows.append(
                ReceiptLineRow(
                    number,
                    0,
                    line.sku,
                    stored.contract.contract_id,
                    stored.contract.unit_cost_fen.get(line.sku, 0),
                    line.accepted,
                    line.rejected,
                    line.reject_reason.strip(),
                    line.lot,
                    line.expiry_date,
                )
            )
        return StoredReceipt(
            new_id("GR"),
            None,
            command.supplier_id,
            command.location_id,
            received_at,
            command.actor.client_id,
            tuple(rows),
        )

    async def list_receipts(
        self, actor: Actor, *, supplier_id: str, po_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[StoredReceipt]:
        async with self._unit_of_work() as uow:
            return await receipt_store.list_receipts(
                uow.session,
                supplier_id=actor.supplier_filter(supplier_id),
                po_id=po_id or None,
                location_id=(actor.store_id or "\x00no-store") if actor.store_bound else None,
                after=after,
                limit=limit,
            )

    async def record_return(self, command: RecordVendorReturn, reply: Reply[ReturnOutcome, R]) -> R:
        command.actor.check_retailer()
        _check_lines(command.lines)
        for line in command.lines:
            check_quantity(line.quantity, field_name="lines.quantity")
            if not line.reason.strip() or len(line.reason) > MAX_TEXT:
                raise InvalidArgument("each line says why (1 to 500 characters)", details={"field": "lines.reason"})
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            session = uow.session
            po = await visible_po(session, command.actor, command.po_id, lock=True, by_store=False)
            command.actor.check_receives_at(po.location_id)
            quantities = {line.line_number: line.quantities for line in po.lines}
            rows = []
            for number, returned in enumerate(command.lines, start=1):
                po_line = po.line(returned.po_line_number)
                if po_line is None:
                    raise UnknownOrderLine(
                        "the order has no such line", details={"po_line_number": returned.po_line_number}
                    )
                quantities[po_line.line_number] = return_to_vendor(quantities[po_line.line_number], returned.quantity)
                rows.append(
                    ReturnLineRow(
                        number,
                        po_line.line_number,
                        po_line.sku,
                        po_line.contract_id,
                        po_line.unit_cost_fen,
                        returned.quantity,
                        returned.reason.strip(),
                    )
                )
            for row in rows:
                await purchase_store.set_returned(
                    session, po.po_id, row.po_line_number, quantities[row.po_line_number].returned
                )
            now = self._clock()
            returned_goods = StoredReturn(
                new_id("RV"), po.po_id, po.supplier_id, po.location_id, now, command.actor.client_id, tuple(rows)
            )
            return_id = returned_goods.return_id
            await receipt_store.insert_return(session, returned_goods)
            await purchase_store.touch(session, po.po_id, now)
            uow.publish(
                goods_returned_to_vendor(
                    return_id=return_id,
                    po_id=po.po_id,
                    supplier_id=po.supplier_id,
                    location_id=po.location_id,
                    lines=rows,
                    at=now,
                )
            )
            for listener in self._listeners:
                await listener.return_recorded(uow, returned_goods)
            after = await purchase_store.get_po(session, po.po_id)
            assert after is not None
            answer = reply.render(ReturnOutcome(return_id, after))
            await keep_reply(session, command.request, reply.codec, answer)
            await uow.commit()
        return answer

    async def record_invoice(self, command: RecordSupplierInvoice, reply: Reply[InvoiceOutcome, R]) -> R:
        _check_lines(command.lines)
        if not 1 <= len(command.invoice_number.strip()) <= 64:
            raise InvalidArgument("invoice_number is 1 to 64 characters", details={"field": "invoice_number"})
        for line in command.lines:
            check_quantity(line.quantity, field_name="lines.quantity")
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            session = uow.session
            po = await visible_po(session, command.actor, command.po_id, lock=True, by_store=False)
            if command.supplier_id != po.supplier_id:
                # Another supplier's order does not exist for this invoice: nothing about it leaks.
                raise UnknownPurchaseOrder("no such purchase order of this supplier", details={"po_id": command.po_id})
            if await receipt_store.invoice_number_taken(session, po.supplier_id, command.invoice_number.strip()):
                raise InvoiceNumberTaken(
                    "the supplier already sent an invoice with this number",
                    details={"invoice_number": command.invoice_number},
                )
            terms = {}
            quantities = {line.line_number: line.quantities for line in po.lines}
            rows = []
            for number, invoiced in enumerate(command.lines, start=1):
                po_line = po.line(invoiced.po_line_number)
                if po_line is None:
                    raise UnknownOrderLine(
                        "the order has no such line", details={"po_line_number": invoiced.po_line_number}
                    )
                if po_line.contract_id not in terms:
                    stored = await supplier_store.get_contract(session, po_line.contract_id)
                    assert stored is not None
                    terms[po_line.contract_id] = stored.terms
                contract_terms = terms[po_line.contract_id]
                current = quantities[po_line.line_number]
                match = match_invoice_line(
                    current,
                    order_unit_cost_fen=po_line.unit_cost_fen,
                    invoice_quantity=invoiced.quantity,
                    invoice_unit_cost_fen=invoiced.unit_cost_fen,
                    price_tolerance=contract_terms.price_tolerance,
                    rejects_billed=contract_terms.contract.rejects_billed,
                )
                if match.matched:
                    quantities[po_line.line_number] = LineQuantities(
                        current.ordered,
                        current.accepted,
                        current.rejected,
                        current.returned,
                        current.billed + invoiced.quantity,
                    )
                rows.append(
                    InvoiceLineRow(
                        number,
                        po_line.line_number,
                        invoiced.quantity,
                        invoiced.unit_cost_fen,
                        match.result.value,
                        match.expected_fen,
                    )
                )
            matched = all(row.match_result == "matched" for row in rows)
            if matched:
                # Only an invoice that matches in full is billed (and paid); a held one bills nothing.
                for ordered in po.lines:
                    if quantities[ordered.line_number].billed != ordered.billed:
                        await purchase_store.set_billed(
                            session, po.po_id, ordered.line_number, quantities[ordered.line_number].billed
                        )
            invoice_id = new_id("IV")
            await receipt_store.insert_invoice(
                session,
                invoice_id=invoice_id,
                supplier_id=po.supplier_id,
                invoice_number=command.invoice_number.strip(),
                po_id=po.po_id,
                matched=matched,
                by=command.actor.client_id,
                at=self._clock(),
                lines=rows,
            )
            answer = reply.render(InvoiceOutcome(invoice_id, tuple(rows), matched))
            await keep_reply(session, command.request, reply.codec, answer)
            await uow.commit()
        return answer
