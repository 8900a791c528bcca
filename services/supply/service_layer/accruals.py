"""Settlement's accruals: written as facts arrive, each exactly once (the consumer's inbox, and ``source_id`` unique).

* :meth:`Accruals.apply_journal_entry` — a SALES journal entry. A sale line of a SKU that a
  consignment or concession contract covers on the sale's business day accrues on that
  contract's terms; a return reverses the matching line of its original sale, cumulatively,
  on the original's terms (a line returned in parts reverses exactly what it accrued). A
  return whose original sale has not arrived waits (kept, reported by the check) and is
  applied when it does; what cannot accrue is kept too, never raised. Every line also adds
  to the store × SKU × day totals the supplier portal reads.
* :meth:`Accruals.apply_goods_received` / :meth:`Accruals.apply_vendor_return` — supply's own
  receipts and returns to vendor under purchase contracts, from the SUPPLY stream, so
  accruing is independent from (and never slows) purchasing's transaction.
* :meth:`Accruals.record_fee` — a promotion or slotting fee, a deduction.

The statements that show them: :mod:`~services.supply.service_layer.statements`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument, NotFound
from servicekit.idempotency import ReplyCodec, RequestFingerprint, keep_reply, replay
from services.supply.adapters import accrual_store
from services.supply.adapters.accrual_store import DaySales, UnmatchedLine
from services.supply.domain.contracts import Contract
from services.supply.domain.settlement import (
    Accrual,
    AccrualKind,
    accrue_customer_return,
    accrue_receipt,
    accrue_sale,
    check_amount,
)
from services.supply.service_layer.statements import StatementsAreHeadquarters

BUSINESS_TIME_ZONE = ZoneInfo("Asia/Shanghai")
FEE_KINDS = ("promotion", "slotting")
MAX_DESCRIPTION = 200


class UnknownContract(NotFound):
    reason = "contract-not-found"


class InvalidFee(InvalidArgument):
    reason = "invalid-fee"


def business_day(at: datetime) -> date:
    """The chain's business day of a moment (China Standard Time)."""
    return at.astimezone(BUSINESS_TIME_ZONE).date()


@dataclass(frozen=True, slots=True)
class JournalLine:
    line_number: int
    sku: str
    quantity: Decimal  # positive; a return says so by the entry's kind
    revenue_fen: int  # what the customer paid for it (line total)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    sale_id: str
    is_return: bool
    store_id: str
    occurred_at: datetime
    lines: tuple[JournalLine, ...]
    original_sale_id: str = ""


@dataclass(frozen=True, slots=True)
class RecordFee:
    request: RequestFingerprint
    contract_id: str
    fee_kind: str
    amount_fen: int
    occurred_on: date
    description: str
    supplier_scope: str | None = None  # a supplier's user: its own contracts only


def _usable(line: JournalLine) -> bool:
    exponent = line.quantity.as_tuple().exponent
    return (
        line.quantity.is_finite()
        and line.quantity > 0
        and isinstance(exponent, int)
        and exponent >= -3
        and line.quantity < Decimal(10) ** 11
        and 0 <= line.revenue_fen <= 10**12
    )


def _accrual_json(accrual: Accrual) -> bytes:
    return json.dumps(
        {
            "source_id": accrual.source_id,
            "supplier_id": accrual.supplier_id,
            "contract_id": accrual.contract_id,
            "kind": accrual.kind.value,
            "occurred_on": accrual.occurred_on.isoformat(),
            "amount_fen": accrual.amount_fen,
        }
    ).encode()


def _accrual_from_json(data: bytes) -> Accrual:
    fields = json.loads(data)
    return Accrual(
        fields["source_id"],
        fields["supplier_id"],
        fields["contract_id"],
        AccrualKind(fields["kind"]),
        date.fromisoformat(fields["occurred_on"]),
        fields["amount_fen"],
    )


ACCRUAL_JSON: ReplyCodec[Accrual] = ReplyCodec(_accrual_json, _accrual_from_json)


class Accruals:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        fee_codec: ReplyCodec[Accrual] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._fee_codec = fee_codec or ACCRUAL_JSON
        self._clock = clock

    async def apply_journal_entry(self, uow: UnitOfWork, entry: JournalEntry) -> None:
        """One SALES journal entry, in the consumer's unit of work (its inbox row commits with it)."""
        session = uow.session
        now = self._clock()
        day = business_day(entry.occurred_at)
        usable = [line for line in entry.lines if _usable(line)]
        days = [
            DaySales(entry.store_id, line.sku, day, returned=line.quantity, returned_fen=line.revenue_fen)
            if entry.is_return
            else DaySales(entry.store_id, line.sku, day, sold=line.quantity, sold_fen=line.revenue_fen)
            for line in usable
        ]
        # Noted by id first: an entry delivered again (past the inbox, under another event id) changes nothing.
        contracts: dict[str, Contract] = {}
        if entry.is_return:
            if not await accrual_store.record_journal_entry(session, entry.sale_id, entry.store_id, day, True):
                return
            await accrual_store.add_sales_days(session, days)
        else:
            skus = [line.sku for line in usable]
            noted, contracts = await accrual_store.note_sale(session, entry.sale_id, entry.store_id, day, days, skus)
            if not noted:
                return
        unusable = [line for line in entry.lines if not _usable(line)]
        if unusable:
            settled = await accrual_store.settled_by_sales(session, [line.sku for line in unusable])
            await accrual_store.keep_unmatched(
                session,
                [
                    UnmatchedLine(
                        f"{'return' if entry.is_return else 'sale'}:{entry.sale_id}:{line.line_number}",
                        entry.sale_id,
                        line.line_number,
                        entry.original_sale_id,
                        "invalid",
                        line.sku,
                        entry.store_id,
                        Decimal(0),
                        0,
                        day,
                        f"quantity {line.quantity} or amount {line.revenue_fen} fen cannot be settled",
                    )
                    for line in unusable
                    if line.sku in settled
                ],
                now,
            )
        if entry.is_return:
            await self._apply_return(uow, entry.sale_id, entry.original_sale_id, entry.store_id, day, usable, now)
            return
        accruals = [
            accrue_sale(
                contracts[line.sku],
                source_id=f"sale:{entry.sale_id}:{line.line_number}",
                sku=line.sku,
                store_id=entry.store_id,
                quantity=line.quantity,
                revenue_fen=line.revenue_fen,
                occurred_on=day,
            )
            for line in usable
            if line.sku in contracts
        ]
        # The accruals written, and the returns that arrived before this sale (an offline till replaying late)
        # taken off the waiting list, in one round trip; those returns apply now, in their order.
        waiting = await accrual_store.take_waiting_returns(session, entry.sale_id, accruals, now)
        for return_sale_id in dict.fromkeys(line.sale_id for line in waiting):
            lines = [line for line in waiting if line.sale_id == return_sale_id]
            await self._apply_return(
                uow,
                return_sale_id,
                entry.sale_id,
                lines[0].store_id,
                lines[0].occurred_on,
                [JournalLine(line.line_number, line.sku, line.quantity, line.revenue_fen) for line in lines],
                now,
            )

    async def _apply_return(
        self,
        uow: UnitOfWork,
        sale_id: str,
        original_sale_id: str,
        store_id: str,
        day: date,
        lines: Sequence[JournalLine],
        now: datetime,
    ) -> None:
        session = uow.session
        if not lines:
            return
        if not original_sale_id or not await accrual_store.journal_sale_known(session, original_sale_id):
            # The original has not arrived (or was never named): the lines of SKUs settled from sales wait for it.
            settled = await accrual_store.settled_by_sales(session, [line.sku for line in lines])
            await accrual_store.keep_unmatched(
                session,
                [
                    UnmatchedLine(
                        f"return:{sale_id}:{line.line_number}",
                        sale_id,
                        line.line_number,
                        original_sale_id,
                        "waiting",
                        line.sku,
                        store_id,
                        line.quantity,
                        line.revenue_fen,
                        day,
                        "" if original_sale_id else "the return names no original sale",
                    )
                    for line in lines
                    if line.sku in settled
                ],
                now,
            )
            return
        sold = await accrual_store.sold_lines(session, original_sale_id)
        taken: dict[str, tuple[Decimal, int]] = {}  # what this entry already took back per original line
        accruals: list[Accrual] = []
        excess: list[UnmatchedLine] = []
        for line in lines:
            left = line.quantity
            pieces = 0
            for original in sold:
                if original.accrual.sku != line.sku or left <= 0:
                    continue
                earlier_quantity, earlier_fen = taken.get(original.accrual.source_id, (Decimal(0), 0))
                returned_before = original.returned + earlier_quantity
                remaining = original.accrual.quantity - returned_before
                if remaining <= 0:
                    continue
                quantity = min(left, remaining)
                revenue = (
                    line.revenue_fen if quantity == line.quantity else int(line.revenue_fen * quantity / line.quantity)
                )
                pieces += 1
                source = f"return:{sale_id}:{line.line_number}" + ("" if pieces == 1 else f".{pieces}")
                accrual = accrue_customer_return(
                    original.accrual,
                    source_id=source,
                    quantity=quantity,
                    revenue_fen=revenue,
                    returned_before=returned_before,
                    reversed_before_fen=original.reversed_fen + earlier_fen,
                    occurred_on=day,
                )
                accruals.append(accrual)
                taken[original.accrual.source_id] = (earlier_quantity + quantity, earlier_fen - accrual.amount_fen)
                left -= quantity
            if left > 0 and (pieces or any(original.accrual.sku == line.sku for original in sold)):
                excess.append(
                    UnmatchedLine(
                        f"return:{sale_id}:{line.line_number}" + (f".{pieces + 1}" if pieces else ""),
                        sale_id,
                        line.line_number,
                        original_sale_id,
                        "excess",
                        line.sku,
                        store_id,
                        left,
                        0,
                        day,
                        f"{left} more returned than sale {original_sale_id} sold",
                    )
                )
        await accrual_store.insert_accruals(session, accruals, now, sale_id=sale_id)
        await accrual_store.keep_unmatched(session, excess, now)

    async def apply_goods_received(self, uow: UnitOfWork, receipt_id: str, received_at: datetime) -> int:
        """A receipt's lines under purchase contracts, as accruals (in the consumer's unit of work)."""
        location, lines = await accrual_store.receipt_lines(uow.session, receipt_id)
        day = business_day(received_at)
        accruals = [
            accrue_receipt(
                line.contract,
                source_id=f"receipt:{receipt_id}:{line.line_number}",
                sku=line.sku,
                store_id=location,
                accepted=line.accepted,
                rejected=line.rejected,
                occurred_on=day,
            )
            for line in lines
            if line.accepted > 0 or (line.contract.rejects_billed and line.rejected > 0)
        ]
        await accrual_store.insert_accruals(uow.session, accruals, self._clock())
        return len(accruals)

    async def apply_vendor_return(self, uow: UnitOfWork, return_id: str, returned_at: datetime) -> int:
        """A return to vendor's lines under purchase contracts, as credits."""
        location, lines = await accrual_store.vendor_return_lines(uow.session, return_id)
        day = business_day(returned_at)
        accruals = [
            accrue_receipt(
                line.contract,
                source_id=f"return_to_vendor:{return_id}:{line.line_number}",
                sku=line.sku,
                store_id=location,
                accepted=line.accepted,
                rejected=Decimal(0),
                occurred_on=day,
                to_vendor=True,
            )
            for line in lines
            if line.accepted > 0
        ]
        await accrual_store.insert_accruals(uow.session, accruals, self._clock())
        return len(accruals)

    async def record_fee(self, command: RecordFee) -> Accrual:
        """Book a promotion or slotting fee against a contract, as a negative FEE accrual."""
        if command.fee_kind not in FEE_KINDS:
            raise InvalidFee(f"fee_kind is one of {', '.join(FEE_KINDS)}", details={"field": "fee_kind"})
        if check_amount(command.amount_fen, field_name="amount") == 0:
            raise InvalidFee("a fee is more than 0 fen", details={"field": "amount"})
        description = command.description.strip()
        if len(description) > MAX_DESCRIPTION:
            raise InvalidFee(f"a description is at most {MAX_DESCRIPTION} characters", details={"field": "description"})
        async with self._unit_of_work() as uow:
            session = uow.session
            if (first := await replay(session, command.request, self._fee_codec)) is not None:
                return first
            supplier_id = await accrual_store.contract_supplier(session, command.contract_id)
            if supplier_id is None or (command.supplier_scope is not None and supplier_id != command.supplier_scope):
                raise UnknownContract("no such contract", details={"contract_id": command.contract_id})
            if command.supplier_scope is not None:
                raise StatementsAreHeadquarters("fees are booked by headquarters")
            accrual = Accrual(
                source_id=f"fee:{uuid.uuid4().hex}",
                supplier_id=supplier_id,
                contract_id=command.contract_id,
                kind=AccrualKind.FEE,
                occurred_on=command.occurred_on,
                amount_fen=-command.amount_fen,
            )
            await accrual_store.insert_accruals(
                session, [accrual], self._clock(), description=f"{command.fee_kind}: {description}".rstrip(": ")
            )
            await keep_reply(session, command.request, self._fee_codec, accrual)
            await uow.commit()
        return accrual
