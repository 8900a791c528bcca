"""Inventory through the gateway: scopes, ownership, idempotency and problem answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import grpc
import pytest
from retail.common.v1 import money_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

from gateway.domain.clients import ClientKind, StaffRole
from gateway.settings import GatewaySettings
from services.inventory.bootstrap import InventoryApp
from tests.integration.inventory.conftest import level, stock
from tests.support.gateway import (
    RunningGateway,
    assert_problem,
    gateway_schema,
    gateway_settings,
    idempotency_key,
    running_gateway,
)

__all__ = ["gateway_schema", "gateway_settings"]


@pytest.fixture
async def gateway(app: InventoryApp, gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(gateway_backends=f"inventory=127.0.0.1:{app.server.bound_port}")
    async with running_gateway(settings) as running:
        yield running


async def test_an_app_reserves_replays_by_key_and_is_told_what_is_left_when_stock_runs_out(
    gateway: RunningGateway, inventory_url: str
) -> None:
    await stock(inventory_url, "WEB", {"ONLINE01": Decimal(3)})
    app = await gateway.client_headers(ClientKind.APP)
    key = idempotency_key()
    body = {"sku": "WEB", "quantity": "2", "location_id": "ONLINE01", "ttl_seconds": 600}
    created = await gateway.http.post("/v1/reservations", json=body, headers=app | key)
    replayed = await gateway.http.post("/v1/reservations", json=body, headers=app | key)
    assert created.status_code == 201, created.text
    assert replayed.status_code == 201
    assert replayed.json() == created.json()
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert created.json()["allocations"] == [{"location_id": "ONLINE01", "quantity": "2"}]
    refused = await gateway.http.post(
        "/v1/reservations", json=body | {"quantity": "5"}, headers=app | idempotency_key()
    )
    problem = assert_problem(refused, 409, "out-of-stock")
    assert (problem["available"], problem["reason"]) == ("1", "out-of-stock")
    assert (await level(inventory_url, "WEB", "ONLINE01"))["reserved"] == Decimal(2)


async def test_a_refused_channel_reservation_says_where_the_stock_is_and_why_it_is_not_promisable(
    gateway: RunningGateway, inventory_url: str
) -> None:
    await stock(inventory_url, "FAR", {"ONLINE01": Decimal(0), "W01": Decimal(39), "S001": Decimal(4)})
    app = await gateway.client_headers(ClientKind.APP)

    refused = await gateway.http.post(
        "/v1/reservations", json={"sku": "FAR", "quantity": "2", "channel": "online"}, headers=app | idempotency_key()
    )

    problem = assert_problem(refused, 409, "out-of-stock")
    assert problem["detail"] == (
        "0 of FAR available for channel online (draws from: ONLINE01), 2 requested; not promisable to online: "
        "39 at W01 (warehouse, serves no sales channel), 4 at S001 (store, serves store, click_and_collect)"
    )
    facts = [problem["channel"], problem["requested"], problem["available"], problem["available_total"]]
    assert facts == ["online", "2", "0", "0"]
    online = {"location_id": "ONLINE01", "kind": "online", "channels": ["online", "click_and_collect"]}
    assert problem["draws_from"] == [online | {"available_to_promise": "0"}]
    held = [
        (fact["location_id"], fact["kind"], fact["channels"], fact["available_to_promise"])
        for fact in problem["not_promisable"]
    ]
    assert held == [("W01", "warehouse", [], "39"), ("S001", "store", ["store", "click_and_collect"], "4")]
    # The store's stock is promisable to a channel the store serves.
    click_and_collect = {"sku": "FAR", "quantity": "2", "channel": "click_and_collect"}
    collected = await gateway.http.post("/v1/reservations", json=click_and_collect, headers=app | idempotency_key())
    assert collected.status_code == 201, collected.text
    assert collected.json()["allocations"] == [{"location_id": "S001", "quantity": "2"}]
    reserved = [(await level(inventory_url, "FAR", place))["reserved"] for place in ("ONLINE01", "W01", "S001")]
    assert reserved == [0, 0, 2]


async def test_a_reservation_names_exactly_one_of_location_and_channel(
    gateway: RunningGateway, inventory_url: str
) -> None:
    await stock(inventory_url, "ONE", {"ONLINE01": Decimal(5)})
    app = await gateway.client_headers(ClientKind.APP)
    schema = (await gateway.http.get("/openapi.json")).json()["components"]["schemas"]
    assert "exactly one of `location_id`" in schema["ReservationRequest"]["description"]
    channel = schema["ReservationRequest"]["properties"]["channel"]
    assert channel["anyOf"][0]["enum"] == ["online", "mini_program", "click_and_collect", "store"]
    assert "draws only from locations that list the channel" in channel["description"]
    assert {"draws_from", "not_promisable"} <= set(schema["OutOfStockProblem"]["properties"])

    for place in ({}, {"location_id": "ONLINE01", "channel": "online"}, {"channel": "fax"}):
        refused = await gateway.http.post(
            "/v1/reservations", json={"sku": "ONE", "quantity": "1"} | place, headers=app | idempotency_key()
        )
        assert_problem(refused, 422, "validation-error")

    assert (await level(inventory_url, "ONE", "ONLINE01"))["reserved"] == 0


async def test_another_app_cannot_commit_or_release_a_reservation_it_did_not_place(
    gateway: RunningGateway, inventory_url: str
) -> None:
    await stock(inventory_url, "OWNED", {"ONLINE01": Decimal(5)})
    placer = await gateway.client_headers(ClientKind.APP)
    intruder = await gateway.client_headers(ClientKind.APP)
    created = await gateway.http.post(
        "/v1/reservations",
        json={"sku": "OWNED", "quantity": "1", "location_id": "ONLINE01"},
        headers=placer | idempotency_key(),
    )
    reservation_id = created.json()["reservation_id"]
    for action in ("commit", "release"):
        refused = await gateway.http.post(
            f"/v1/reservations/{reservation_id}/{action}", headers=intruder | idempotency_key()
        )
        assert_problem(refused, 404, "not-found")
    committed = await gateway.http.post(f"/v1/reservations/{reservation_id}/commit", headers=placer | idempotency_key())
    assert committed.json()["status"] == "committed"


async def test_store_bound_clients_see_and_change_only_their_own_store(
    gateway: RunningGateway, inventory_url: str
) -> None:
    await stock(inventory_url, "SHELF", {"S001": Decimal(5), "S002": Decimal(7)})
    till = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001")
    manager = await gateway.client_headers(ClientKind.STAFF, store_id="S001", staff_role=StaffRole.STORE_MANAGER)
    assert (await gateway.http.get("/v1/locations/S001/stock", headers=till)).status_code == 200
    assert_problem(await gateway.http.get("/v1/locations/S002/stock", headers=till), 403, "forbidden")
    own = await gateway.http.get("/v1/stock/SHELF", headers=till)
    assert [level["location_id"] for level in own.json()["levels"]] == ["S001"]
    count = {"lines": [{"sku": "SHELF", "counted_quantity": "6"}]}
    elsewhere = await gateway.http.post(
        "/v1/locations/S002/stock-counts", json=count, headers=manager | idempotency_key()
    )
    assert_problem(elsewhere, 403, "forbidden")
    counted = await gateway.http.post(
        "/v1/locations/S001/stock-counts", json=count, headers=manager | idempotency_key()
    )
    assert counted.json() == {"adjusted_levels": 1}
    assert (await level(inventory_url, "SHELF", "S002"))["on_hand"] == Decimal(7)


async def test_only_headquarters_imports_sales_history_and_a_supplier_reads_only_its_own_skus(
    gateway: RunningGateway, inventory_url: str
) -> None:
    await stock(inventory_url, "PAST", {"S001": Decimal(1)})
    history = {"lines": [{"sku": "PAST", "date": "2026-10-01", "quantity": "4"}]}
    manager = await gateway.client_headers(ClientKind.STAFF, store_id="S001", staff_role=StaffRole.STORE_MANAGER)
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    supplier = await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id="SUP001")
    refused = await gateway.http.post(
        "/v1/locations/S001/sales-history", json=history, headers=manager | idempotency_key()
    )
    assert refused.status_code == 403
    imported = await gateway.http.post(
        "/v1/locations/S001/sales-history", json=history, headers=headquarters | idempotency_key()
    )
    assert imported.json() == {"imported_lines": 1}
    # A supplier sees the stock of its own SKUs only; anyone else's does not exist for it.
    assert_problem(await gateway.http.get("/v1/stock/PAST", headers=supplier), 404, "not-found")
    await stock(inventory_url, "THEIRS", {"S001": Decimal(3)}, supplier_id="SUP001")
    own = await gateway.http.get("/v1/stock/THEIRS", headers=supplier)
    assert (own.status_code, own.json()["total_available_to_promise"]) == (200, "3")


async def test_a_transfer_runs_through_the_gateway_and_bad_input_changes_nothing(
    gateway: RunningGateway, inventory_url: str
) -> None:
    await stock(inventory_url, "TRIP", {"S001": Decimal(9), "S002": Decimal(0)})
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    same_place = {"sku": "TRIP", "quantity": "2", "from_location_id": "S001", "to_location_id": "S001"}
    assert_problem(
        await gateway.http.post("/v1/transfers", json=same_place, headers=headquarters | idempotency_key()),
        422,
        "invalid-argument",
    )
    unknown = await gateway.http.post(
        "/v1/reservations",
        json={"sku": "NOPE", "quantity": "1", "location_id": "S001"},
        headers=headquarters | idempotency_key(),
    )
    assert unknown.status_code in (403, 404)
    created = await gateway.http.post(
        "/v1/transfers", json=same_place | {"to_location_id": "S002"}, headers=headquarters | idempotency_key()
    )
    transfer_id = created.json()["transfer_id"]
    await gateway.http.post(f"/v1/transfers/{transfer_id}/dispatch", headers=headquarters | idempotency_key())
    too_many = await gateway.http.post(
        f"/v1/transfers/{transfer_id}/receive",
        json={"received_quantity": "3"},
        headers=headquarters | idempotency_key(),
    )
    assert_problem(too_many, 422, "invalid-argument")
    received = await gateway.http.post(
        f"/v1/transfers/{transfer_id}/receive",
        json={"received_quantity": "2"},
        headers=headquarters | idempotency_key(),
    )
    assert received.json()["status"] == "received"
    assert (await level(inventory_url, "TRIP", "S002"))["on_hand"] == Decimal(2)


async def test_a_stores_transfers_are_listed_newest_first_by_status_and_only_to_its_own_staff(
    gateway: RunningGateway, inventory_url: str
) -> None:
    await stock(inventory_url, "MOVE", {"S061": Decimal(20), "S062": Decimal(0), "S063": Decimal(5)})
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    manager = await gateway.client_headers(ClientKind.STAFF, store_id="S061", staff_role=StaffRole.STORE_MANAGER)
    other = await gateway.client_headers(ClientKind.STAFF, store_id="S062", staff_role=StaffRole.STORE_MANAGER)
    guide = await gateway.client_headers(ClientKind.STAFF, store_id="S061", staff_role=StaffRole.STORE_GUIDE)

    async def transfer(source: str, destination: str, quantity: str) -> str:
        body = {"sku": "MOVE", "quantity": quantity, "from_location_id": source, "to_location_id": destination}
        created = await gateway.http.post("/v1/transfers", json=body, headers=headquarters | idempotency_key())
        assert created.status_code == 201, created.text
        return str(created.json()["transfer_id"])

    requested = await transfer("S061", "S062", "2")
    in_transit = await transfer("S061", "S062", "3")
    received = await transfer("S063", "S061", "1")
    cancelled = await transfer("S061", "S063", "4")
    elsewhere = await transfer("S063", "S062", "1")
    for transfer_id, step in ((in_transit, "dispatch"), (received, "dispatch"), (cancelled, "cancel")):
        done = await gateway.http.post(f"/v1/transfers/{transfer_id}/{step}", headers=headquarters | idempotency_key())
        assert done.status_code == 200, done.text
    await gateway.http.post(
        f"/v1/transfers/{received}/receive", json={"received_quantity": "1"}, headers=headquarters | idempotency_key()
    )

    listed = await gateway.http.get("/v1/locations/S061/transfers", headers=manager)
    assert listed.status_code == 200, listed.text
    # Into or out of the store, newest request first; another pair of stores' transfer is not there.
    assert [(t["transfer_id"], t["status"]) for t in listed.json()["transfers"]] == [
        (cancelled, "cancelled"),
        (received, "received"),
        (in_transit, "dispatched"),
        (requested, "requested"),
    ]
    assert elsewhere not in {t["transfer_id"] for t in listed.json()["transfers"]}
    first = listed.json()["transfers"][-1]
    assert (first["from_location_id"], first["to_location_id"], first["quantity"]) == ("S061", "S062", "2")
    assert first["requested_at"]
    assert first["updated_at"]
    open_ones = await gateway.http.get(
        "/v1/locations/S061/transfers", params=[("status", "requested"), ("status", "dispatched")], headers=manager
    )
    assert [t["transfer_id"] for t in open_ones.json()["transfers"]] == [in_transit, requested]
    # Pages follow each other without a gap or a repeat.
    page_one = await gateway.http.get("/v1/locations/S061/transfers", params={"page_size": 3}, headers=headquarters)
    page_two = await gateway.http.get(
        "/v1/locations/S061/transfers",
        params={"page_size": 3, "page_token": page_one.json()["next_page_token"]},
        headers=headquarters,
    )
    assert [t["transfer_id"] for t in page_one.json()["transfers"] + page_two.json()["transfers"]] == [
        t["transfer_id"] for t in listed.json()["transfers"]
    ]
    assert page_two.json()["next_page_token"] is None

    # Another store's manager: 403 and nothing shown; a store guide lacks the scope; bad input is a problem.
    assert_problem(await gateway.http.get("/v1/locations/S061/transfers", headers=other), 403, "forbidden")
    assert_problem(await gateway.http.get("/v1/locations/S061/transfers", headers=guide), 403, "forbidden")
    assert_problem(
        await gateway.http.get("/v1/locations/S061/transfers", params={"status": "lost"}, headers=manager),
        422,
        "validation-error",
    )
    unknown = await gateway.http.get("/v1/locations/S999/transfers", headers=headquarters)
    assert unknown.status_code == 404, unknown.text
    # Reading changed nothing: the stock is where the transfers left it.
    assert (await level(inventory_url, "MOVE", "S061"))["on_hand"] == Decimal(18)  # 20 - 3 dispatched + 1 received


async def test_a_page_token_the_gateway_did_not_hand_out_is_refused_never_taken_as_a_sku(
    gateway: RunningGateway, inventory_url: str
) -> None:
    for sku in ("PAGE-A", "PAGE-B", "PAGE-C"):
        await stock(inventory_url, sku, {"S071": Decimal(1), "S072": Decimal(2)})
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    first = await gateway.http.get("/v1/locations/S071/stock", params={"page_size": 2}, headers=headquarters)
    token = first.json()["next_page_token"]
    second = await gateway.http.get(
        "/v1/locations/S071/stock", params={"page_size": 2, "page_token": token}, headers=headquarters
    )
    assert [level["sku"] for level in first.json()["levels"] + second.json()["levels"]] == [
        "PAGE-A",
        "PAGE-B",
        "PAGE-C",
    ]
    for garbage in ("PAGE-A", "garbage", token[:-2]):
        refused = await gateway.http.get(
            "/v1/locations/S071/stock", params={"page_token": garbage}, headers=headquarters
        )
        assert_problem(refused, 422, "invalid-page-token")
    elsewhere = await gateway.http.get("/v1/locations/S072/stock", params={"page_token": token}, headers=headquarters)
    assert_problem(elsewhere, 422, "invalid-page-token")


async def test_concurrent_reservations_share_batched_calls_never_oversell_and_each_gets_its_own_answer(
    gateway: RunningGateway, inventory_url: str
) -> None:
    await stock(inventory_url, "FLASH", {"ONLINE01": Decimal(25)})
    await stock(inventory_url, "CALM", {"ONLINE01": Decimal(100)})
    app = await gateway.client_headers(ClientKind.APP)
    calls_before, reserved_before = gateway.resources.stock_reservations.stats
    bodies = [{"sku": "FLASH", "quantity": "1", "location_id": "ONLINE01"}] * 60 + [
        {"sku": "CALM", "quantity": "2", "location_id": "ONLINE01"}
    ] * 10
    keys = [idempotency_key() for _ in bodies]

    answers = await asyncio.gather(
        *(
            gateway.http.post("/v1/reservations", json=body, headers=app | key)
            for body, key in zip(bodies, keys, strict=True)
        )
    )

    flash = [answer for body, answer in zip(bodies, answers, strict=True) if body["sku"] == "FLASH"]
    assert sorted(answer.status_code for answer in flash) == [201] * 25 + [409] * 35
    for refused in (answer for answer in flash if answer.status_code == 409):
        assert (assert_problem(refused, 409, "out-of-stock")["available"]) == "0"
    calm = [answer for body, answer in zip(bodies, answers, strict=True) if body["sku"] == "CALM"]
    assert {answer.status_code for answer in calm} == {201}
    assert len({answer.json()["reservation_id"] for answer in calm}) == 10
    assert (await level(inventory_url, "FLASH", "ONLINE01"))["reserved"] == Decimal(25)
    assert (await level(inventory_url, "CALM", "ONLINE01"))["reserved"] == Decimal(20)
    calls, reserved = gateway.resources.stock_reservations.stats
    assert reserved - reserved_before == len(bodies)
    assert calls - calls_before < len(bodies)  # coalesced: fewer calls than reservations
    # A retry of any of them replays its own first answer.
    first = next(i for i, answer in enumerate(answers) if answer.status_code == 201)
    again = await gateway.http.post("/v1/reservations", json=bodies[first], headers=app | keys[first])
    assert again.json() == answers[first].json()
    assert (await level(inventory_url, "FLASH", "ONLINE01"))["reserved"] == Decimal(25)


async def test_a_batch_of_reservations_answers_each_request_as_reserve_stock_alone_would(
    app: InventoryApp, inventory_url: str
) -> None:
    await stock(inventory_url, "BATCH", {"ONLINE01": Decimal(3)})

    def asked(request_id: str, quantity: str, sku: str = "BATCH") -> pb.ReserveStockRequest:
        return pb.ReserveStockRequest(
            request_id=request_id, sku=sku, quantity=money_pb2.Decimal(value=quantity), location_id="ONLINE01"
        )

    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        earlier = await stub.ReserveStock(asked("r-earlier", "1"), timeout=10)
        batch = [
            asked("r-earlier", "1"),  # a retry: the first answer again
            asked("r-earlier", "2"),  # the same request id for another request
            asked("r-new", "2"),
            asked("r-more", "1"),  # nothing left
            asked("r-unknown", "1", sku="NO-SUCH-SKU"),
            asked("", "1"),  # malformed
        ]
        answer = await stub.ReserveStocks(pb.ReserveStocksRequest(requests=batch), timeout=10)

    outcomes = [o.refusal.reason if o.HasField("refusal") else o.reservation.reservation_id for o in answer.outcomes]
    assert outcomes[0] == earlier.reservation.reservation_id
    assert outcomes[1] == "request-id-reused"
    assert outcomes[2] not in ("", earlier.reservation.reservation_id)
    assert outcomes[3:] == ["out-of-stock", "unknown-sku", "request-id-missing"]
    assert json.loads(answer.outcomes[3].refusal.details_json)["available"] == "0"
    assert (await level(inventory_url, "BATCH", "ONLINE01"))["reserved"] == Decimal(3)
