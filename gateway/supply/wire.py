"""Supply HTTP ↔ protobuf (retail.supply.v1), named ``map_*`` functions, and the sell-through join."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import money_pb2
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.supply.v1 import supply_service_pb2 as pb

from gateway.http.money import yuan_text
from gateway.supply.order_schemas import (
    GoodsReceiptIn,
    GoodsReceiptOut,
    InvoiceIn,
    InvoiceLineOut,
    InvoiceOut,
    OrderLineIn,
    OrderLineOut,
    PurchaseOrderOut,
    ReceiptLineOut,
)
from gateway.supply.schemas import Amount
from gateway.supply.statement_schemas import SettlementCheckOut, SettlementProblemOut, StatementLineOut, StatementOut
from gateway.supply.supplier_schemas import (
    ContractIn,
    ContractItemOut,
    ContractOut,
    QualityBandOut,
    RebateTierOut,
    ScorecardOut,
    SellThroughOut,
    SellThroughRow,
    SupplierOut,
)
from servicekit.protowire import from_wire, moment, optional, timestamp, to_wire

CURRENCY = "CNY"


def fen(amount: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code=CURRENCY, minor_units=amount)


def amount(money: money_pb2.Money) -> Amount:
    """Whole fen and the same as yuan (exact: fen have no further decimals)."""
    return Amount(fen=money.minor_units, yuan=yuan_text(money.minor_units))


def optional_amount(message: Any, field: str) -> Amount | None:
    return amount(getattr(message, field)) if message.HasField(field) else None


def decimal(value: str) -> money_pb2.Decimal:
    return money_pb2.Decimal(value=value)


def optional_decimal(message: Any, field: str) -> str | None:
    return getattr(message, field).value or None if message.HasField(field) else None


def _date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _moment(stamp: Timestamp, present: bool) -> Any:
    return moment(stamp) if present else None


def status_numbers(enum_type: Any, prefix: str, names: Iterable[str]) -> list[Any]:
    return [to_wire(enum_type, prefix, name) for name in names]


# -- suppliers and contracts --------------------------------------------------------------


def map_supplier(supplier: pb.Supplier) -> SupplierOut:
    return SupplierOut(
        supplier_id=supplier.supplier_id,
        code=supplier.code,
        name=supplier.name,
        payment_terms_days=supplier.payment_terms_days,
        active=supplier.active,
        version=supplier.version,
    )


def map_contract_in(supplier_id: str, body: ContractIn) -> pb.Contract:
    return pb.Contract(
        supplier_id=supplier_id,
        mode=to_wire(pb.SettlementMode, "SETTLEMENT_MODE", body.mode),
        valid_from=body.valid_from.isoformat(),
        valid_until=_day(body.valid_until),
        allows_direct_delivery=body.allows_direct_delivery,
        rejects_billed=body.rejects_billed,
        cycle=body.cycle,
        cycle_days=body.cycle_days or 0,
        cycle_anchor=_day(body.cycle_anchor),
        rebate_tiers=[pb.RebateTier(threshold=fen(t.threshold_fen), rate=decimal(t.rate)) for t in body.rebate_tiers],
        quality_bands=[
            pb.QualityBand(score_below=decimal(b.score_below), rate=decimal(b.rate)) for b in body.quality_bands
        ],
        items=[
            pb.ContractItem(
                sku=item.sku,
                unit_cost=optional(fen, item.unit_cost_fen),
                pack_size=optional(decimal, item.pack_size),
                minimum_order=optional(decimal, item.minimum_order),
            )
            for item in body.items
        ],
        store_commission_rates={store_id: decimal(rate) for store_id, rate in body.store_commission_rates.items()},
        commission_rate=optional(decimal, body.commission_rate),
        over_delivery_allowance=optional(decimal, body.over_delivery_allowance),
        price_tolerance=optional(decimal, body.price_tolerance),
    )


def map_contract(contract: pb.Contract) -> ContractOut:
    return ContractOut(
        contract_id=contract.contract_id,
        supplier_id=contract.supplier_id,
        mode=from_wire(pb.SettlementMode, "SETTLEMENT_MODE", contract.mode),
        valid_from=date.fromisoformat(contract.valid_from),
        valid_until=_date(contract.valid_until),
        items=[
            ContractItemOut(
                sku=item.sku,
                unit_cost=optional_amount(item, "unit_cost"),
                pack_size=optional_decimal(item, "pack_size") or "1",
                minimum_order=optional_decimal(item, "minimum_order") or "0",
            )
            for item in contract.items
        ],
        commission_rate=optional_decimal(contract, "commission_rate"),
        store_commission_rates={store: rate.value for store, rate in contract.store_commission_rates.items()},
        allows_direct_delivery=contract.allows_direct_delivery,
        rejects_billed=contract.rejects_billed,
        over_delivery_allowance=optional_decimal(contract, "over_delivery_allowance"),
        price_tolerance=optional_decimal(contract, "price_tolerance"),
        cycle=contract.cycle or "monthly",
        cycle_days=contract.cycle_days or None,
        cycle_anchor=_date(contract.cycle_anchor),
        rebate_tiers=[RebateTierOut(threshold=amount(t.threshold), rate=t.rate.value) for t in contract.rebate_tiers],
        quality_bands=[
            QualityBandOut(score_below=b.score_below.value, rate=b.rate.value) for b in contract.quality_bands
        ],
        created_at=_moment(contract.created_at, contract.HasField("created_at")),
    )


# -- purchase orders, receipts, invoices --------------------------------------------------


def map_order_lines(lines: Iterable[OrderLineIn]) -> list[pb.PurchaseOrderLine]:
    return [pb.PurchaseOrderLine(sku=line.sku, ordered=decimal(line.ordered)) for line in lines]


def map_order_line(line: pb.PurchaseOrderLine) -> OrderLineOut:
    return OrderLineOut(
        line_number=line.line_number,
        sku=line.sku,
        ordered=line.ordered.value,
        unit_cost=amount(line.unit_cost),
        confirmed=optional_decimal(line, "confirmed"),
        accepted=line.accepted.value or "0",
        rejected=line.rejected.value or "0",
        returned=line.returned.value or "0",
        suggested=optional_decimal(line, "suggested"),
    )


def map_purchase_order(order: pb.PurchaseOrder) -> PurchaseOrderOut:
    return PurchaseOrderOut(
        po_id=order.po_id,
        supplier_id=order.supplier_id,
        location_id=order.location_id,
        status=from_wire(pb.PurchaseOrderStatus, "PURCHASE_ORDER_STATUS", order.status),
        lines=[map_order_line(line) for line in order.lines],
        promised_date=_date(order.promised_date),
        total=amount(order.total),
        suggestion_ids=list(order.suggestion_ids),
        created_by=order.created_by,
        approved_by=order.approved_by or None,
        created_at=_moment(order.created_at, order.HasField("created_at")),
        updated_at=_moment(order.updated_at, order.HasField("updated_at")),
        version=order.version,
        supplier_note=order.supplier_note or None,
    )


def map_receipt_in(body: GoodsReceiptIn) -> dict[str, Any]:
    """The fields of a RecordGoodsReceiptRequest a body gives (request id and actor are the route's)."""
    fields: dict[str, Any] = {
        "po_id": body.po_id or "",
        "supplier_id": body.supplier_id or "",
        "location_id": body.location_id,
        "lines": [
            pb.ReceiptLine(
                po_line_number=line.po_line_number,
                sku=line.sku,
                accepted=decimal(line.accepted),
                rejected=decimal(line.rejected),
                reject_reason=line.reject_reason,
                lot=line.lot,
                expiry_date=_day(line.expiry_date),
            )
            for line in body.lines
        ],
    }
    if body.received_at is not None:
        fields["received_at"] = timestamp(body.received_at)
    return fields


def map_receipt(receipt: pb.GoodsReceipt) -> GoodsReceiptOut:
    return GoodsReceiptOut(
        receipt_id=receipt.receipt_id,
        po_id=receipt.po_id or None,
        supplier_id=receipt.supplier_id,
        location_id=receipt.location_id,
        lines=[
            ReceiptLineOut(
                po_line_number=line.po_line_number,
                sku=line.sku,
                accepted=line.accepted.value or "0",
                rejected=line.rejected.value or "0",
                reject_reason=line.reject_reason or None,
                lot=line.lot or None,
                expiry_date=_date(line.expiry_date),
            )
            for line in receipt.lines
        ],
        received_at=_moment(receipt.received_at, receipt.HasField("received_at")),
        received_by=receipt.received_by,
    )


def map_invoice_lines(body: InvoiceIn) -> list[pb.InvoiceLine]:
    return [
        pb.InvoiceLine(
            po_line_number=line.po_line_number, quantity=decimal(line.quantity), unit_cost=fen(line.unit_cost_fen)
        )
        for line in body.lines
    ]


def map_invoice(answer: pb.RecordSupplierInvoiceResponse) -> InvoiceOut:
    return InvoiceOut(
        invoice_id=answer.invoice_id,
        lines=[
            InvoiceLineOut(
                po_line_number=line.po_line_number,
                quantity=line.quantity.value,
                unit_cost=amount(line.unit_cost),
                match_result=line.match_result,
                expected=amount(line.expected),
            )
            for line in answer.lines
        ],
        matched=answer.matched,
    )


# -- statements ---------------------------------------------------------------------------


def map_statement(statement: pb.Statement) -> StatementOut:
    return StatementOut(
        statement_id=statement.statement_id,
        supplier_id=statement.supplier_id,
        contract_id=statement.contract_id,
        mode=from_wire(pb.SettlementMode, "SETTLEMENT_MODE", statement.mode),
        period_start=_date(statement.period_start),
        period_end=_date(statement.period_end),
        status=from_wire(pb.StatementStatus, "STATEMENT_STATUS", statement.status),
        total=amount(statement.total),
        line_count=statement.line_count,
        late_line_count=statement.late_line_count,
        issued_at=_moment(statement.issued_at, statement.HasField("issued_at")),
        payment_reference=statement.payment_reference or None,
        version=statement.version,
    )


def map_statement_line(line: pb.StatementLine) -> StatementLineOut:
    return StatementLineOut(
        source_id=line.source_id,
        kind=from_wire(pb.AccrualKind, "ACCRUAL_KIND", line.kind),
        occurred_on=_date(line.occurred_on),
        amount=amount(line.amount),
        sku=line.sku or None,
        store_id=line.store_id or None,
        quantity=optional_decimal(line, "quantity"),
        base=optional_amount(line, "base"),
        unit_cost=optional_amount(line, "unit_cost"),
        commission_rate=optional_decimal(line, "commission_rate"),
        reverses=line.reverses or None,
        late=line.late,
        dispute_comment=line.dispute_comment or None,
    )


def map_check(answer: pb.CheckSettlementResponse) -> SettlementCheckOut:
    return SettlementCheckOut(
        consistent=answer.consistent,
        accruals=answer.accruals,
        statements=answer.statements,
        open_accruals=answer.open_accruals,
        problems=[
            SettlementProblemOut(
                kind=problem.kind,
                statement_id=problem.statement_id or None,
                source_id=problem.source_id or None,
                detail=problem.detail,
            )
            for problem in answer.problems
        ],
    )


def map_scorecard(card: pb.Scorecard) -> ScorecardOut:
    return ScorecardOut(
        supplier_id=card.supplier_id,
        from_date=date.fromisoformat(card.from_date),
        to_date=date.fromisoformat(card.to_date),
        lines_due=card.lines_due,
        otif=optional_decimal(card, "otif"),
        fill_rate=optional_decimal(card, "fill_rate"),
        reject_rate=optional_decimal(card, "reject_rate"),
        quality_score=optional_decimal(card, "quality_score"),
        promised_lead_days=optional_decimal(card, "promised_lead_days"),
        actual_lead_days=optional_decimal(card, "actual_lead_days"),
        invoice_match_rate=optional_decimal(card, "invoice_match_rate"),
    )


# -- sell-through -------------------------------------------------------------------------


def _number(text: str) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros ("12", "0.5")."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def sell_through(
    supplier_id: str,
    sales: pb.GetSupplierSalesResponse,
    stock_by_store: dict[str, inventory_pb.GetStockKpisResponse],
) -> SellThroughOut:
    """Join supply's sales (per store × SKU, net of returns) with inventory's closing stock of the
    same SKUs per store over the same period: sell-through = sold ÷ (sold + stock), rounded half
    up to 4 decimals; days of cover = stock ÷ (sold ÷ days), to 1 decimal (none when nothing sold).
    A store × SKU with stock and no sale shows sold 0; one sold but no longer stocked shows stock 0."""
    first, last = date.fromisoformat(sales.from_date), date.fromisoformat(sales.to_date)
    days = (last - first).days + 1
    sold: dict[tuple[str, str], pb.StoreSkuSales] = {(row.store_id, row.sku): row for row in sales.sales}
    stock: dict[tuple[str, str], Decimal] = {
        (store_id, sku.sku): _number(sku.closing_stock.value)
        for store_id, answer in stock_by_store.items()
        for sku in answer.skus
    }
    rows = []
    for key in sorted(sold.keys() | stock.keys()):
        store_id, sku = key
        sale = sold.get(key)
        quantity = _number(sale.quantity.value) if sale else Decimal(0)
        on_hand = stock.get(key, Decimal(0))
        moved = quantity + max(on_hand, Decimal(0))
        rate = (quantity / moved).quantize(Decimal("0.0001"), ROUND_HALF_UP) if moved > 0 and quantity >= 0 else None
        cover = (
            (max(on_hand, Decimal(0)) * days / quantity).quantize(Decimal("0.1"), ROUND_HALF_UP)
            if quantity > 0
            else None
        )
        rows.append(
            SellThroughRow(
                store_id=store_id,
                sku=sku,
                sold=_plain(quantity),
                revenue=amount(sale.revenue) if sale else Amount(fen=0, yuan="0.00"),
                selling_days=sale.selling_days if sale else 0,
                stock=_plain(on_hand),
                sell_through=_plain(rate) if rate is not None else None,
                days_of_cover=str(cover) if cover is not None else None,
            )
        )
    return SellThroughOut(supplier_id=supplier_id, from_date=first, to_date=last, days=days, rows=rows)
