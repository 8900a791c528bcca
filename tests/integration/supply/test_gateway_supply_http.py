"""Supply through the gateway, against the real supply service: every route keeps each tenant to
its own — a second supplier reading or acting on the first one's objects gets `404` and changes
nothing, a store manager receives for their own store only, clients without a supply scope get
`403` — and money travels as integer fen beside yuan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from gateway.domain.clients import ClientKind, StaffRole
from gateway.settings import GatewaySettings
from services.supply.bootstrap import SupplyApp
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
async def gateway(app: SupplyApp, gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(gateway_backends=f"supply=127.0.0.1:{app.server.bound_port}", rate_limit_burst=1000)
    async with running_gateway(settings) as running:
        yield running


class Tenants:
    """Who calls: headquarters, the two suppliers' portal users, store managers of two stores,
    and clients that have no business with supply."""

    def __init__(self, unique: str) -> None:
        self.a, self.b = f"SA{unique}", f"SB{unique}"
        self.store_1, self.store_2 = f"S1{unique}", f"S2{unique}"

    async def register(self, gateway: RunningGateway) -> None:
        staff = ClientKind.STAFF
        self.hq = await gateway.client_headers(staff, staff_role=StaffRole.HEADQUARTERS)
        self.supplier_a = await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id=self.a)
        self.supplier_b = await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id=self.b)
        self.manager_1 = await gateway.client_headers(staff, staff_role=StaffRole.STORE_MANAGER, store_id=self.store_1)
        self.manager_2 = await gateway.client_headers(staff, staff_role=StaffRole.STORE_MANAGER, store_id=self.store_2)
        self.guide_1 = await gateway.client_headers(staff, staff_role=StaffRole.STORE_GUIDE, store_id=self.store_1)
        self.terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=self.store_1)
        self.app = await gateway.client_headers(ClientKind.APP)


@pytest.fixture
async def tenants(gateway: RunningGateway, unique: str) -> Tenants:
    tenants = Tenants(unique)
    await tenants.register(gateway)
    return tenants


async def post(http: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
    return await http.post(path, json=body, headers=headers | idempotency_key())


async def created(http: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any = None) -> dict[str, Any]:
    response = await post(http, path, headers, body)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


async def supplier_with_contract(http: httpx.AsyncClient, tenants: Tenants, supplier_id: str, sku: str) -> None:
    await created(
        http,
        "/v1/suppliers",
        tenants.hq,
        {"supplier_id": supplier_id, "code": supplier_id, "name": f"{supplier_id} Co."},
    )
    await created(
        http,
        f"/v1/suppliers/{supplier_id}/contracts",
        tenants.hq,
        {
            "mode": "purchase",
            "valid_from": "2026-01-01",
            "items": [{"sku": sku, "unit_cost_fen": 350, "pack_size": "6", "minimum_order": "12"}],
            "over_delivery_allowance": "0.05",
        },
    )


async def test_suppliers_and_contracts_are_headquarters_and_each_supplier_sees_its_own_only(
    gateway: RunningGateway, tenants: Tenants
) -> None:
    http = gateway.http
    await supplier_with_contract(http, tenants, tenants.a, "SKU-A1")
    await supplier_with_contract(http, tenants, tenants.b, "SKU-B1")

    own = await http.get(f"/v1/suppliers/{tenants.a}", headers=tenants.supplier_a)
    assert own.status_code == 200, own.text
    assert own.json()["supplier_id"] == tenants.a
    contracts = await http.get(f"/v1/suppliers/{tenants.a}/contracts", headers=tenants.supplier_a)
    assert contracts.status_code == 200, contracts.text
    (contract,) = contracts.json()["contracts"]
    assert contract["items"][0]["unit_cost"] == {"fen": 350, "yuan": "3.50"}
    assert contract["mode"] == "purchase"

    # The other supplier's supplier record and contracts do not exist for it.
    assert_problem(await http.get(f"/v1/suppliers/{tenants.a}", headers=tenants.supplier_b), 404, "not-found")
    assert_problem(await http.get(f"/v1/suppliers/{tenants.a}/contracts", headers=tenants.supplier_b), 404, "not-found")
    # A supplier user lists no suppliers; it changes none, and adds no contract.
    assert_problem(await http.get("/v1/suppliers", headers=tenants.supplier_a), 403, "forbidden")
    change = {"code": "X", "name": "Mine now", "payment_terms_days": 1, "active": True, "version": 1}
    for headers in (tenants.supplier_a, tenants.supplier_b, tenants.manager_1):
        assert_problem(
            await http.put(f"/v1/suppliers/{tenants.a}", json=change, headers=headers | idempotency_key()),
            403,
            "forbidden",
        )
    assert_problem(
        await post(
            http,
            f"/v1/suppliers/{tenants.b}/contracts",
            tenants.supplier_b,
            {"mode": "purchase", "valid_from": "2027-01-01", "items": [{"sku": "SKU-B2", "unit_cost_fen": 1}]},
        ),
        403,
        "forbidden",
    )
    # Clients without any supply scope.
    for headers in (tenants.terminal, tenants.app, tenants.guide_1):
        assert_problem(await http.get(f"/v1/suppliers/{tenants.a}", headers=headers), 403, "forbidden")
        assert_problem(await http.get("/v1/suppliers", headers=headers), 403, "forbidden")
    # Store managers read suppliers but not a supplier's terms.
    listed = await http.get("/v1/suppliers", headers=tenants.manager_1)
    assert listed.status_code == 200, listed.text
    assert {tenants.a, tenants.b} <= {s["supplier_id"] for s in listed.json()["suppliers"]}
    assert_problem(await http.get(f"/v1/suppliers/{tenants.a}/contracts", headers=tenants.manager_1), 403, "forbidden")

    # Nothing changed: the supplier is as headquarters made it.
    after = (await http.get(f"/v1/suppliers/{tenants.a}", headers=tenants.hq)).json()
    assert (after["name"], after["version"]) == (f"{tenants.a} Co.", 1)
    # A concession commission above 100% never reaches the service.
    too_much = await post(
        http,
        f"/v1/suppliers/{tenants.a}/contracts",
        tenants.hq,
        {"mode": "concession", "valid_from": "2030-01-01", "items": [{"sku": "SKU-A9"}], "commission_rate": "1.5"},
    )
    assert_problem(too_much, 422, "validation-error")


async def test_a_supplier_configured_but_not_running_makes_its_routes_answer_503(
    gateway_settings: Callable[..., GatewaySettings],
) -> None:
    settings = gateway_settings(gateway_backends="supply=127.0.0.1:9", rate_limit_burst=1000)
    async with running_gateway(settings, wait_for_backends=False) as running:
        hq = await running.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
        for path in ("/v1/suppliers", "/v1/suppliers/SUP1/scorecard", "/v1/suppliers/SUP1/statements"):
            assert_problem(await running.http.get(path, headers=hq), 503, "service-unavailable")


async def test_without_the_supply_backend_the_gateway_serves_no_supply_route(
    gateway_settings: Callable[..., GatewaySettings],
) -> None:
    async with running_gateway(gateway_settings(), wait_for_backends=False) as running:
        paths = (await running.http.get("/openapi.json")).json()["paths"]
        assert not [path for path in paths if path.startswith(("/v1/suppliers", "/v1/statements", "/v1/purchase"))]
        hq = await running.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
        assert_problem(await running.http.get("/v1/suppliers", headers=hq), 404, "not-found")


async def issued_statement(http: httpx.AsyncClient, tenants: Tenants) -> dict[str, Any]:
    """Supplier A's November statement: a slotting fee of 500.00 booked against its contract, issued."""
    (contract,) = (await http.get(f"/v1/suppliers/{tenants.a}/contracts", headers=tenants.hq)).json()["contracts"]
    fee = {"fee_kind": "slotting", "amount_fen": 50_000, "occurred_on": "2026-11-03", "description": "end cap"}
    for headers in (tenants.supplier_a, tenants.manager_1, tenants.terminal):
        assert_problem(
            await post(http, f"/v1/contracts/{contract['contract_id']}/fees", headers, fee), 403, "forbidden"
        )
    line = await created(http, f"/v1/contracts/{contract['contract_id']}/fees", tenants.hq, fee)
    assert (line["kind"], line["amount"]) == ("fee", {"fen": -50_000, "yuan": "-500.00"})
    run = {"period_date": "2026-11-30", "supplier_id": tenants.a}
    for headers in (tenants.supplier_a, tenants.manager_1, tenants.terminal, tenants.app):
        assert_problem(await post(http, "/v1/statement-runs", headers, run), 403, "forbidden")
    ran = await created(http, "/v1/statement-runs", tenants.hq, run)
    assert (ran["statements"], ran["lines"], ran["total"]) == (1, 1, {"fen": -50_000, "yuan": "-500.00"})
    (statement,) = (await http.get(f"/v1/suppliers/{tenants.a}/statements", headers=tenants.hq)).json()["statements"]
    assert statement["status"] == "draft"
    for headers in (tenants.supplier_a, tenants.supplier_b):
        assert_problem(await post(http, f"/v1/statements/{statement['statement_id']}/issue", headers), 403, "forbidden")
    issued = await created(http, f"/v1/statements/{statement['statement_id']}/issue", tenants.hq)
    assert issued["status"] == "issued"
    return issued


async def test_statements_are_the_suppliers_own_to_read_export_confirm_or_dispute_and_add_up_to_the_fen(
    gateway: RunningGateway, tenants: Tenants
) -> None:
    http = gateway.http
    await supplier_with_contract(http, tenants, tenants.a, "SKU-A1")
    await supplier_with_contract(http, tenants, tenants.b, "SKU-B1")
    issued = await issued_statement(http, tenants)
    statement_id = issued["statement_id"]

    # Supplier A reads its statement: lines in fen, the total their sum.
    listed = await http.get(f"/v1/suppliers/{tenants.a}/statements", headers=tenants.supplier_a)
    assert [s["statement_id"] for s in listed.json()["statements"]] == [statement_id]
    read = await http.get(f"/v1/statements/{statement_id}", headers=tenants.supplier_a)
    assert read.status_code == 200, read.text
    lines = read.json()["lines"]
    assert read.json()["statement"]["total"] == {"fen": -50_000, "yuan": "-500.00"}
    assert sum(line["amount"]["fen"] for line in lines) == -50_000
    as_csv = await http.get(
        f"/v1/statements/{statement_id}/export", params={"format": "csv"}, headers=tenants.supplier_a
    )
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    assert "-50000" in as_csv.text
    as_json = await http.get(f"/v1/statements/{statement_id}/export", params={"format": "json"}, headers=tenants.hq)
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json()

    # Supplier B: nothing of A's statements exists for it, and nothing it does changes them.
    assert_problem(
        await http.get(f"/v1/suppliers/{tenants.a}/statements", headers=tenants.supplier_b), 404, "not-found"
    )
    assert_problem(await http.get(f"/v1/statements/{statement_id}", headers=tenants.supplier_b), 404, "not-found")
    assert_problem(
        await http.get(f"/v1/statements/{statement_id}/export", params={"format": "csv"}, headers=tenants.supplier_b),
        404,
        "not-found",
    )
    assert (await http.get("/v1/statements", headers=tenants.supplier_b)).json()["statements"] == []
    forced = await http.get("/v1/statements", params={"supplier_id": tenants.a}, headers=tenants.supplier_b)
    assert forced.json()["statements"] == []
    assert_problem(await post(http, f"/v1/statements/{statement_id}/confirm", tenants.supplier_b), 404, "not-found")
    dispute = {"lines": [{"source_id": lines[0]["source_id"], "comment": "not ours"}]}
    assert_problem(
        await post(http, f"/v1/statements/{statement_id}/dispute", tenants.supplier_b, dispute), 404, "not-found"
    )
    # Only the supplier answers for its statement; terminals, apps and store staff read none.
    for headers in (tenants.hq, tenants.manager_1, tenants.terminal, tenants.app):
        assert_problem(await post(http, f"/v1/statements/{statement_id}/confirm", headers), 403, "forbidden")
        assert_problem(await post(http, f"/v1/statements/{statement_id}/dispute", headers, dispute), 403, "forbidden")
    for headers in (tenants.manager_1, tenants.guide_1, tenants.terminal, tenants.app):
        assert_problem(await http.get(f"/v1/statements/{statement_id}", headers=headers), 403, "forbidden")
        assert_problem(await http.get(f"/v1/suppliers/{tenants.a}/statements", headers=headers), 403, "forbidden")
        assert_problem(await http.get("/v1/settlement/check", headers=headers), 403, "forbidden")
    assert_problem(await http.get("/v1/settlement/check", headers=tenants.supplier_a), 403, "forbidden")
    after = (await http.get(f"/v1/statements/{statement_id}", headers=tenants.hq)).json()
    assert (after["statement"]["status"], after["statement"]["version"]) == ("issued", issued["version"])
    assert [line["dispute_comment"] for line in after["lines"]] == [None]

    # Supplier A disputes a line, with its comment.
    disputed = await created(
        http,
        f"/v1/statements/{statement_id}/dispute",
        tenants.supplier_a,
        {"lines": [{"source_id": lines[0]["source_id"], "comment": "the end cap was never built"}]},
    )
    assert disputed["status"] == "disputed"
    commented = (await http.get(f"/v1/statements/{statement_id}", headers=tenants.supplier_a)).json()["lines"]
    assert [line["dispute_comment"] for line in commented] == ["the end cap was never built"]
    check = await http.get("/v1/settlement/check", params={"supplier_id": tenants.a}, headers=tenants.hq)
    assert check.status_code == 200, check.text
    assert check.json()["consistent"] is True


async def test_a_statement_is_confirmed_once_approved_and_paid(gateway: RunningGateway, tenants: Tenants) -> None:
    http = gateway.http
    await supplier_with_contract(http, tenants, tenants.a, "SKU-A1")
    statement_id = (await issued_statement(http, tenants))["statement_id"]
    assert_problem(await post(http, f"/v1/statements/{statement_id}/approve", tenants.supplier_a), 403, "forbidden")
    confirmed = await created(http, f"/v1/statements/{statement_id}/confirm", tenants.supplier_a)
    assert confirmed["status"] == "confirmed"
    assert_problem(
        await post(http, f"/v1/statements/{statement_id}/confirm", tenants.supplier_a), 409, "failed-precondition"
    )
    payment = {"payment_reference": "BANK-1"}
    assert_problem(
        await post(http, f"/v1/statements/{statement_id}/mark-paid", tenants.supplier_a, payment), 403, "forbidden"
    )
    assert (await created(http, f"/v1/statements/{statement_id}/approve", tenants.hq))["status"] == "approved"
    paid = await created(http, f"/v1/statements/{statement_id}/mark-paid", tenants.hq, payment)
    assert (paid["status"], paid["payment_reference"], paid["total"]["fen"]) == ("paid", "BANK-1", -50_000)


async def sent_order(http: httpx.AsyncClient, tenants: Tenants, store_id: str) -> dict[str, Any]:
    """Supplier A's order of 14 (rounded up to 18: packs of 6) at 3.50 for ``store_id``, approved and sent."""
    draft = await created(
        http,
        "/v1/purchase-orders",
        tenants.hq,
        {"supplier_id": tenants.a, "location_id": store_id, "lines": [{"sku": "SKU-A1", "ordered": "14"}]},
    )
    assert draft["status"] == "draft"
    po_id = draft["po_id"]
    approved = await created(
        http, f"/v1/purchase-orders/{po_id}/approve", tenants.hq, {"expected_version": draft["version"]}
    )
    assert approved["status"] == "approved"
    sent = await created(http, f"/v1/purchase-orders/{po_id}/send", tenants.hq)
    assert sent["status"] == "sent"
    return sent


async def test_purchase_orders_are_the_suppliers_own_and_goods_are_received_at_ones_own_store(
    gateway: RunningGateway, tenants: Tenants
) -> None:
    http = gateway.http
    await supplier_with_contract(http, tenants, tenants.a, "SKU-A1")
    await supplier_with_contract(http, tenants, tenants.b, "SKU-B1")
    order = await sent_order(http, tenants, tenants.store_1)
    po_id = order["po_id"]
    (line,) = order["lines"]
    assert (line["ordered"], line["unit_cost"]) == ("18", {"fen": 350, "yuan": "3.50"})
    assert order["total"] == {"fen": 6300, "yuan": "63.00"}

    # Supplier A sees it in its portal; supplier B sees nothing of it, through any route.
    portal = await http.get(f"/v1/suppliers/{tenants.a}/purchase-orders", headers=tenants.supplier_a)
    assert portal.status_code == 200, portal.text
    assert [o["po_id"] for o in portal.json()["purchase_orders"]] == [po_id]
    assert_problem(
        await http.get(f"/v1/suppliers/{tenants.a}/purchase-orders", headers=tenants.supplier_b), 404, "not-found"
    )
    assert (await http.get("/v1/purchase-orders", headers=tenants.supplier_b)).json()["purchase_orders"] == []
    forced = await http.get("/v1/purchase-orders", params={"supplier_id": tenants.a}, headers=tenants.supplier_b)
    assert forced.json()["purchase_orders"] == []
    assert_problem(await http.get(f"/v1/purchase-orders/{po_id}", headers=tenants.supplier_b), 404, "not-found")
    confirmation = {"promised_date": "2026-12-10", "lines": [{"line_number": 1, "quantity": "12"}], "note": "B"}
    assert_problem(
        await post(http, f"/v1/purchase-orders/{po_id}/confirm", tenants.supplier_b, confirmation), 404, "not-found"
    )
    # A supplier raises, approves, sends, cancels and closes nothing.
    for action in ("send", "close"):
        assert_problem(await post(http, f"/v1/purchase-orders/{po_id}/{action}", tenants.supplier_a), 403, "forbidden")
    assert_problem(
        await post(http, f"/v1/purchase-orders/{po_id}/cancel", tenants.supplier_a, {"reason": "no"}), 403, "forbidden"
    )
    assert_problem(
        await post(
            http,
            "/v1/purchase-orders",
            tenants.supplier_a,
            {"supplier_id": tenants.a, "location_id": tenants.store_1, "lines": [{"sku": "SKU-A1", "ordered": "1"}]},
        ),
        403,
        "forbidden",
    )
    # Nothing changed by any of it.
    unchanged = (await http.get(f"/v1/purchase-orders/{po_id}", headers=tenants.hq)).json()
    assert (unchanged["status"], unchanged["version"], unchanged["supplier_note"]) == ("sent", order["version"], None)

    confirmed = await created(http, f"/v1/purchase-orders/{po_id}/confirm", tenants.supplier_a, confirmation)
    assert (confirmed["status"], confirmed["lines"][0]["confirmed"], confirmed["promised_date"]) == (
        "confirmed",
        "12",
        "2026-12-10",
    )

    # Store managers: their own store's orders only, and goods received at their own store only.
    assert_problem(await http.get(f"/v1/purchase-orders/{po_id}", headers=tenants.manager_2), 404, "not-found")
    assert (await http.get("/v1/purchase-orders", headers=tenants.manager_2)).json()["purchase_orders"] == []
    assert_problem(
        await http.get("/v1/purchase-orders", params={"location_id": tenants.store_1}, headers=tenants.manager_2),
        403,
        "forbidden",
    )
    mine = await http.get(f"/v1/purchase-orders/{po_id}", headers=tenants.manager_1)
    assert mine.status_code == 200, mine.text
    receipt = {
        "po_id": po_id,
        "location_id": tenants.store_1,
        "lines": [{"po_line_number": 1, "sku": "SKU-A1", "accepted": "10", "rejected": "1", "reject_reason": "dented"}],
    }
    assert_problem(await post(http, "/v1/goods-receipts", tenants.manager_2, receipt), 403, "forbidden")
    for headers in (tenants.supplier_a, tenants.terminal, tenants.app, tenants.guide_1):
        assert_problem(await post(http, "/v1/goods-receipts", headers, receipt), 403, "forbidden")
    assert (await http.get(f"/v1/purchase-orders/{po_id}", headers=tenants.hq)).json()["lines"][0]["accepted"] == "0"
    received = await created(http, "/v1/goods-receipts", tenants.manager_1, receipt)
    assert received["receipt"]["lines"][0]["rejected"] == "1"
    assert received["purchase_order"]["status"] == "partially_received"
    assert (received["purchase_order"]["lines"][0]["accepted"], received["purchase_order"]["lines"][0]["rejected"]) == (
        "10",
        "1",
    )

    # Receipts: the supplier's own, the store's own.
    own_receipts = (await http.get("/v1/goods-receipts", headers=tenants.supplier_a)).json()["receipts"]
    assert [r["po_id"] for r in own_receipts] == [po_id]
    assert (await http.get("/v1/goods-receipts", headers=tenants.supplier_b)).json()["receipts"] == []
    assert (await http.get("/v1/goods-receipts", headers=tenants.manager_2)).json()["receipts"] == []
    assert len((await http.get("/v1/goods-receipts", headers=tenants.manager_1)).json()["receipts"]) == 1
    for headers in (tenants.terminal, tenants.app):
        assert_problem(await http.get("/v1/goods-receipts", headers=headers), 403, "forbidden")
        assert_problem(await http.get("/v1/purchase-orders", headers=headers), 403, "forbidden")
        assert_problem(await http.get(f"/v1/purchase-orders/{po_id}", headers=headers), 403, "forbidden")

    # The scorecard: the supplier's own; another supplier's is not there.
    card = await http.get(f"/v1/suppliers/{tenants.a}/scorecard", headers=tenants.supplier_a)
    assert card.status_code == 200, card.text
    assert_problem(await http.get(f"/v1/suppliers/{tenants.a}/scorecard", headers=tenants.supplier_b), 404, "not-found")
    assert_problem(await http.get(f"/v1/suppliers/{tenants.a}/scorecard", headers=tenants.manager_1), 403, "forbidden")
    for headers in (tenants.terminal, tenants.app):
        assert_problem(await http.get(f"/v1/suppliers/{tenants.a}/scorecard", headers=headers), 403, "forbidden")


async def test_a_draft_is_edited_and_approved_by_buyers_only_and_returns_and_invoices_are_headquarters(
    gateway: RunningGateway, tenants: Tenants
) -> None:
    http = gateway.http
    await supplier_with_contract(http, tenants, tenants.a, "SKU-A1")
    await supplier_with_contract(http, tenants, tenants.b, "SKU-B1")
    new_supplier = {"supplier_id": f"{tenants.b}X", "code": "X", "name": "X"}
    for headers in (tenants.supplier_a, tenants.manager_1, tenants.terminal):
        assert_problem(await post(http, "/v1/suppliers", headers, new_supplier), 403, "forbidden")
    draft = await created(
        http,
        "/v1/purchase-orders",
        tenants.hq,
        {"supplier_id": tenants.a, "location_id": tenants.store_1, "lines": [{"sku": "SKU-A1", "ordered": "12"}]},
    )
    po_id, version = draft["po_id"], draft["version"]
    edit = {"lines": [{"sku": "SKU-A1", "ordered": "30"}], "promised_date": "2026-12-20", "expected_version": version}
    for headers in (tenants.supplier_a, tenants.supplier_b, tenants.manager_1, tenants.app):
        assert_problem(
            await http.patch(f"/v1/purchase-orders/{po_id}", json=edit, headers=headers | idempotency_key()),
            403,
            "forbidden",
        )
        assert_problem(
            await post(http, f"/v1/purchase-orders/{po_id}/approve", headers, {"expected_version": version}),
            403,
            "forbidden",
        )
    unchanged = (await http.get(f"/v1/purchase-orders/{po_id}", headers=tenants.hq)).json()
    assert (unchanged["status"], unchanged["version"], unchanged["lines"][0]["ordered"]) == ("draft", version, "12")
    # Another supplier never sees it.
    assert_problem(await http.get(f"/v1/purchase-orders/{po_id}", headers=tenants.supplier_b), 404, "not-found")
    edited = await http.patch(f"/v1/purchase-orders/{po_id}", json=edit, headers=tenants.hq | idempotency_key())
    assert edited.status_code == 200, edited.text
    assert (edited.json()["lines"][0]["ordered"], edited.json()["total"]) == ("30", {"fen": 10_500, "yuan": "105.00"})
    stale = await post(http, f"/v1/purchase-orders/{po_id}/approve", tenants.hq, {"expected_version": version})
    assert_problem(stale, 409, "concurrent-modification")
    await created(
        http, f"/v1/purchase-orders/{po_id}/approve", tenants.hq, {"expected_version": edited.json()["version"]}
    )
    await created(http, f"/v1/purchase-orders/{po_id}/send", tenants.hq)
    await created(http, f"/v1/purchase-orders/{po_id}/confirm", tenants.supplier_a, {"promised_date": "2026-12-20"})
    await created(
        http,
        "/v1/goods-receipts",
        tenants.hq,
        {
            "po_id": po_id,
            "location_id": tenants.store_1,
            "lines": [{"po_line_number": 1, "sku": "SKU-A1", "accepted": "30"}],
        },
    )

    # Returns to the vendor and invoices: headquarters only.
    back = {"lines": [{"po_line_number": 1, "quantity": "2", "reason": "leaking"}]}
    for headers in (tenants.supplier_a, tenants.supplier_b, tenants.manager_1, tenants.terminal):
        assert_problem(await post(http, f"/v1/purchase-orders/{po_id}/vendor-returns", headers, back), 403, "forbidden")
    returned = await created(http, f"/v1/purchase-orders/{po_id}/vendor-returns", tenants.hq, back)
    assert returned["purchase_order"]["lines"][0]["returned"] == "2"
    invoice = {
        "invoice_number": f"INV-{po_id}",
        "supplier_id": tenants.a,
        "po_id": po_id,
        "lines": [{"po_line_number": 1, "quantity": "28", "unit_cost_fen": 350}],
    }
    for headers in (tenants.supplier_a, tenants.manager_1, tenants.app):
        assert_problem(await post(http, "/v1/supplier-invoices", headers, invoice), 403, "forbidden")
    # An invoice naming another supplier for this order finds no such order.
    assert_problem(
        await post(http, "/v1/supplier-invoices", tenants.hq, invoice | {"supplier_id": tenants.b}), 404, "not-found"
    )
    matched = await created(http, "/v1/supplier-invoices", tenants.hq, invoice)
    assert matched["matched"] is True
    assert matched["lines"][0]["expected"] == {"fen": 9_800, "yuan": "98.00"}
