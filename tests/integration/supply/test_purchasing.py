"""Purchase orders from replenishment to receipt through the running service: drafts from events on
real JetStream (redelivered, and taken by two replicas at once, never two lines), the buyer's and the
supplier's transitions, receipts with quality rejects published once, the over-delivery allowance held
under concurrency, suppliers kept to their own orders, invoices matched three ways, and the scorecard."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest
from google.protobuf.message import Message
from retail.common.v1 import identifiers_pb2
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.supply.v1 import events_pb2 as supply_events
from retail.supply.v1 import supply_service_pb2 as pb
from retail.supply.v1 import supply_service_pb2_grpc as pb_grpc

from servicekit.consumer import EventConsumer
from servicekit.db import UnitOfWork
from servicekit.messaging import ensure_consumer
from servicekit.protowire import timestamp
from services.supply.adapters.purchase_store import Suggestion
from services.supply.bootstrap import SupplyApp
from services.supply.entrypoints.consumers import replenishment_consumer, replenishment_handlers
from tests.integration.supply.conftest import fetch
from tests.integration.supply.support import (
    HQ,
    add_supplier,
    cny,
    dec,
    eventually,
    manager,
    purchase_contract,
    reason,
    rid,
    supplier_user,
)
from tests.support.clock import HandClock
from tests.support.messaging import consumer_settled, jetstream, read_all

STORE = "S001"
OTHER_STORE = "S002"


async def setup_supplier(
    stub: pb_grpc.SupplyServiceAsyncStub, supplier_id: str = "SUPA", *, allowance: str = "0", direct: bool = False
) -> pb.Contract:
    await add_supplier(stub, supplier_id)
    answer = await stub.CreateContract(
        pb.CreateContractRequest(
            request_id=rid(),
            actor=HQ,
            contract=purchase_contract(
                supplier_id,
                {"SKU1": (350, "6", "12"), "SKU2": (120, "1", "0"), "SKU3": (1000, "0.5", "0")},
                allowance=allowance,
                tolerance="0.01",
                direct=direct,
            ),
        )
    )
    return answer.contract


def suggestion_event(
    suggestion_id: str, sku: str, quantity: str, *, supplier_id: str = "SUPA", location: str = STORE
) -> inventory_events.ReplenishmentSuggested:
    return inventory_events.ReplenishmentSuggested(
        suggestion_id=suggestion_id,
        location_id=location,
        suggestion=inventory_pb.ReplenishmentSuggestion(
            sku=sku,
            supplier_id=supplier_id,
            as_of_date="2026-12-01",
            suggested_quantity=dec(quantity),
            reorder_due=True,
        ),
        occurred_at=timestamp(datetime(2026, 12, 1, 1, 0, tzinfo=UTC)),
    )


async def publish(nats_url: str, subject: str, message: Message, message_id: str) -> None:
    async with jetstream(nats_url) as (_, js):
        await js.publish(
            subject,
            message.SerializeToString(),
            headers={"Nats-Msg-Id": message_id, "Retail-Event-Type": message.DESCRIPTOR.full_name},
        )


async def drafts(stub: pb_grpc.SupplyServiceAsyncStub, location_id: str) -> list[pb.PurchaseOrder]:
    """The drafts of one location (the INVENTORY stream is shared: other tests' suggestions name other locations)."""
    listed = await stub.ListPurchaseOrders(
        pb.ListPurchaseOrdersRequest(actor=HQ, location_id=location_id, statuses=[pb.PURCHASE_ORDER_STATUS_DRAFT])
    )
    return list(listed.purchase_orders)


async def test_a_suggestion_published_and_redelivered_becomes_one_line_of_one_draft(
    stub: pb_grpc.SupplyServiceAsyncStub, app: SupplyApp, supply_url: str, nats_url: str, unique: str
) -> None:
    await setup_supplier(stub)
    store = f"S{unique}"
    subject = f"retail.inventory.v1.replenishment_suggested.{store}"

    def suggested(suggestion_id: str, sku: str, quantity: str, supplier_id: str = "SUPA") -> Message:
        return suggestion_event(f"{suggestion_id}-{unique}", sku, quantity, supplier_id=supplier_id, location=store)

    first = suggested("sg-1", "SKU1", "7.5")
    event_ids = [str(uuid.uuid4()) for _ in range(5)]
    await publish(nats_url, subject, first, event_ids[0])
    await publish(nats_url, subject, first, event_ids[0])  # the same message again (JetStream drops it)
    await publish(nats_url, subject, first, event_ids[1])  # the same suggestion republished under a new event id
    await publish(nats_url, subject, suggested("sg-2", "SKU2", "3"), event_ids[2])
    await publish(nats_url, subject, suggested("sg-3", "NOCONTRACT", "4"), event_ids[3])
    await publish(nats_url, subject, suggested("sg-4", "SKU9", "4", supplier_id=""), event_ids[4])

    async def handled() -> bool:
        rows = await fetch(supply_url, "SELECT event_id FROM inbox WHERE event_id = ANY ($1::text[])", event_ids)
        return len(rows) == 5

    await eventually(handled)
    (draft,) = await drafts(stub, store)
    assert (draft.supplier_id, draft.location_id, draft.created_by) == ("SUPA", store, "replenishment")
    # 7.5 rounded up to whole packs of 6, and at least the minimum of 12; 3 of a pack of 1 stays 3.
    assert [
        (line.sku, line.ordered.value, line.suggested.value, line.unit_cost.minor_units) for line in draft.lines
    ] == [
        ("SKU1", "12", "7.5", 350),
        ("SKU2", "3", "3", 120),
    ]
    assert sorted(draft.suggestion_ids) == [f"sg-1-{unique}", f"sg-2-{unique}"]
    assert draft.total.minor_units == 12 * 350 + 3 * 120
    unplaced = await fetch(
        supply_url,
        "SELECT suggestion_id, reason FROM replenishment_suggestion WHERE status = 'unplaced' AND location_id = $1 "
        "ORDER BY 1",
        store,
    )
    assert [(row["suggestion_id"], row["reason"]) for row in unplaced] == [
        (f"sg-3-{unique}", "no-contract"),
        (f"sg-4-{unique}", "no-supplier"),
    ]
    reported = await stub.ListUnplacedSuggestions(pb.ListUnplacedSuggestionsRequest(actor=HQ, location_id=store))
    assert sorted((s.suggestion_id, s.sku, s.reason, s.suggested.value) for s in reported.suggestions) == [
        (f"sg-3-{unique}", "NOCONTRACT", "no-contract", "4"),
        (f"sg-4-{unique}", "SKU9", "no-supplier", "4"),
    ]
    created = await fetch(
        supply_url,
        "SELECT payload FROM outbox WHERE event_type = $1",
        supply_events.PurchaseOrderStatusChanged.DESCRIPTOR.full_name,
    )
    moves = [supply_events.PurchaseOrderStatusChanged.FromString(row["payload"]) for row in created]
    assert [(m.po_id, m.to_status) for m in moves if m.location_id == store] == [
        (draft.po_id, pb.PURCHASE_ORDER_STATUS_DRAFT)
    ]


async def test_two_replicas_placing_the_same_suggestions_at_once_make_one_line_each(
    stub: pb_grpc.SupplyServiceAsyncStub, app: SupplyApp, unique: str
) -> None:
    await setup_supplier(stub)
    store = f"S{unique}"
    at = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    suggestions = [
        Suggestion(f"sg-{sku}-{unique}", store, sku, "SUPA", Decimal("2"), at.date(), at)
        for sku in ("SKU1", "SKU2", "SKU3")
    ]
    unit_of_work: Callable[[], UnitOfWork] = app.connected.unit_of_work

    async def place(suggestion: Suggestion) -> str:
        async with unit_of_work() as uow:
            outcome = await app.services.purchase_orders.suggested(uow, suggestion, due=True)
            await uow.commit()
        return outcome

    # Every suggestion delivered to two replicas at the same moment, all three at once.
    outcomes = await asyncio.gather(*(place(s) for s in suggestions for _ in range(2)))
    assert sorted(outcomes) == ["duplicate"] * 3 + ["placed"] * 3
    (draft,) = await drafts(stub, store)
    assert sorted((line.sku, line.ordered.value) for line in draft.lines) == [
        ("SKU1", "12"),
        ("SKU2", "2"),
        ("SKU3", "2"),
    ]
    assert sorted(line.line_number for line in draft.lines) == [1, 2, 3]


def receipt_request(
    po: pb.PurchaseOrder, *lines: pb.ReceiptLine, actor: identifiers_pb2.Actor | None = None
) -> pb.RecordGoodsReceiptRequest:
    return pb.RecordGoodsReceiptRequest(
        request_id=rid(),
        actor=actor or manager(po.location_id),
        po_id=po.po_id,
        location_id=po.location_id,
        lines=lines,
    )


async def confirmed_order(
    stub: pb_grpc.SupplyServiceAsyncStub,
    lines: dict[str, str],
    *,
    supplier_id: str = "SUPA",
    promised: str = "2026-12-03",
) -> pb.PurchaseOrder:
    created = await stub.CreatePurchaseOrder(
        pb.CreatePurchaseOrderRequest(
            request_id=rid(),
            actor=HQ,
            supplier_id=supplier_id,
            location_id=STORE,
            lines=[pb.PurchaseOrderLine(sku=sku, ordered=dec(quantity)) for sku, quantity in lines.items()],
            promised_date=promised,
        )
    )
    po = created.purchase_order
    po = (
        await stub.ApprovePurchaseOrder(
            pb.ApprovePurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po.po_id, expected_version=po.version)
        )
    ).purchase_order
    po = (
        await stub.SendPurchaseOrder(pb.SendPurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po.po_id))
    ).purchase_order
    return (
        await stub.ConfirmPurchaseOrder(
            pb.ConfirmPurchaseOrderRequest(
                request_id=rid(), actor=supplier_user(supplier_id), po_id=po.po_id, promised_date=promised
            )
        )
    ).purchase_order


async def test_an_order_is_approved_sent_confirmed_and_received_partly_with_a_quality_reject(
    stub: pb_grpc.SupplyServiceAsyncStub, app: SupplyApp, supply_url: str, nats_url: str, clock: HandClock
) -> None:
    await setup_supplier(stub)
    created = await stub.CreatePurchaseOrder(
        pb.CreatePurchaseOrderRequest(
            request_id=rid(),
            actor=HQ,
            supplier_id="SUPA",
            location_id=STORE,
            lines=[pb.PurchaseOrderLine(sku="SKU1", ordered=dec("5"))],
            promised_date="2026-12-02",
        )
    )
    po = created.purchase_order
    assert (po.status, po.version, po.lines[0].ordered.value) == (pb.PURCHASE_ORDER_STATUS_DRAFT, 1, "12")
    edited = (
        await stub.EditPurchaseOrder(
            pb.EditPurchaseOrderRequest(
                request_id=rid(),
                actor=HQ,
                po_id=po.po_id,
                expected_version=1,
                lines=[
                    pb.PurchaseOrderLine(sku="SKU1", ordered=dec("13")),
                    pb.PurchaseOrderLine(sku="SKU2", ordered=dec("10")),
                ],
                promised_date="2026-12-03",
            )
        )
    ).purchase_order
    assert [(line.sku, line.ordered.value) for line in edited.lines] == [("SKU1", "18"), ("SKU2", "10")]
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await stub.ApprovePurchaseOrder(
            pb.ApprovePurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po.po_id, expected_version=1)
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as too_early:
        await stub.ConfirmPurchaseOrder(
            pb.ConfirmPurchaseOrderRequest(request_id=rid(), actor=supplier_user("SUPA"), po_id=po.po_id)
        )
    assert (too_early.value.code(), reason(too_early.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "purchase-order-state",
    )
    await stub.ApprovePurchaseOrder(
        pb.ApprovePurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po.po_id, expected_version=edited.version)
    )
    await stub.SendPurchaseOrder(pb.SendPurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po.po_id))
    with pytest.raises(grpc.aio.AioRpcError) as more:
        await stub.ConfirmPurchaseOrder(
            pb.ConfirmPurchaseOrderRequest(
                request_id=rid(),
                actor=supplier_user("SUPA"),
                po_id=po.po_id,
                lines=[pb.ConfirmedLine(line_number=2, quantity=dec("11"))],
            )
        )
    assert more.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    confirmed = (
        await stub.ConfirmPurchaseOrder(
            pb.ConfirmPurchaseOrderRequest(
                request_id=rid(),
                actor=supplier_user("SUPA"),
                po_id=po.po_id,
                lines=[pb.ConfirmedLine(line_number=2, quantity=dec("8"))],
                promised_date="2026-12-03",
                note="two cartons short",
            )
        )
    ).purchase_order
    assert confirmed.status == pb.PURCHASE_ORDER_STATUS_CONFIRMED
    assert [line.confirmed.value for line in confirmed.lines] == ["18", "8"]
    assert confirmed.supplier_note == "two cartons short"

    clock.advance(days=1)
    receipt = receipt_request(
        confirmed,
        pb.ReceiptLine(
            po_line_number=1, sku="SKU1", accepted=dec("16"), rejected=dec("2"), reject_reason="crushed", lot="L7"
        ),
        pb.ReceiptLine(po_line_number=2, sku="SKU2", accepted=dec("6"), expiry_date="2027-03-01"),
    )
    answer = await stub.RecordGoodsReceipt(receipt)
    again = await stub.RecordGoodsReceipt(receipt)
    assert again == answer
    after = answer.purchase_order
    assert after.status == pb.PURCHASE_ORDER_STATUS_PARTIALLY_RECEIVED
    assert [(line.accepted.value, line.rejected.value) for line in after.lines] == [("16", "2"), ("6", "0")]
    receipt_id = answer.receipt.receipt_id
    assert [(line.sku, line.reject_reason, line.lot, line.expiry_date) for line in answer.receipt.lines] == [
        ("SKU1", "crushed", "L7", ""),
        ("SKU2", "", "", "2027-03-01"),
    ]

    outbox = await fetch(
        supply_url,
        "SELECT subject, payload FROM outbox WHERE event_type = $1",
        supply_events.GoodsReceived.DESCRIPTOR.full_name,
    )
    assert len(outbox) == 1
    assert outbox[0]["subject"] == "retail.supply.v1.goods_received"

    async def published() -> list[supply_events.GoodsReceived]:
        async with jetstream(nats_url) as (_, js):
            messages = await read_all(js, "SUPPLY", "retail.supply.v1.goods_received")
        events = [supply_events.GoodsReceived.FromString(payload) for _, _, payload in messages]
        return [event for event in events if event.receipt_id == receipt_id]

    (event,) = await eventually(published)
    assert (event.po_id, event.location_id, event.supplier_id) == (po.po_id, STORE, "SUPA")
    assert [(line.sku, line.accepted.value, line.rejected.value) for line in event.lines] == [
        ("SKU1", "16", "2"),
        ("SKU2", "6", "0"),
    ]
    transitions = await fetch(
        supply_url,
        "SELECT payload FROM outbox WHERE event_type = $1 AND aggregate_id = $2 ORDER BY id",
        supply_events.PurchaseOrderStatusChanged.DESCRIPTOR.full_name,
        f"purchase-order:{po.po_id}",
    )
    moves = [supply_events.PurchaseOrderStatusChanged.FromString(row["payload"]) for row in transitions]
    assert [(m.from_status, m.to_status) for m in moves] == [
        (pb.PURCHASE_ORDER_STATUS_UNSPECIFIED, pb.PURCHASE_ORDER_STATUS_DRAFT),
        (pb.PURCHASE_ORDER_STATUS_DRAFT, pb.PURCHASE_ORDER_STATUS_APPROVED),
        (pb.PURCHASE_ORDER_STATUS_APPROVED, pb.PURCHASE_ORDER_STATUS_SENT),
        (pb.PURCHASE_ORDER_STATUS_SENT, pb.PURCHASE_ORDER_STATUS_CONFIRMED),
        (pb.PURCHASE_ORDER_STATUS_CONFIRMED, pb.PURCHASE_ORDER_STATUS_PARTIALLY_RECEIVED),
    ]

    # Fill rate = accepted ÷ ordered = 22 ÷ 28; reject rate = rejected ÷ delivered = 2 ÷ 24.
    card = (
        await stub.GetScorecard(
            pb.GetScorecardRequest(
                actor=supplier_user("SUPA"), supplier_id="SUPA", from_date="2026-12-01", to_date="2026-12-31"
            )
        )
    ).scorecard
    assert card.lines_due == 2
    assert card.fill_rate.value == str((Decimal(22) / Decimal(28)).quantize(Decimal("0.0001")))  # 0.7857
    assert card.reject_rate.value == str((Decimal(2) / Decimal(24)).quantize(Decimal("0.0001")))  # 0.0833
    assert card.quality_score.value == "91.67"
    assert card.otif.value == "0.5"  # SKU1 was delivered in full (16 + 2 of 18) before its date, SKU2 not
    assert not card.HasField("invoice_match_rate")

    closed = (
        await stub.ClosePurchaseOrder(pb.ClosePurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po.po_id))
    ).purchase_order
    assert closed.status == pb.PURCHASE_ORDER_STATUS_CLOSED


async def test_receiving_beyond_the_allowance_is_refused_and_changes_nothing(
    stub: pb_grpc.SupplyServiceAsyncStub, supply_url: str
) -> None:
    await setup_supplier(stub, allowance="0.05")
    po = await confirmed_order(stub, {"SKU2": "10"})
    with pytest.raises(grpc.aio.AioRpcError) as over:
        await stub.RecordGoodsReceipt(receipt_request(po, pb.ReceiptLine(po_line_number=1, accepted=dec("10.6"))))
    assert (over.value.code(), reason(over.value)) == (grpc.StatusCode.FAILED_PRECONDITION, "over-receipt")
    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await stub.RecordGoodsReceipt(receipt_request(po, pb.ReceiptLine(po_line_number=1, rejected=dec("1"))))
    assert (no_reason.value.code(), reason(no_reason.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "reject-reason-required",
    )
    after = (await stub.GetPurchaseOrder(pb.GetPurchaseOrderRequest(actor=HQ, po_id=po.po_id))).purchase_order
    assert after == po
    assert await fetch(supply_url, "SELECT 1 FROM goods_receipt") == []
    assert (
        await fetch(
            supply_url,
            "SELECT 1 FROM outbox WHERE event_type = $1",
            supply_events.GoodsReceived.DESCRIPTOR.full_name,
        )
        == []
    )
    # Within the allowance it is fine: 10.5 of 10 ordered, and the order is received.
    within = await stub.RecordGoodsReceipt(receipt_request(po, pb.ReceiptLine(po_line_number=1, accepted=dec("10.5"))))
    assert within.purchase_order.status == pb.PURCHASE_ORDER_STATUS_RECEIVED


async def test_twenty_concurrent_receipts_on_one_line_never_exceed_the_allowance(
    stub: pb_grpc.SupplyServiceAsyncStub, supply_url: str
) -> None:
    await setup_supplier(stub, allowance="0.05")
    po = await confirmed_order(stub, {"SKU2": "20"})  # at most 21 with the allowance
    requests = [receipt_request(po, pb.ReceiptLine(po_line_number=1, accepted=dec("1.5"))) for _ in range(20)]
    outcomes = await asyncio.gather(*(stub.RecordGoodsReceipt(r) for r in requests), return_exceptions=True)
    accepted = [o for o in outcomes if isinstance(o, pb.RecordGoodsReceiptResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(accepted) == 14  # 14 × 1.5 = 21
    assert len(refused) == 6
    assert {e.code() for e in refused} == {grpc.StatusCode.FAILED_PRECONDITION}
    after = (await stub.GetPurchaseOrder(pb.GetPurchaseOrderRequest(actor=HQ, po_id=po.po_id))).purchase_order
    assert after.lines[0].accepted.value == "21"
    assert after.status == pb.PURCHASE_ORDER_STATUS_RECEIVED
    events = await fetch(
        supply_url, "SELECT 1 FROM outbox WHERE event_type = $1", supply_events.GoodsReceived.DESCRIPTOR.full_name
    )
    assert len(events) == 14


async def test_a_supplier_cannot_see_or_act_on_another_suppliers_orders(
    stub: pb_grpc.SupplyServiceAsyncStub,
) -> None:
    await setup_supplier(stub, "SUPA")
    await setup_supplier(stub, "SUPB")
    created = await stub.CreatePurchaseOrder(
        pb.CreatePurchaseOrderRequest(
            request_id=rid(),
            actor=HQ,
            supplier_id="SUPA",
            location_id=STORE,
            lines=[pb.PurchaseOrderLine(sku="SKU2", ordered=dec("4"))],
            promised_date="2026-12-03",
        )
    )
    po_id = created.purchase_order.po_id
    await stub.ApprovePurchaseOrder(pb.ApprovePurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po_id))
    sent = (
        await stub.SendPurchaseOrder(pb.SendPurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po_id))
    ).purchase_order
    intruder = supplier_user("SUPB")
    with pytest.raises(grpc.aio.AioRpcError) as get:
        await stub.GetPurchaseOrder(pb.GetPurchaseOrderRequest(actor=intruder, po_id=po_id))
    assert get.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as confirm:
        await stub.ConfirmPurchaseOrder(pb.ConfirmPurchaseOrderRequest(request_id=rid(), actor=intruder, po_id=po_id))
    assert confirm.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListPurchaseOrders(pb.ListPurchaseOrdersRequest(actor=intruder, supplier_id="SUPA"))
    assert list(listed.purchase_orders) == []
    receipts = await stub.ListGoodsReceipts(pb.ListGoodsReceiptsRequest(actor=intruder, supplier_id="SUPA"))
    assert list(receipts.receipts) == []
    with pytest.raises(grpc.aio.AioRpcError) as card:
        await stub.GetScorecard(pb.GetScorecardRequest(actor=intruder, supplier_id="SUPA"))
    assert card.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as invoice:
        await stub.RecordSupplierInvoice(
            pb.RecordSupplierInvoiceRequest(
                request_id=rid(),
                actor=intruder,
                invoice_number="B-1",
                supplier_id="SUPB",
                po_id=po_id,
                lines=[pb.InvoiceLine(po_line_number=1, quantity=dec("1"), unit_cost=cny(120))],
            )
        )
    assert invoice.value.code() == grpc.StatusCode.NOT_FOUND
    # Nothing changed: the owner still sees it as it was, and confirms it.
    own = (
        await stub.GetPurchaseOrder(pb.GetPurchaseOrderRequest(actor=supplier_user("SUPA"), po_id=po_id))
    ).purchase_order
    assert own == sent
    mine = await stub.ListPurchaseOrders(
        pb.ListPurchaseOrdersRequest(actor=supplier_user("SUPA"), supplier_id="SUPB", location_id=STORE)
    )
    assert [p.po_id for p in mine.purchase_orders] == [po_id]  # forced to its own supplier


async def test_a_store_manager_receives_for_their_own_store_only(stub: pb_grpc.SupplyServiceAsyncStub) -> None:
    await setup_supplier(stub)
    po = await confirmed_order(stub, {"SKU2": "4"})
    with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
        await stub.RecordGoodsReceipt(
            receipt_request(po, pb.ReceiptLine(po_line_number=1, accepted=dec("4")), actor=manager(OTHER_STORE))
        )
    assert elsewhere.value.code() == grpc.StatusCode.PERMISSION_DENIED
    done = await stub.RecordGoodsReceipt(receipt_request(po, pb.ReceiptLine(po_line_number=1, accepted=dec("4"))))
    assert done.purchase_order.status == pb.PURCHASE_ORDER_STATUS_RECEIVED


async def test_a_direct_delivery_needs_a_contract_that_allows_it(stub: pb_grpc.SupplyServiceAsyncStub) -> None:
    await setup_supplier(stub, "SUPA")
    await setup_supplier(stub, "SUPD", direct=True)
    line = pb.ReceiptLine(sku="SKU2", accepted=dec("5"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.RecordGoodsReceipt(
            pb.RecordGoodsReceiptRequest(
                request_id=rid(), actor=manager(STORE), supplier_id="SUPA", location_id=STORE, lines=[line]
            )
        )
    assert reason(refused.value) == "direct-delivery-not-allowed"
    direct = await stub.RecordGoodsReceipt(
        pb.RecordGoodsReceiptRequest(
            request_id=rid(), actor=manager(STORE), supplier_id="SUPD", location_id=STORE, lines=[line]
        )
    )
    assert (direct.receipt.po_id, direct.receipt.supplier_id) == ("", "SUPD")
    assert not direct.HasField("purchase_order")


async def test_an_invoice_is_matched_three_ways_or_held_with_its_reason(stub: pb_grpc.SupplyServiceAsyncStub) -> None:
    await setup_supplier(stub)
    po = await confirmed_order(stub, {"SKU2": "10"})
    await stub.RecordGoodsReceipt(receipt_request(po, pb.ReceiptLine(po_line_number=1, accepted=dec("6"))))
    returned = await stub.RecordVendorReturn(
        pb.RecordVendorReturnRequest(
            request_id=rid(),
            actor=HQ,
            po_id=po.po_id,
            lines=[pb.VendorReturnLine(po_line_number=1, quantity=dec("1"), reason="leaking")],
        )
    )
    assert returned.purchase_order.lines[0].returned.value == "1"
    held = await stub.RecordSupplierInvoice(
        pb.RecordSupplierInvoiceRequest(
            request_id=rid(),
            actor=supplier_user("SUPA"),
            invoice_number="A-1",
            supplier_id="SUPA",
            po_id=po.po_id,
            lines=[pb.InvoiceLine(po_line_number=1, quantity=dec("6"), unit_cost=cny(120))],
        )
    )
    assert (held.matched, held.lines[0].match_result) == (False, "quantity_above_received")
    pricey = await stub.RecordSupplierInvoice(
        pb.RecordSupplierInvoiceRequest(
            request_id=rid(),
            actor=supplier_user("SUPA"),
            invoice_number="A-2",
            supplier_id="SUPA",
            po_id=po.po_id,
            lines=[pb.InvoiceLine(po_line_number=1, quantity=dec("5"), unit_cost=cny(122))],  # 1% of 120 is 1.2
        )
    )
    assert (pricey.matched, pricey.lines[0].match_result) == (False, "price_above_order")
    matched = await stub.RecordSupplierInvoice(
        pb.RecordSupplierInvoiceRequest(
            request_id=rid(),
            actor=supplier_user("SUPA"),
            invoice_number="A-3",
            supplier_id="SUPA",
            po_id=po.po_id,
            lines=[pb.InvoiceLine(po_line_number=1, quantity=dec("5"), unit_cost=cny(121))],
        )
    )
    assert (matched.matched, matched.lines[0].expected.minor_units) == (True, 600)
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await stub.RecordSupplierInvoice(
            pb.RecordSupplierInvoiceRequest(
                request_id=rid(),
                actor=supplier_user("SUPA"),
                invoice_number="A-3",
                supplier_id="SUPA",
                po_id=po.po_id,
                lines=[pb.InvoiceLine(po_line_number=1, quantity=dec("1"), unit_cost=cny(120))],
            )
        )
    assert (twice.value.code(), reason(twice.value)) == (grpc.StatusCode.ALREADY_EXISTS, "invoice-number-taken")
    card = (
        await stub.GetScorecard(
            pb.GetScorecardRequest(actor=HQ, supplier_id="SUPA", from_date="2026-12-01", to_date="2026-12-31")
        )
    ).scorecard
    assert card.invoice_match_rate.value == "0.3333"


async def test_two_replicas_on_one_durable_and_redelivered_suggestions_make_one_line_per_suggestion(
    stub: pb_grpc.SupplyServiceAsyncStub, app: SupplyApp, nats_url: str, unique: str
) -> None:
    store = f"S{unique}"
    skus = [f"HOT{n:02d}" for n in range(30)]
    await add_supplier(stub, "SUPA")
    await stub.CreateContract(
        pb.CreateContractRequest(
            request_id=rid(), actor=HQ, contract=purchase_contract("SUPA", {sku: (100, "1", "0") for sku in skus})
        )
    )
    subject = f"retail.inventory.v1.replenishment_suggested.{store}"
    for n, sku in enumerate(skus):  # each twice, under two event ids, as a relay re-sending would
        message = suggestion_event(f"sg-{unique}-{n}", sku, str(n + 1), location=store)
        await publish(nats_url, subject, message, str(uuid.uuid4()))
        await publish(nats_url, subject, message, str(uuid.uuid4()))
    # Two replicas share one durable (besides the service's own consumer, which sees every event too).
    spec = replace(replenishment_consumer(f"replicas-{unique}"), filter_subjects=[subject])
    handlers = replenishment_handlers(app.services.purchase_orders)
    stop = asyncio.Event()
    async with jetstream(nats_url) as (_, js):
        await ensure_consumer(js, spec)
        replicas = [EventConsumer(js, spec, handlers, app.connected.unit_of_work, batch_size=size) for size in (4, 7)]
        tasks = [asyncio.create_task(replica.run(stop)) for replica in replicas]
        try:
            await consumer_settled(js, "INVENTORY", spec.durable)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await js.delete_consumer("INVENTORY", spec.durable)
    assert sum(replica.stats.handled + replica.stats.duplicates for replica in replicas) >= 60

    async def complete() -> list[pb.PurchaseOrder]:
        found = await drafts(stub, store)
        return found if found and len(found[0].lines) == len(skus) else []

    (draft,) = await eventually(complete)
    assert sorted((line.sku, line.ordered.value) for line in draft.lines) == sorted(
        (sku, str(n + 1)) for n, sku in enumerate(skus)
    )
    assert sorted(line.line_number for line in draft.lines) == list(range(1, 31))
    assert sorted(draft.suggestion_ids) == sorted(f"sg-{unique}-{n}" for n in range(30))


async def test_an_order_is_cancelled_only_before_goods_arrive_and_returns_never_exceed_what_was_accepted(
    stub: pb_grpc.SupplyServiceAsyncStub, supply_url: str
) -> None:
    await setup_supplier(stub)
    untouched = await confirmed_order(stub, {"SKU2": "4"})
    cancelled = (
        await stub.CancelPurchaseOrder(
            pb.CancelPurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=untouched.po_id, reason="store closed")
        )
    ).purchase_order
    assert cancelled.status == pb.PURCHASE_ORDER_STATUS_CANCELLED
    with pytest.raises(grpc.aio.AioRpcError) as receive_cancelled:
        await stub.RecordGoodsReceipt(receipt_request(cancelled, pb.ReceiptLine(po_line_number=1, accepted=dec("1"))))
    assert reason(receive_cancelled.value) == "purchase-order-state"

    po = await confirmed_order(stub, {"SKU2": "10"})
    await stub.RecordGoodsReceipt(receipt_request(po, pb.ReceiptLine(po_line_number=1, accepted=dec("3"))))
    with pytest.raises(grpc.aio.AioRpcError) as cancel_late:
        await stub.CancelPurchaseOrder(pb.CancelPurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po.po_id))
    assert (cancel_late.value.code(), reason(cancel_late.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "purchase-order-state",
    )
    with pytest.raises(grpc.aio.AioRpcError) as too_many:
        await stub.RecordVendorReturn(
            pb.RecordVendorReturnRequest(
                request_id=rid(),
                actor=HQ,
                po_id=po.po_id,
                lines=[pb.VendorReturnLine(po_line_number=1, quantity=dec("4"), reason="damaged")],
            )
        )
    assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    returned = await stub.RecordVendorReturn(
        pb.RecordVendorReturnRequest(
            request_id=rid(),
            actor=HQ,
            po_id=po.po_id,
            lines=[pb.VendorReturnLine(po_line_number=1, quantity=dec("3"), reason="damaged")],
        )
    )
    (row,) = await fetch(
        supply_url,
        "SELECT subject, payload FROM outbox WHERE event_type = $1",
        supply_events.GoodsReturnedToVendor.DESCRIPTOR.full_name,
    )
    event = supply_events.GoodsReturnedToVendor.FromString(row["payload"])
    assert row["subject"] == "retail.supply.v1.goods_returned_to_vendor"
    assert (event.return_id, event.location_id, [(line.sku, line.accepted.value) for line in event.lines]) == (
        returned.return_id,
        STORE,
        [("SKU2", "3")],
    )
    closed = (
        await stub.ClosePurchaseOrder(pb.ClosePurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po.po_id))
    ).purchase_order
    assert closed.status == pb.PURCHASE_ORDER_STATUS_CLOSED
    assert (closed.lines[0].accepted.value, closed.lines[0].returned.value) == ("3", "3")
    receipts = await stub.ListGoodsReceipts(pb.ListGoodsReceiptsRequest(actor=supplier_user("SUPA"), po_id=po.po_id))
    assert [len(r.lines) for r in receipts.receipts] == [1]
