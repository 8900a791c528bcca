"""Pricing's items kept as supply needs them (newest version wins), a suggestion without a supplier
placed with the catalogue's, and request ids: a retry answers the first answer, a reused id is refused."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.message import Message
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.pricing.v1 import events_pb2 as pricing_events
from retail.pricing.v1 import pricing_service_pb2 as pricing_pb
from retail.supply.v1 import supply_service_pb2 as pb
from retail.supply.v1 import supply_service_pb2_grpc as pb_grpc

from services.supply.bootstrap import SupplyApp
from tests.integration.supply.conftest import fetch
from tests.integration.supply.support import HQ, add_supplier, dec, eventually, purchase_contract, reason, rid
from tests.support.messaging import jetstream


async def publish(nats_url: str, subject: str, message: Message) -> str:
    event_id = str(uuid.uuid4())
    async with jetstream(nats_url) as (_, js):
        await js.publish(
            subject,
            message.SerializeToString(),
            headers={"Nats-Msg-Id": event_id, "Retail-Event-Type": message.DESCRIPTOR.full_name},
        )
    return event_id


def item_changed(sku: str, supplier_id: str, version: int) -> pricing_events.ItemChanged:
    return pricing_events.ItemChanged(
        item=pricing_pb.Item(
            sku=sku, name=f"{sku} v{version}", category="dairy", supplier_id=supplier_id, version=version
        )
    )


async def test_items_keep_their_newest_version_and_name_the_supplier_a_suggestion_lacks(
    stub: pb_grpc.SupplyServiceAsyncStub, app: SupplyApp, supply_url: str, nats_url: str, unique: str
) -> None:
    sku = f"MILK{unique}"
    await add_supplier(stub, "SUPM")
    await stub.CreateContract(
        pb.CreateContractRequest(request_id=rid(), actor=HQ, contract=purchase_contract("SUPM", {sku: (500, "4", "0")}))
    )
    newer = await publish(nats_url, "retail.pricing.v1.item_changed", item_changed(sku, "SUPM", 3))
    older = await publish(nats_url, "retail.pricing.v1.item_changed", item_changed(sku, "SUPX", 2))

    async def handled() -> bool:
        rows = await fetch(supply_url, "SELECT 1 FROM inbox WHERE event_id = ANY ($1::text[])", [newer, older])
        return len(rows) == 2

    await eventually(handled)
    (item,) = await fetch(supply_url, "SELECT supplier_id, name, version FROM catalogue_item WHERE sku = $1", sku)
    assert (item["supplier_id"], item["name"], item["version"]) == ("SUPM", f"{sku} v3", 3)

    suggestion = inventory_events.ReplenishmentSuggested(
        suggestion_id=f"sg-{unique}",
        location_id=f"S{unique}",
        suggestion=inventory_pb.ReplenishmentSuggestion(sku=sku, suggested_quantity=dec("5"), reorder_due=True),
    )
    suggestion.occurred_at.GetCurrentTime()
    placed = await publish(nats_url, f"retail.inventory.v1.replenishment_suggested.S{unique}", suggestion)

    async def drafted() -> list[pb.PurchaseOrder]:
        if not await fetch(supply_url, "SELECT 1 FROM inbox WHERE event_id = $1", placed):
            return []
        listed = await stub.ListPurchaseOrders(pb.ListPurchaseOrdersRequest(actor=HQ, supplier_id="SUPM"))
        return list(listed.purchase_orders)

    (draft,) = await eventually(drafted)
    assert [(line.sku, line.ordered.value) for line in draft.lines] == [(sku, "8")]


async def test_a_request_id_answers_its_first_answer_and_is_never_reused_for_another_request(
    stub: pb_grpc.SupplyServiceAsyncStub, supply_url: str
) -> None:
    await add_supplier(stub, "SUPA")
    await stub.CreateContract(
        pb.CreateContractRequest(
            request_id=rid(), actor=HQ, contract=purchase_contract("SUPA", {"SKU1": (100, "1", "0")})
        )
    )
    request = pb.CreatePurchaseOrderRequest(
        request_id=rid(),
        actor=HQ,
        supplier_id="SUPA",
        location_id="S001",
        lines=[pb.PurchaseOrderLine(sku="SKU1", ordered=dec("3"))],
    )
    first = await stub.CreatePurchaseOrder(request)
    second = await stub.CreatePurchaseOrder(request)
    assert first == second
    assert len(await fetch(supply_url, "SELECT 1 FROM purchase_order WHERE origin = 'manual'")) == 1
    other = pb.CreatePurchaseOrderRequest()
    other.CopyFrom(request)
    other.lines[0].ordered.value = "4"
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await stub.CreatePurchaseOrder(other)
    assert (reused.value.code(), reason(reused.value)) == (grpc.StatusCode.ALREADY_EXISTS, "request-id-reused")
    assert len(await fetch(supply_url, "SELECT 1 FROM purchase_order WHERE origin = 'manual'")) == 1
