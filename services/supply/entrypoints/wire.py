"""Protobuf ↔ supply's domain: requests to commands, stored objects to messages (``map_*`` functions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from google.protobuf.message import Message
from retail.common.v1 import identifiers_pb2, money_pb2
from retail.supply.v1 import supply_service_pb2 as pb

from servicekit.errors import InvalidArgument
from servicekit.idempotency import Reply, ReplyCodec
from servicekit.protowire import from_wire, optional, timestamp
from services.supply.adapters.integration_events import CURRENCY, PO_STATUSES, map_receipt, money, wire_decimal
from services.supply.adapters.purchase_store import PoLine, StoredPurchaseOrder, StoredSuggestion
from services.supply.adapters.supplier_store import StoredContract, StoredSupplier
from services.supply.domain.contracts import MAX_FEN, Contract, SettlementMode
from services.supply.domain.purchase_orders import PoStatus
from services.supply.domain.settlement import CycleKind, QualityBand, RateTier, SettlementCycle
from services.supply.domain.suppliers import Actor, Supplier
from services.supply.domain.terms import ContractTerms, ItemTerms
from services.supply.service_layer.purchase_orders import WantedLine
from services.supply.service_layer.receiving import (
    InvoicedLine,
    InvoiceOutcome,
    ReceiptOutcome,
    ReceivedLine,
    ReturnedLine,
)
from services.supply.service_layer.scorecards import SupplierScorecard

MessageT = TypeVar("MessageT", bound=Message)
T = TypeVar("T")

MODES = {
    pb.SETTLEMENT_MODE_PURCHASE: SettlementMode.PURCHASE,
    pb.SETTLEMENT_MODE_CONSIGNMENT: SettlementMode.CONSIGNMENT,
    pb.SETTLEMENT_MODE_CONCESSION: SettlementMode.CONCESSION,
}
MODES_TO_WIRE = {mode: number for number, mode in MODES.items()}


def reply(message_type: type[MessageT], render: Callable[[T], MessageT]) -> Reply[T, MessageT]:
    """A command's answer kept as its RPC's response, serialised deterministically."""
    codec: ReplyCodec[MessageT] = ReplyCodec(
        encode=lambda message: message.SerializeToString(deterministic=True), decode=message_type.FromString
    )
    return Reply(codec, render)


def map_actor(message: identifiers_pb2.Actor) -> Actor:
    return Actor(
        client_id=message.client_id[:200],
        kind=from_wire(identifiers_pb2.ClientKind, "CLIENT_KIND", message.client_kind),
        role=from_wire(identifiers_pb2.StaffRole, "STAFF_ROLE", message.staff_role),
        store_id=message.store_id,
        supplier_id=message.supplier_id,
    )


# ---- scalars -------------------------------------------------------------------------------------------------------


def map_decimal(message: money_pb2.Decimal, field: str, *, default: Decimal | None = None) -> Decimal:
    if not message.value:
        if default is None:
            raise InvalidArgument(f"{field} is required", details={"field": field})
        return default
    try:
        value = Decimal(message.value)
    except InvalidOperation:
        raise InvalidArgument(f"{field} is not a decimal", details={"field": field}) from None
    if not value.is_finite():
        raise InvalidArgument(f"{field} is not a finite decimal", details={"field": field})
    return value


def map_fen(message: money_pb2.Money, field: str) -> int:
    if message.currency_code and message.currency_code != CURRENCY:
        raise InvalidArgument(
            f"{field} is in {message.currency_code}, expected {CURRENCY}",
            reason="currency-mismatch",
            details={"field": field},
        )
    value = message.minor_units
    if not 0 <= value <= MAX_FEN:
        raise InvalidArgument(f"{field} is 0 to {MAX_FEN} fen", details={"field": field})
    return int(value)


def map_date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"{field} is a date YYYY-MM-DD", details={"field": field}) from None


def map_optional_date(text: str, field: str) -> date | None:
    return map_date(text, field) if text else None


def date_text(day: date | None) -> str:
    return day.isoformat() if day else ""


# ---- suppliers and contracts ---------------------------------------------------------------------------------------


def map_supplier_request(message: pb.Supplier) -> Supplier:
    return Supplier(
        supplier_id=message.supplier_id,
        code=message.code.strip(),
        name=message.name.strip(),
        payment_terms_days=message.payment_terms_days,
        active=message.active,
    )


def map_supplier(stored: StoredSupplier) -> pb.Supplier:
    supplier = stored.supplier
    return pb.Supplier(
        supplier_id=supplier.supplier_id,
        code=supplier.code,
        name=supplier.name,
        payment_terms_days=supplier.payment_terms_days,
        active=supplier.active,
        version=stored.version,
    )


def map_contract_request(message: pb.Contract) -> ContractTerms:
    if message.mode not in MODES:
        raise InvalidArgument("mode is purchase, consignment or concession", details={"field": "mode"})
    mode = MODES[message.mode]
    if not message.items:
        raise InvalidArgument("a contract covers at least one SKU", details={"field": "items"})
    skus = [item.sku for item in message.items]
    if len(set(skus)) != len(skus) or not all(skus):
        raise InvalidArgument("each item names a SKU, once", details={"field": "items"})
    costs = {}
    if mode is not SettlementMode.CONCESSION:
        costs = {
            item.sku: map_fen(item.unit_cost, "items.unit_cost") for item in message.items if item.HasField("unit_cost")
        }
    cycle = SettlementCycle()
    if message.cycle == CycleKind.DAYS.value:
        cycle = SettlementCycle(CycleKind.DAYS, message.cycle_days, map_date(message.cycle_anchor, "cycle_anchor"))
    elif message.cycle not in ("", CycleKind.MONTHLY.value):
        raise InvalidArgument("cycle is monthly or days", details={"field": "cycle"})
    contract = Contract(
        contract_id="new",
        supplier_id=message.supplier_id,
        mode=mode,
        valid_from=map_date(message.valid_from, "valid_from"),
        valid_until=map_optional_date(message.valid_until, "valid_until"),
        skus=frozenset(skus),
        unit_cost_fen=costs,
        commission_rate=(
            map_decimal(message.commission_rate, "commission_rate") if message.commission_rate.value else None
        ),
        store_commission_rates={
            store: map_decimal(rate, "store_commission_rates") for store, rate in message.store_commission_rates.items()
        },
        allows_direct_delivery=message.allows_direct_delivery,
        rejects_billed=message.rejects_billed,
    )
    return ContractTerms(
        contract=contract,
        items={
            item.sku: ItemTerms(
                map_decimal(item.pack_size, "items.pack_size", default=Decimal(1)),
                map_decimal(item.minimum_order, "items.minimum_order", default=Decimal(0)),
            )
            for item in message.items
        },
        over_delivery_allowance=map_decimal(
            message.over_delivery_allowance, "over_delivery_allowance", default=Decimal(0)
        ),
        price_tolerance=map_decimal(message.price_tolerance, "price_tolerance", default=Decimal(0)),
        cycle=cycle,
        rebate_tiers=tuple(
            RateTier(map_fen(tier.threshold, "rebate_tiers.threshold"), map_decimal(tier.rate, "rebate_tiers.rate"))
            for tier in message.rebate_tiers
        ),
        quality_bands=tuple(
            QualityBand(
                map_decimal(band.score_below, "quality_bands.score_below"),
                map_decimal(band.rate, "quality_bands.rate"),
            )
            for band in message.quality_bands
        ),
    )


def map_contract(stored: StoredContract) -> pb.Contract:
    terms = stored.terms
    contract = terms.contract
    message = pb.Contract(
        contract_id=contract.contract_id,
        supplier_id=contract.supplier_id,
        mode=MODES_TO_WIRE[contract.mode],
        valid_from=contract.valid_from.isoformat(),
        valid_until=date_text(contract.valid_until),
        items=[
            pb.ContractItem(
                sku=sku,
                unit_cost=money(contract.unit_cost_fen[sku]) if sku in contract.unit_cost_fen else None,
                pack_size=wire_decimal(terms.item(sku).pack_size),
                minimum_order=wire_decimal(terms.item(sku).minimum_order),
            )
            for sku in sorted(contract.skus)
        ],
        store_commission_rates={store: wire_decimal(rate) for store, rate in contract.store_commission_rates.items()},
        allows_direct_delivery=contract.allows_direct_delivery,
        rejects_billed=contract.rejects_billed,
        over_delivery_allowance=wire_decimal(terms.over_delivery_allowance),
        price_tolerance=wire_decimal(terms.price_tolerance),
        cycle=terms.cycle.kind.value,
        rebate_tiers=[
            pb.RebateTier(threshold=money(tier.threshold_fen), rate=wire_decimal(tier.rate))
            for tier in terms.rebate_tiers
        ],
        quality_bands=[
            pb.QualityBand(score_below=wire_decimal(band.score_below), rate=wire_decimal(band.rate))
            for band in terms.quality_bands
        ],
        created_at=timestamp(stored.created_at),
        commission_rate=optional(wire_decimal, contract.commission_rate),
    )
    if terms.cycle.kind is CycleKind.DAYS:
        message.cycle_days = terms.cycle.days
        message.cycle_anchor = terms.cycle.anchor.isoformat()
    return message


# ---- purchase orders -----------------------------------------------------------------------------------------------

PO_STATUSES_FROM_WIRE: dict[int, PoStatus] = {int(number): status for status, number in PO_STATUSES.items()}


def map_statuses(numbers: Sequence[int]) -> list[PoStatus]:
    try:
        return [PO_STATUSES_FROM_WIRE[number] for number in numbers]
    except KeyError:
        raise InvalidArgument("statuses names a purchase order status", details={"field": "statuses"}) from None


def map_wanted_lines(lines: Sequence[pb.PurchaseOrderLine]) -> tuple[WantedLine, ...]:
    return tuple(WantedLine(line.sku, map_decimal(line.ordered, "lines.ordered")) for line in lines)


def map_po_line(line: PoLine) -> pb.PurchaseOrderLine:
    return pb.PurchaseOrderLine(
        line_number=line.line_number,
        sku=line.sku,
        ordered=wire_decimal(line.ordered),
        unit_cost=money(line.unit_cost_fen),
        accepted=wire_decimal(line.accepted),
        rejected=wire_decimal(line.rejected),
        returned=wire_decimal(line.returned),
        confirmed=optional(wire_decimal, line.confirmed),
        suggested=optional(wire_decimal, line.suggested),
    )


def map_po(po: StoredPurchaseOrder) -> pb.PurchaseOrder:
    return pb.PurchaseOrder(
        po_id=po.po_id,
        supplier_id=po.supplier_id,
        location_id=po.location_id,
        status=PO_STATUSES[po.status],
        lines=[map_po_line(line) for line in po.lines],
        promised_date=date_text(po.promised_date),
        total=money(po.total_fen),
        suggestion_ids=list(po.suggestion_ids),
        created_by=po.created_by,
        approved_by=po.approved_by,
        created_at=timestamp(po.created_at),
        updated_at=timestamp(po.updated_at),
        version=po.version,
        supplier_note=po.supplier_note,
    )


def map_confirmed_lines(lines: Sequence[pb.ConfirmedLine]) -> dict[int, Decimal]:
    confirmed: dict[int, Decimal] = {}
    for line in lines:
        if line.line_number in confirmed:
            raise InvalidArgument("each line is confirmed once", details={"line_number": line.line_number})
        confirmed[line.line_number] = map_decimal(line.quantity, "lines.quantity")
    return confirmed


# ---- receipts, returns, invoices -----------------------------------------------------------------------------------


def map_received_lines(lines: Sequence[pb.ReceiptLine]) -> tuple[ReceivedLine, ...]:
    return tuple(
        ReceivedLine(
            po_line_number=line.po_line_number,
            sku=line.sku,
            accepted=map_decimal(line.accepted, "lines.accepted", default=Decimal(0)),
            rejected=map_decimal(line.rejected, "lines.rejected", default=Decimal(0)),
            reject_reason=line.reject_reason,
            lot=line.lot,
            expiry_date=map_optional_date(line.expiry_date, "lines.expiry_date"),
        )
        for line in lines
    )


def map_receipt_outcome(outcome: ReceiptOutcome) -> pb.RecordGoodsReceiptResponse:
    return pb.RecordGoodsReceiptResponse(
        receipt=map_receipt(outcome.receipt), purchase_order=optional(map_po, outcome.purchase_order)
    )


def map_returned_lines(lines: Sequence[pb.VendorReturnLine]) -> tuple[ReturnedLine, ...]:
    return tuple(
        ReturnedLine(line.po_line_number, map_decimal(line.quantity, "lines.quantity"), line.reason) for line in lines
    )


def map_invoiced_lines(lines: Sequence[pb.InvoiceLine]) -> tuple[InvoicedLine, ...]:
    return tuple(
        InvoicedLine(
            line.po_line_number, map_decimal(line.quantity, "lines.quantity"), map_fen(line.unit_cost, "unit_cost")
        )
        for line in lines
    )


def map_invoice_outcome(outcome: InvoiceOutcome) -> pb.RecordSupplierInvoiceResponse:
    return pb.RecordSupplierInvoiceResponse(
        invoice_id=outcome.invoice_id,
        lines=[
            pb.InvoiceLine(
                po_line_number=line.po_line_number,
                quantity=wire_decimal(line.quantity),
                unit_cost=money(line.unit_cost_fen),
                match_result=line.match_result,
                expected=money(line.expected_fen),
            )
            for line in outcome.lines
        ],
        matched=outcome.matched,
    )


def map_scorecard(found: SupplierScorecard) -> pb.Scorecard:
    card = found.scorecard
    return pb.Scorecard(
        supplier_id=found.supplier_id,
        from_date=found.first.isoformat(),
        to_date=found.last.isoformat(),
        lines_due=card.lines_due,
        otif=optional(wire_decimal, card.otif),
        fill_rate=optional(wire_decimal, card.fill_rate),
        reject_rate=optional(wire_decimal, card.reject_rate),
        quality_score=optional(wire_decimal, card.quality_score),
        promised_lead_days=optional(wire_decimal, card.promised_lead_days),
        actual_lead_days=optional(wire_decimal, card.actual_lead_days),
        invoice_match_rate=optional(wire_decimal, card.invoice_match_rate),
    )


def map_unplaced(stored: StoredSuggestion) -> pb.UnplacedSuggestion:
    suggestion = stored.suggestion
    return pb.UnplacedSuggestion(
        suggestion_id=suggestion.suggestion_id,
        location_id=suggestion.location_id,
        sku=suggestion.sku,
        supplier_id=suggestion.supplier_id or "",
        suggested=wire_decimal(suggestion.suggested),
        reason=stored.reason,
        business_day=suggestion.business_day.isoformat(),
        recorded_at=timestamp(stored.recorded_at),
    )
