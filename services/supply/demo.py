"""The supply service's part of the demo retailer: its suppliers on all three settlement modes,
one contract each, last month's deliveries and sales settled into one issued statement per
supplier, and a few open purchase orders.

Suppliers are the ones the demo catalogue names (``SUP001``…, the ``supplier_id`` pricing's
``ItemChanged`` carries, so supply's catalogue maps every SKU to one of them). Each gets one
open-ended contract from the first day of the demo history covering exactly the SKUs the
catalogue gives it. Modes (:func:`contract_modes`): the demo's buy-sell suppliers stay 经销
(purchase); its consignment suppliers alternate 代销 (consignment, the SKU's cost per unit sold)
and 联营 (concession, revenue less the demo commission rate, a higher rate at the first store);
with three or more suppliers every mode is there.

Everything goes through supply's own application services (:func:`services.supply.bootstrap.
wire`), each command with a fixed request id, so loading twice is answered by what the first
load did and creates nothing (and a load interrupted half way is finished by the next):

* last month, the purchase supplier's order at the first store, sent, confirmed and delivered
  in full, and accrued as the SUPPLY stream's consumer accrues it (which then finds it done);
* last month's demo sales, as the SALES journal carries them, through settlement's journal
  handler (:meth:`~services.supply.service_layer.accruals.Accruals.apply_journal_entry`, a
  sale recognised by its id, so a second load adds nothing): the consignment and concession
  SKUs' lines accrue, every line adds to the store × SKU × day sales the portal shows. The
  history's sales never went through the journal (the other services import them), so this
  stands in for it, as marketing's loader does for its coupon uses;
* last month's statement run, and each supplier's one statement issued (headquarters);
* open orders now: the portal supplier's (the first, whose user the gateway's demo credentials
  name) sent and waiting for its confirmation in the portal, and another confirmed and received
  partly with a quality reject (so its scorecard shows a fill and a reject rate), and the
  purchase supplier's draft.

Inventory's periodic replenishment run publishes ``ReplenishmentSuggested`` one interval (an
hour by default) after the stack starts, not during the demo load; from then on the running
service drafts orders from those suggestions, the suppliers and contracts being there.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from retail.supply.v1 import supply_service_pb2 as pb

from demodata import CHINA_STANDARD_TIME, DemoRetailer
from demodata.model import Sale, Sku
from demodata.model import SettlementMode as DemoMode
from demodata.model import Supplier as DemoSupplier
from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.idempotency import Reply, RequestFingerprint
from servicekit.settings import Environment, load_settings
from services.supply.adapters.purchase_store import StoredPurchaseOrder
from services.supply.bootstrap import SupplyServices, wire
from services.supply.domain.contracts import Contract, SettlementMode
from services.supply.domain.purchase_orders import PoStatus
from services.supply.domain.settlement import RateTier
from services.supply.domain.statements import StatementAction, StatementNotFound, StatementStatus, statement_id
from services.supply.domain.suppliers import Actor, Supplier
from services.supply.domain.terms import ContractTerms, ItemTerms
from services.supply.entrypoints.wire import map_contract, map_po, map_receipt_outcome, map_supplier, reply
from services.supply.service_layer.accruals import JournalEntry, JournalLine
from services.supply.service_layer.purchase_orders import (
    ConfirmPurchaseOrder,
    CreatePurchaseOrder,
    MovePurchaseOrder,
    WantedLine,
)
from services.supply.service_layer.receiving import ReceivedLine, RecordGoodsReceipt
from services.supply.service_layer.statements import MoveStatement, RunStatements
from services.supply.service_layer.suppliers import CreateContract, UpsertSupplier
from services.supply.settings import SupplySettings

BUYER = Actor(client_id="demo-buyer", kind="staff", role="headquarters")
LINES_PER_ORDER = 3
PACK_SIZE = Decimal(6)
WEIGHED_MINIMUM = Decimal(5)
OVER_DELIVERY_ALLOWANCE = Decimal("0.05")
PRICE_TOLERANCE = Decimal("0.02")
FIRST_STORE_SURCHARGE = Decimal("0.02")  # the flagship store's concession commission is this much higher
REBATE = RateTier(threshold_fen=500_000, rate=Decimal("0.02"))  # 2% back from 5,000 yuan bought a month
REJECT_REASON = "damaged packaging"
_CHUNK = 500  # journal entries per transaction
_MODES = {DemoMode.PURCHASE: SettlementMode.PURCHASE}


def fen(amount: Decimal) -> int:
    """The demo's yuan amounts (two places at most) as whole fen."""
    value = amount * 100
    if value != value.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of fen")
    return int(value)


def _request(label: str) -> RequestFingerprint:
    """A fixed request id per demo command, so a repeated load is answered by the first one."""
    request_id = f"supply-demo:{label}"
    return RequestFingerprint(request_id, "demo", hashlib.sha256(request_id.encode()).digest())


class _Clock:
    """The loader's clock: now, or a moment of last month while it records last month's delivery."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def contract_modes(suppliers: Sequence[DemoSupplier]) -> dict[str, SettlementMode]:
    """Each demo supplier's settlement mode: buy-sell stays purchase, consignment alternates
    consignment and concession; with three or more suppliers, a mode still missing is taken by
    the last supplier of the most common one."""
    modes: dict[str, SettlementMode] = {}
    consignments = 0
    for supplier in suppliers:
        if supplier.settlement_mode in _MODES:
            modes[supplier.supplier_id] = _MODES[supplier.settlement_mode]
        else:
            modes[supplier.supplier_id] = (SettlementMode.CONSIGNMENT, SettlementMode.CONCESSION)[consignments % 2]
            consignments += 1
    if len(modes) >= len(SettlementMode):
        for missing in [mode for mode in SettlementMode if mode not in modes.values()]:
            counts = {mode: list(modes.values()).count(mode) for mode in SettlementMode}
            common = max(SettlementMode, key=lambda mode: counts[mode])
            last = [supplier_id for supplier_id, mode in modes.items() if mode is common][-1]
            modes[last] = missing
    return modes


def last_month(now: datetime) -> tuple[date, date]:
    """The first and last business day of the calendar month before ``now`` (China Standard Time)."""
    first_of_this_month = now.astimezone(CHINA_STANDARD_TIME).date().replace(day=1)
    last = first_of_this_month - timedelta(days=1)
    return last.replace(day=1), last


def _contract(retailer: DemoRetailer, supplier: DemoSupplier, mode: SettlementMode) -> ContractTerms:
    skus = [retailer.sku(code) for code in supplier.sku_codes]
    commission = supplier.commission_rate or Decimal("0.18")
    first_store = retailer.stores[0].location_id
    concession = mode is SettlementMode.CONCESSION
    contract = Contract(
        contract_id="new",
        supplier_id=supplier.supplier_id,
        mode=mode,
        valid_from=retailer.history_start,
        valid_until=None,
        skus=frozenset(sku.sku_code for sku in skus),
        unit_cost_fen={} if concession else {sku.sku_code: fen(sku.cost_price) for sku in skus},
        commission_rate=commission if concession else None,
        store_commission_rates={first_store: commission + FIRST_STORE_SURCHARGE} if concession else {},
    )
    return ContractTerms(
        contract=contract,
        items={} if concession else {sku.sku_code: _item_terms(sku) for sku in skus},
        over_delivery_allowance=OVER_DELIVERY_ALLOWANCE,
        price_tolerance=PRICE_TOLERANCE,
        rebate_tiers=(REBATE,) if mode is SettlementMode.PURCHASE else (),
    )


def _item_terms(sku: Sku) -> ItemTerms:
    # Loose goods by the kilogram, at least a crate; packaged goods by the case of six.
    if sku.sold_by_weight:
        return ItemTerms(pack_size=Decimal(1), minimum_order=WEIGHED_MINIMUM)
    return ItemTerms(pack_size=PACK_SIZE)


async def load_demo(
    database_url: str,
    retailer: DemoRetailer,
    state_dir: Path | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Load supply's part of the demo retailer; idempotent."""
    settings = load_settings(
        SupplySettings,
        app_env=os.environ.get("APP_ENV", Environment.LOCAL.value),
        database_url=database_url,
        nats_url=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
    )
    now = clock()
    demo_clock = _Clock(now)
    engine = create_engine(database_url, pool_size=2, max_overflow=0, application_name="demo-loader")
    unit_of_work = units_of_work(engine)
    services = wire(settings, unit_of_work, clock=demo_clock)
    try:
        modes = contract_modes(retailer.suppliers)
        contracts = await _load_suppliers(services, retailer, modes)
        delivered = await _last_months_delivery(services, retailer, modes, demo_clock, now)
        demo_clock.now = now
        statements = await _settle_last_month(services, unit_of_work, retailer, contracts, delivered, now)
        orders = await _open_orders(services, retailer, modes, now)
        card = await services.scorecards.of(BUYER, orders["portal_supplier"], None, None)
    finally:
        await engine.dispose()
    portal_supplier = orders["portal_supplier"]
    portal_user = next(c.client_id for c in retailer.clients if c.supplier_id == portal_supplier)
    return {
        "suppliers": {supplier_id: mode.value for supplier_id, mode in modes.items()},
        "contracts": contracts,
        "last_month_delivery": delivered,
        "issued_statements": statements,
        "open_purchase_orders": orders["open"],
        "scorecard": {
            "supplier_id": card.supplier_id,
            "fill_rate": str(card.scorecard.fill_rate),
            "reject_rate": str(card.scorecard.reject_rate),
        },
        "portal": {
            "client_id": portal_user,
            "supplier_id": portal_supplier,
            "note": "its secret is the gateway's supplier_user credential; it confirms the sent order",
        },
    }


async def _load_suppliers(
    services: SupplyServices, retailer: DemoRetailer, modes: dict[str, SettlementMode]
) -> dict[str, str]:
    """Every demo supplier and its one contract; returns supplier → contract id."""
    contracts: dict[str, str] = {}
    for supplier in retailer.suppliers:
        supplier_id = supplier.supplier_id
        await services.suppliers.upsert(
            UpsertSupplier(
                _request(f"supplier-{supplier_id}"),
                Supplier(supplier_id, supplier_id, supplier.name, supplier.payment_terms_days),
                expected_version=0,
            ),
            reply(pb.UpsertSupplierResponse, lambda s: pb.UpsertSupplierResponse(supplier=map_supplier(s))),
        )
        answer = await services.suppliers.create_contract(
            CreateContract(
                _request(f"contract-{supplier_id}"),
                _contract(retailer, supplier, modes[supplier_id]),
                BUYER.client_id,
            ),
            reply(pb.CreateContractResponse, lambda c: pb.CreateContractResponse(contract=map_contract(c))),
        )
        contracts[supplier_id] = answer.contract.contract_id
    return contracts


def _order_skus(retailer: DemoRetailer, supplier_id: str, offset: int = 0) -> list[Sku]:
    """A few of the supplier's packaged SKUs, in catalogue order."""
    packaged = [retailer.sku(code) for code in retailer.supplier(supplier_id).sku_codes]
    packaged = [sku for sku in packaged if not sku.sold_by_weight] or packaged
    chosen = packaged[offset : offset + LINES_PER_ORDER]
    return chosen or packaged[:LINES_PER_ORDER]


def _first(modes: dict[str, SettlementMode], mode: SettlementMode) -> str:
    return next(supplier_id for supplier_id, its in modes.items() if its is mode)


def _supplier_user(supplier_id: str) -> Actor:
    return Actor(client_id=f"{supplier_id}-USER01", kind="supplier_user", role="", supplier_id=supplier_id)


def _manager(store_id: str) -> Actor:
    return Actor(client_id=f"{store_id}-MGR01", kind="staff", role="store_manager", store_id=store_id)


async def _order(
    services: SupplyServices,
    label: str,
    supplier_id: str,
    location_id: str,
    skus: Sequence[Sku],
    promised: date,
    *,
    until: PoStatus,
) -> pb.PurchaseOrder:
    """A manual order (36 of the first SKU, 24 of the next, 12 of the rest), carried to ``until``
    (draft, sent or confirmed, by the buyer and then the supplier's portal user)."""
    po_reply: Reply[StoredPurchaseOrder, pb.GetPurchaseOrderResponse] = reply(
        pb.GetPurchaseOrderResponse, lambda po: pb.GetPurchaseOrderResponse(purchase_order=map_po(po))
    )
    quantities = (Decimal(36), Decimal(24))
    wanted = tuple(
        WantedLine(sku.sku_code, quantities[number] if number < len(quantities) else Decimal(12))
        for number, sku in enumerate(skus)
    )
    answer = await services.purchase_orders.create(
        CreatePurchaseOrder(_request(f"{label}-create"), BUYER, supplier_id, location_id, wanted, promised), po_reply
    )
    po_id = answer.purchase_order.po_id
    steps = [PoStatus.APPROVED, PoStatus.SENT]
    for step in steps[: [PoStatus.DRAFT, *steps, PoStatus.CONFIRMED].index(until)]:
        answer = await services.purchase_orders.move(
            MovePurchaseOrder(_request(f"{label}-{step.value}"), BUYER, po_id, step), po_reply
        )
    if until is PoStatus.CONFIRMED:
        answer = await services.purchase_orders.confirm(
            ConfirmPurchaseOrder(
                _request(f"{label}-confirm"), _supplier_user(supplier_id), po_id, {}, promised, "will deliver"
            ),
            po_reply,
        )
    return answer.purchase_order


async def _receive(
    services: SupplyServices,
    label: str,
    po: pb.PurchaseOrder,
    lines: Sequence[ReceivedLine],
    received_at: datetime,
) -> pb.RecordGoodsReceiptResponse:
    return await services.receiving.record_receipt(
        RecordGoodsReceipt(
            _request(f"{label}-receipt"),
            _manager(po.location_id),
            po.po_id,
            po.supplier_id,
            po.location_id,
            tuple(lines),
            received_at,
        ),
        reply(pb.RecordGoodsReceiptResponse, map_receipt_outcome),
    )


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=CHINA_STANDARD_TIME)


async def _last_months_delivery(
    services: SupplyServices,
    retailer: DemoRetailer,
    modes: dict[str, SettlementMode],
    demo_clock: _Clock,
    now: datetime,
) -> dict[str, Any]:
    """The purchase supplier's order of last month at the first store, delivered in full."""
    first, _ = last_month(now)
    supplier_id = _first(modes, SettlementMode.PURCHASE)
    store_id = retailer.stores[0].location_id
    delivery_day = first + timedelta(days=5)
    demo_clock.now = _at(first + timedelta(days=2), 9)
    po = await _order(
        services,
        "last-month",
        supplier_id,
        store_id,
        _order_skus(retailer, supplier_id),
        delivery_day,
        until=PoStatus.CONFIRMED,
    )
    arrived = _at(delivery_day, 10)
    demo_clock.now = arrived
    lines = [ReceivedLine(line.line_number, line.sku, Decimal(line.ordered.value), Decimal(0)) for line in po.lines]
    received = await _receive(services, "last-month", po, lines, arrived)
    return {
        "po_id": po.po_id,
        "supplier_id": supplier_id,
        "receipt_id": received.receipt.receipt_id,
        "received_at": arrived.isoformat(),
    }


async def _open_orders(
    services: SupplyServices, retailer: DemoRetailer, modes: dict[str, SettlementMode], now: datetime
) -> dict[str, Any]:
    """Orders open now. The portal's supplier (the first: the gateway's demo credential is its
    user's) gets one sent for its confirmation and one received partly with a quality reject;
    the purchase supplier gets a draft."""
    today = now.astimezone(CHINA_STANDARD_TIME).date()
    stores = [location.location_id for location in retailer.stores]
    portal = retailer.suppliers[0].supplier_id
    if modes[portal] is SettlementMode.CONCESSION:  # a concession's goods are not ordered at a cost
        portal = _first(modes, SettlementMode.CONSIGNMENT)
    purchaser = _first(modes, SettlementMode.PURCHASE)
    sent = await _order(
        services,
        "sent",
        portal,
        stores[0],
        _order_skus(retailer, portal),
        today + timedelta(days=3),
        until=PoStatus.SENT,
    )
    confirmed = await _order(
        services,
        "partly-received",
        portal,
        stores[1 % len(stores)],
        _order_skus(retailer, portal, offset=LINES_PER_ORDER),
        today,
        until=PoStatus.CONFIRMED,
    )
    # The first line arrives with two units rejected, the second half of it, the rest not yet.
    first_line, *others = confirmed.lines
    lines = [
        ReceivedLine(
            first_line.line_number, first_line.sku, Decimal(first_line.ordered.value) - 2, Decimal(2), REJECT_REASON
        )
    ]
    lines += [
        ReceivedLine(line.line_number, line.sku, Decimal(line.ordered.value) / 2, Decimal(0)) for line in others[:1]
    ]
    await _receive(services, "partly-received", confirmed, lines, now - timedelta(hours=1))
    draft = await _order(
        services,
        "draft",
        purchaser,
        stores[-1],
        _order_skus(retailer, purchaser, offset=LINES_PER_ORDER),
        today + timedelta(days=5),
        until=PoStatus.DRAFT,
    )
    opened = []
    for po_id in (sent.po_id, confirmed.po_id, draft.po_id):
        po = await services.purchase_orders.get(BUYER, po_id)
        opened.append(
            {"po_id": po_id, "supplier_id": po.supplier_id, "location_id": po.location_id, "status": po.status.value}
        )
    return {"portal_supplier": portal, "open": opened}


async def _settle_last_month(
    services: SupplyServices,
    unit_of_work: Callable[[], UnitOfWork],
    retailer: DemoRetailer,
    contracts: dict[str, str],
    delivered: dict[str, Any],
    now: datetime,
) -> list[dict[str, Any]]:
    """Last month's receipt and sales accrued, its statements run and each issued; the statements."""
    first, last = last_month(now)
    wanted = {supplier_id: statement_id(contract_id, first) for supplier_id, contract_id in contracts.items()}
    if not await _all_issued(services, wanted.values()):
        await _accrue_last_month(services, unit_of_work, retailer, delivered, first, last)
        await services.statements.run(RunStatements(_request(f"statements-{first:%Y%m}"), period_date=first))
    issued = []
    for supplier_id, wanted_id in wanted.items():
        row = await services.statements.move(
            MoveStatement(_request(f"issue-{wanted_id}"), wanted_id, StatementAction.ISSUE, BUYER.client_id)
        )
        issued.append(
            {
                "statement_id": row.statement_id,
                "supplier_id": supplier_id,
                "mode": row.mode.value,
                "period": f"{row.period_start.isoformat()}..{row.period_end.isoformat()}",
                "status": row.status.value,
                "total_fen": row.total_fen,
                "lines": row.line_count,
            }
        )
    return issued


async def _all_issued(services: SupplyServices, statement_ids: Iterable[str]) -> bool:
    """Whether every one of these statements is issued already (a second load then skips the month)."""
    for wanted in statement_ids:
        try:
            page = await services.statements.get(wanted, supplier_scope=None, limit=1)
        except StatementNotFound:
            return False
        if page.statement.status is StatementStatus.DRAFT:
            return False
    return True


async def _accrue_last_month(
    services: SupplyServices,
    unit_of_work: Callable[[], UnitOfWork],
    retailer: DemoRetailer,
    delivered: dict[str, Any],
    first: date,
    last: date,
) -> None:
    async with unit_of_work() as uow:  # what the SUPPLY stream's consumer does (it finds it done)
        await services.accruals.apply_goods_received(
            uow, delivered["receipt_id"], datetime.fromisoformat(delivered["received_at"])
        )
        await uow.commit()
    await _journal(services, unit_of_work, retailer.iter_sales(first, last))


async def _journal(services: SupplyServices, unit_of_work: Callable[[], UnitOfWork], sales: Iterable[Sale]) -> int:
    """The sales as the SALES journal carries them, through settlement's journal handler, a chunk
    per transaction (an entry applied before is recognised by its sale id and changes nothing)."""
    applied = 0
    chunk: list[JournalEntry] = []

    async def flush() -> None:
        async with unit_of_work() as uow:
            for entry in chunk:
                await services.accruals.apply_journal_entry(uow, entry)
            await uow.commit()
        chunk.clear()

    for sale in sales:
        lines = tuple(
            JournalLine(number, line.sku_code, line.quantity, fen(line.net_amount))
            for number, line in enumerate(sale.lines, start=1)
        )
        chunk.append(JournalEntry(sale.sale_id, False, sale.location_id, sale.occurred_at, lines))
        applied += 1
        if len(chunk) >= _CHUNK:
            await flush()
    if chunk:
        await flush()
    return applied
