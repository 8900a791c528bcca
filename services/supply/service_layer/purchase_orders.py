"""Purchase-order commands (one handler each, owning its unit of work) and drafts from replenishment.

Every transition writes ``PurchaseOrderStatusChanged`` to the outbox in the transaction that
makes it; every change bumps the order's version (a stale ``expected_version`` is ABORTED). A
supplier user sees and acts on its own supplier's orders only: another's is NOT_FOUND.

Drafts from inventory's ``ReplenishmentSuggested``: one open draft per supplier, receiving
location and business day collects that day's suggestions; each suggestion is recorded once by
its id (redelivered, or taken by two replicas at once, it never becomes a second line), and a
suggestion that cannot be placed (no supplier, unknown or inactive supplier, no contract) is
kept as *unplaced* with its reason, never lost.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from servicekit.idempotency import Reply, RequestFingerprint, keep_reply, replay
from servicekit.outbox import OutboxEvent
from services.supply.adapters import catalogue_store, purchase_store, supplier_store
from services.supply.adapters.integration_events import purchase_order_status_changed
from services.supply.adapters.purchase_store import PoLine, StoredPurchaseOrder, StoredSuggestion, Suggestion
from services.supply.domain.contracts import NoContract
from services.supply.domain.purchase_orders import InvalidQuantity, PoStatus, check_quantity, transition
from services.supply.domain.suppliers import Actor, UnknownSupplier

R = TypeVar("R")
log = logging.getLogger("supply.purchase_orders")

# The chain's business day (China Standard Time, no daylight saving).
BUSINESS_TIME = timezone(timedelta(hours=8))
MAX_LINES = 500
REPLENISHMENT = "replenishment"


def business_day(at: datetime) -> date:
    return at.astimezone(BUSINESS_TIME).date()


def new_po_id() -> str:
    return f"PO{secrets.token_hex(6).upper()}"


class UnknownPurchaseOrder(NotFound):
    reason = "purchase-order-not-found"


class StalePurchaseOrder(Conflict):
    reason = "purchase-order-version-moved"


class InactiveSupplier(FailedPrecondition):
    reason = "supplier-inactive"


class InvalidLines(InvalidArgument):
    reason = "invalid-lines"


@dataclass(frozen=True, slots=True)
class WantedLine:
    sku: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class CreatePurchaseOrder:
    request: RequestFingerprint
    actor: Actor
    supplier_id: str
    location_id: str
    lines: tuple[WantedLine, ...]
    promised_date: date | None


@dataclass(frozen=True, slots=True)
class EditPurchaseOrder:
    request: RequestFingerprint
    actor: Actor
    po_id: str
    expected_version: int
    lines: tuple[WantedLine, ...]
    promised_date: date | None


@dataclass(frozen=True, slots=True)
class MovePurchaseOrder:
    """Approve, send, cancel or close: a transition with nothing else to say (but a reason to cancel)."""

    request: RequestFingerprint
    actor: Actor
    po_id: str
    to: PoStatus
    expected_version: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ConfirmPurchaseOrder:
    request: RequestFingerprint
    actor: Actor
    po_id: str
    lines: dict[int, Decimal]  # line number → quantity; lines not named are confirmed in full
    promised_date: date | None
    note: str


def check_wanted(lines: Sequence[WantedLine]) -> None:
    if not lines:
        raise InvalidLines("a purchase order has at least one line", details={"field": "lines"})
    if len(lines) > MAX_LINES:
        raise InvalidLines(f"a purchase order has at most {MAX_LINES} lines", details={"field": "lines"})
    skus = [line.sku for line in lines]
    if not all(skus) or len(set(skus)) != len(skus):
        raise InvalidLines("each line names a SKU, once", details={"field": "lines.sku"})
    for line in lines:
        check_quantity(line.quantity, field_name="lines.ordered")


async def priced_lines(
    session: AsyncSession, supplier_id: str, wanted: Sequence[WantedLine], on: date, *, first_number: int = 1
) -> list[PoLine]:
    """Lines at the contract's cost, rounded up to whole packs and at least the minimum order."""
    contracts = await supplier_store.contracts_covering(session, supplier_id, [line.sku for line in wanted], on)
    lines = []
    for number, line in enumerate(wanted, start=first_number):
        stored = contracts.get(line.sku)
        if stored is None:
            raise NoContract(
                f"no contract of {supplier_id} covers {line.sku} on {on.isoformat()}",
                details={"sku": line.sku, "on": on.isoformat()},
            )
        terms = stored.terms
        lines.append(
            PoLine(
                line_number=number,
                sku=line.sku,
                contract_id=terms.contract_id,
                ordered=terms.item(line.sku).order_quantity(line.quantity),
                unit_cost_fen=terms.contract.unit_cost_fen.get(line.sku, 0),
                over_delivery_allowance=terms.over_delivery_allowance,
            )
        )
    return lines


async def visible_po(
    session: AsyncSession, actor: Actor, po_id: str, *, lock: bool = False, by_store: bool = True
) -> StoredPurchaseOrder:
    """The order as ``actor`` may know it: another supplier's (or, ``by_store``, another store's) is not found."""
    po = await purchase_store.get_po(session, po_id, lock=lock)
    hidden_by_store = by_store and actor.store_bound and po is not None and po.location_id != actor.store_id
    if po is None or not actor.sees(po.supplier_id) or hidden_by_store:
        raise UnknownPurchaseOrder("no such purchase order", details={"po_id": po_id})
    return po


class PurchaseOrders:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_po_id,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._new_id = new_id

    # ---- reads -----------------------------------------------------------------------------------------------------

    async def get(self, actor: Actor, po_id: str) -> StoredPurchaseOrder:
        async with self._unit_of_work() as uow:
            return await visible_po(uow.session, actor, po_id)

    async def list_orders(
        self,
        actor: Actor,
        *,
        supplier_id: str,
        location_id: str,
        statuses: Sequence[PoStatus],
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[StoredPurchaseOrder]:
        if actor.store_bound:
            location_id = actor.store_id or "\x00no-store"
        async with self._unit_of_work() as uow:
            return await purchase_store.list_pos(
                uow.session,
                supplier_id=actor.supplier_filter(supplier_id),
                location_id=location_id or None,
                statuses=statuses,
                after=after,
                limit=limit,
            )

    # ---- commands --------------------------------------------------------------------------------------------------

    async def create(self, command: CreatePurchaseOrder, reply: Reply[StoredPurchaseOrder, R]) -> R:
        command.actor.check_retailer()
        check_wanted(command.lines)
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            supplier = await supplier_store.get_supplier(uow.session, command.supplier_id)
            if supplier is None:
                raise UnknownSupplier("no such supplier", details={"supplier_id": command.supplier_id})
            if not supplier.supplier.active:
                raise InactiveSupplier("the supplier is not active: no new purchase orders")
            now = self._clock()
            lines = await priced_lines(uow.session, command.supplier_id, command.lines, business_day(now))
            po_id = self._new_id()
            await purchase_store.insert_po(
                uow.session,
                po_id=po_id,
                supplier_id=command.supplier_id,
                location_id=command.location_id,
                origin="manual",
                business_day=None,
                promised_date=command.promised_date,
                created_by=command.actor.client_id,
                at=now,
            )
            await purchase_store.add_lines(uow.session, po_id, lines)
            uow.publish(
                purchase_order_status_changed(
                    po_id=po_id,
                    supplier_id=command.supplier_id,
                    location_id=command.location_id,
                    from_status=None,
                    to_status=PoStatus.DRAFT,
                    actor_id=command.actor.client_id,
                    at=now,
                    version=1,
                )
            )
            return await self._answer(uow, command.request, reply, po_id)

    async def edit(self, command: EditPurchaseOrder, reply: Reply[StoredPurchaseOrder, R]) -> R:
        command.actor.check_retailer()
        check_wanted(command.lines)
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            po = await visible_po(uow.session, command.actor, command.po_id, lock=True)
            self._check_version(po, command.expected_version)
            if po.status is not PoStatus.DRAFT:
                raise FailedPrecondition(
                    f"only a draft is edited; this one is {po.status.value}",
                    reason="purchase-order-state",
                    details={"status": po.status.value},
                )
            now = self._clock()
            lines = await priced_lines(uow.session, po.supplier_id, command.lines, business_day(now))
            # A line kept from the draft keeps its suggestion quantity (what replenishment asked for).
            suggested = {line.sku: line.suggested for line in po.lines}
            lines = [_with_suggested(line, suggested.get(line.sku)) for line in lines]
            await purchase_store.replace_lines(uow.session, po.po_id, lines)
            await purchase_store.touch(uow.session, po.po_id, now, promised_date=command.promised_date)
            return await self._answer(uow, command.request, reply, po.po_id)

    async def move(self, command: MovePurchaseOrder, reply: Reply[StoredPurchaseOrder, R]) -> R:
        command.actor.check_retailer()
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            po = await visible_po(uow.session, command.actor, command.po_id, lock=True)
            self._check_version(po, command.expected_version)
            to = command.to
            if to is PoStatus.CLOSED and po.status not in (PoStatus.PARTIALLY_RECEIVED, PoStatus.RECEIVED):
                raise FailedPrecondition(
                    "only a received or partly received order is closed; cancel one nothing arrived for",
                    reason="purchase-order-state",
                    details={"status": po.status.value},
                )
            transition(po.status, to)
            now = self._clock()
            columns: dict[str, object] = {"status": to.value}
            if to is PoStatus.APPROVED:
                columns["approved_by"] = command.actor.client_id
            elif to is PoStatus.SENT:
                columns["sent_at"] = now
            elif to is PoStatus.CANCELLED:
                columns["cancel_reason"] = command.reason[:500]
            version = await purchase_store.touch(uow.session, po.po_id, now, **columns)
            uow.publish(_status_event(po, to, command.actor.client_id, now, version))
            return await self._answer(uow, command.request, reply, po.po_id)

    async def confirm(self, command: ConfirmPurchaseOrder, reply: Reply[StoredPurchaseOrder, R]) -> R:
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            po = await visible_po(uow.session, command.actor, command.po_id, lock=True)
            transition(po.status, PoStatus.CONFIRMED)
            unknown = sorted(set(command.lines) - {line.line_number for line in po.lines})
            if unknown:
                raise InvalidLines(f"the order has no line {unknown[0]}", details={"line_number": unknown[0]})
            confirmed = {}
            for line in po.lines:
                quantity = command.lines.get(line.line_number, line.ordered)
                check_quantity(quantity, field_name="lines.quantity", allow_zero=True)
                if quantity > line.ordered:
                    raise InvalidQuantity(
                        f"line {line.line_number} confirms {quantity}, more than the {line.ordered} ordered",
                        details={"line_number": line.line_number, "ordered": str(line.ordered)},
                    )
                confirmed[line.line_number] = quantity
            promised = command.promised_date or po.promised_date
            if promised is None:
                raise InvalidArgument("the supplier promises a delivery date", details={"field": "promised_date"})
            now = self._clock()
            await purchase_store.confirm_lines(uow.session, po.po_id, confirmed)
            version = await purchase_store.touch(
                uow.session,
                po.po_id,
                now,
                status=PoStatus.CONFIRMED.value,
                promised_date=promised,
                supplier_note=command.note[:1000],
                confirmed_at=now,
            )
            uow.publish(_status_event(po, PoStatus.CONFIRMED, command.actor.client_id, now, version))
            return await self._answer(uow, command.request, reply, po.po_id)

    async def _answer(
        self, uow: UnitOfWork, request: RequestFingerprint, reply: Reply[StoredPurchaseOrder, R], po_id: str
    ) -> R:
        po = await purchase_store.get_po(uow.session, po_id)
        assert po is not None
        answer = reply.render(po)
        await keep_reply(uow.session, request, reply.codec, answer)
        await uow.commit()
        return answer

    @staticmethod
    def _check_version(po: StoredPurchaseOrder, expected: int) -> None:
        if expected and expected != po.version:
            raise StalePurchaseOrder(
                "the purchase order changed since it was read", details={"version": po.version, "expected": expected}
            )

    # ---- replenishment ---------------------------------------------------------------------------------------------

    async def suggested(self, uow: UnitOfWork, suggestion: Suggestion, *, due: bool) -> str:
        """Place one replenishment suggestion (in the consumer's unit of work); what became of it:
        ``placed``, ``unplaced``, ``not_due`` or ``duplicate``."""
        session = uow.session
        now = self._clock()
        if not due or suggestion.suggested <= 0:
            claimed = await purchase_store.claim_suggestion(session, suggestion, "not_due", "", now)
            return "not_due" if claimed else "duplicate"
        supplier_id = suggestion.supplier_id or await catalogue_store.supplier_of(session, suggestion.sku)
        resolved = replace(suggestion, supplier_id=supplier_id)
        reason = await self._unplaceable(session, resolved)
        if reason:
            claimed = await purchase_store.claim_suggestion(session, resolved, "unplaced", reason, now)
            if claimed:
                log.warning(
                    "replenishment suggestion kept unplaced",
                    extra={"suggestion_id": suggestion.suggestion_id, "sku": suggestion.sku, "reason": reason},
                )
            return "unplaced" if claimed else "duplicate"
        # Claim first: a redelivery (or the other replica) stops here, before touching any draft.
        if not await purchase_store.claim_suggestion(session, resolved, "unplaced", "being placed", now):
            return "duplicate"
        assert supplier_id is not None
        po_id, created = await purchase_store.open_replenishment_draft(
            session,
            new_po_id=self._new_id(),
            supplier_id=supplier_id,
            location_id=suggestion.location_id,
            business_day=suggestion.business_day,
            at=now,
        )
        po = await purchase_store.get_po(session, po_id)
        assert po is not None
        existing = next((line for line in po.lines if line.sku == suggestion.sku), None)
        wanted = WantedLine(suggestion.sku, suggestion.suggested)
        if existing is not None:
            # A newer suggestion for a SKU already on the draft replaces its quantity (the newest run knows best).
            (priced,) = await priced_lines(session, supplier_id, [wanted], suggestion.business_day)
            await purchase_store.resuggest_line(
                session, po_id, existing.line_number, priced.ordered, suggestion.suggested
            )
            line_number = existing.line_number
        else:
            line_number = max((line.line_number for line in po.lines), default=0) + 1
            (priced,) = await priced_lines(
                session, supplier_id, [wanted], suggestion.business_day, first_number=line_number
            )
            await purchase_store.add_lines(session, po_id, [_with_suggested(priced, suggestion.suggested)])
        await purchase_store.place_suggestion(session, suggestion.suggestion_id, po_id, line_number)
        version = await purchase_store.touch(session, po_id, now)
        if created:
            uow.publish(
                purchase_order_status_changed(
                    po_id=po_id,
                    supplier_id=supplier_id,
                    location_id=suggestion.location_id,
                    from_status=None,
                    to_status=PoStatus.DRAFT,
                    actor_id=REPLENISHMENT,
                    at=now,
                    version=version,
                )
            )
        return "placed"

    async def _unplaceable(self, session: AsyncSession, suggestion: Suggestion) -> str:
        """Why a suggestion cannot become a PO line ('' when it can)."""
        if not suggestion.supplier_id:
            return "no-supplier"
        supplier = await supplier_store.get_supplier(session, suggestion.supplier_id)
        if supplier is None:
            return "unknown-supplier"
        if not supplier.supplier.active:
            return "supplier-inactive"
        covering = await supplier_store.contracts_covering(
            session, suggestion.supplier_id, [suggestion.sku], suggestion.business_day
        )
        if suggestion.sku not in covering:
            return "no-contract"
        return ""

    async def unplaced(
        self, *, location_id: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[StoredSuggestion]:
        async with self._unit_of_work() as uow:
            return await purchase_store.list_unplaced(uow.session, location_id=location_id, after=after, limit=limit)


def _with_suggested(line: PoLine, suggested: Decimal | None) -> PoLine:
    return PoLine(
        line.line_number,
        line.sku,
        line.contract_id,
        line.ordered,
        line.unit_cost_fen,
        line.over_delivery_allowance,
        suggested,
    )


def _status_event(po: StoredPurchaseOrder, to: PoStatus, actor_id: str, at: datetime, version: int) -> OutboxEvent:
    return purchase_order_status_changed(
        po_id=po.po_id,
        supplier_id=po.supplier_id,
        location_id=po.location_id,
        from_status=po.status,
        to_status=to,
        actor_id=actor_id,
        at=at,
        version=version,
    )
