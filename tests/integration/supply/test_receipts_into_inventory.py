"""The purchasing flow across two real services: a replenishment suggestion on the INVENTORY stream
(redelivered) drafts one order line in supply; the order is approved, sent, confirmed by the supplier
and received partly with one quality reject; supply's relay publishes GoodsReceived to the SUPPLY
stream and the real inventory service raises stock by the accepted units exactly once — also when the
event is published again — while its ledger still explains the level; the scorecard shows the fill
rate and the reject rate computed by hand."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from google.protobuf.message import Message
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.supply.v1 import events_pb2 as supply_events
from retail.supply.v1 import supply_service_pb2 as pb
from retail.supply.v1 import supply_service_pb2_grpc as pb_grpc

from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.protowire import timestamp
from services.inventory.bootstrap import InventoryApp
from services.inventory.bootstrap import build as build_inventory
from services.inventory.migrate import VERSIONS as INVENTORY_VERSIONS
from services.inventory.settings import InventorySettings
from tests.conftest import Infra, create_database_from, service_template
from tests.integration.inventory.conftest import level, stock
from tests.integration.supply.conftest import fetch
from tests.integration.supply.support import HQ, add_supplier, dec, eventually, manager, purchase_contract, rid
from tests.integration.supply.support import supplier_user as portal
from tests.support.messaging import consumer_settled, jetstream


@pytest.fixture(scope="session")
def inventory_template_beside_supply(infra: Infra, kit_template: str) -> str:
    return service_template(infra, kit_template, INVENTORY_VERSIONS)


@pytest.fixture
def inventory_url(infra: Infra, inventory_template_beside_supply: str) -> str:
    return create_database_from(infra, inventory_template_beside_supply)


@pytest.fixture
async def inventory(inventory_url: str, nats_url: str, unique: str) -> AsyncIterator[InventoryApp]:
    settings = InventorySettings(
        app_env="test",
        database_url=inventory_url,
        nats_url=nats_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        supply_consumer_durable=f"inventory-supply-{unique}",
        catalogue_consumer_durable=f"inventory-catalogue-{unique}",
    )
    app = build_inventory(settings)
    await app.server.start()
    yield app
    await app.server.stop()
    await app.close()
    async with jetstream(nats_url) as (_, js):
        await js.delete_consumer("SUPPLY", settings.supply_consumer_durable)


async def publish(nats_url: str, subject: str, message: Message, event_id: str) -> None:
    async with jetstream(nats_url) as (_, js):
        ack = await js.publish(
            subject,
            message.SerializeToString(),
            headers={MSG_ID_HEADER: event_id, EVENT_TYPE_HEADER: message.DESCRIPTOR.full_name},
        )
        assert not ack.duplicate


async def settled(nats_url: str, durable: str) -> None:
    """Until inventory's supply consumer has handled everything on the SUPPLY stream."""
    async with jetstream(nats_url) as (_, js):
        await consumer_settled(js, "SUPPLY", durable)


async def test_a_suggestion_becomes_an_order_whose_partial_receipt_raises_stock_in_inventory_once(
    stub: pb_grpc.SupplyServiceAsyncStub,
    inventory: InventoryApp,
    inventory_url: str,
    supply_url: str,
    nats_url: str,
    unique: str,
) -> None:
    store, sku = f"S{unique}", f"SKU{unique}"
    await stock(inventory_url, sku, {store: Decimal(5)}, supplier_id="SUPA")
    await add_supplier(stub, "SUPA")
    await stub.CreateContract(
        pb.CreateContractRequest(
            request_id=rid(), actor=HQ, contract=purchase_contract("SUPA", {sku: (350, "6", "0")}, allowance="0")
        )
    )
    suggested = inventory_events.ReplenishmentSuggested(
        suggestion_id=f"sg-{unique}",
        location_id=store,
        suggestion=inventory_pb.ReplenishmentSuggestion(
            sku=sku, supplier_id="SUPA", suggested_quantity=dec("20"), reorder_due=True, as_of_date="2026-12-01"
        ),
        occurred_at=timestamp(datetime(2026, 12, 1, 1, 0, tzinfo=UTC)),
    )
    subject = f"retail.inventory.v1.replenishment_suggested.{store}"
    first_id, again_id = str(uuid.uuid4()), str(uuid.uuid4())
    await publish(nats_url, subject, suggested, first_id)
    await publish(nats_url, subject, suggested, again_id)  # redelivered under another event id

    async def both_handled() -> bool:
        rows = await fetch(supply_url, "SELECT 1 FROM inbox WHERE event_id = ANY ($1::text[])", [first_id, again_id])
        return len(rows) == 2

    await eventually(both_handled)
    listed = await stub.ListPurchaseOrders(pb.ListPurchaseOrdersRequest(actor=HQ, location_id=store))
    (draft,) = listed.purchase_orders
    assert [(line.sku, line.ordered.value, line.suggested.value) for line in draft.lines] == [(sku, "24", "20")]

    po_id = draft.po_id
    await stub.ApprovePurchaseOrder(
        pb.ApprovePurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po_id, expected_version=draft.version)
    )
    await stub.SendPurchaseOrder(pb.SendPurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po_id))
    await stub.ConfirmPurchaseOrder(
        pb.ConfirmPurchaseOrderRequest(request_id=rid(), actor=portal("SUPA"), po_id=po_id, promised_date="2026-12-04")
    )
    received = await stub.RecordGoodsReceipt(
        pb.RecordGoodsReceiptRequest(
            request_id=rid(),
            actor=manager(store),
            po_id=po_id,
            lines=[
                pb.ReceiptLine(
                    po_line_number=1, accepted=dec("15"), rejected=dec("3"), reject_reason="leaking", lot="L1"
                )
            ],
        )
    )
    assert received.purchase_order.status == pb.PURCHASE_ORDER_STATUS_PARTIALLY_RECEIVED

    # Inventory books the 15 accepted units once; the 3 rejected never enter stock.
    async def raised() -> bool:
        return (await level(inventory_url, sku, store))["on_hand"] == Decimal(20)

    await eventually(raised)
    durable = f"inventory-supply-{unique}"
    await settled(nats_url, durable)
    # The same receipt published again (a relay re-sending after a lost ack): nothing moves twice.
    (row,) = await fetch(
        supply_url,
        "SELECT payload FROM outbox WHERE event_type = $1",
        supply_events.GoodsReceived.DESCRIPTOR.full_name,
    )
    await publish(
        nats_url, "retail.supply.v1.goods_received", supply_events.GoodsReceived.FromString(row["payload"]), rid()
    )
    await settled(nats_url, durable)
    assert (await level(inventory_url, sku, store))["on_hand"] == Decimal(20)
    movements = await fetch(
        inventory_url,
        "SELECT kind, on_hand_delta FROM stock_movement WHERE sku = $1 AND location_id = $2 ORDER BY id",
        sku,
        store,
    )
    assert [(m["kind"], m["on_hand_delta"]) for m in movements] == [
        ("opening_balance", Decimal(5)),
        ("receipt", Decimal(15)),
    ]

    # Fill rate 15 ÷ 24 = 0.625, reject rate 3 ÷ 18 = 0.1667, quality 83.33.
    card = (
        await stub.GetScorecard(
            pb.GetScorecardRequest(
                actor=portal("SUPA"), supplier_id="SUPA", from_date="2026-12-01", to_date="2026-12-31"
            )
        )
    ).scorecard
    assert (card.lines_due, card.fill_rate.value, card.reject_rate.value, card.quality_score.value) == (
        1,
        "0.625",
        "0.1667",
        "83.33",
    )
