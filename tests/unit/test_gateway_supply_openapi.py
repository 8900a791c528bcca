"""The supply routes in the gateway's OpenAPI document: the same contract rules as every other
router's (wire-bounded integers, SDK-friendly names, unique operation ids, demo examples), one
scope per operation, and money documented as fen."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import inventory, marketing, members, pricing, supply
from gateway.app import create_app
from gateway.domain.scopes import CATALOGUE
from tests.unit.test_gateway_openapi import (
    test_every_example_names_a_sku_store_or_supplier_of_the_demo_retailer,
    test_every_integer_a_request_may_carry_is_bounded_to_its_wire_type,
    test_every_operation_has_a_unique_camel_case_operation_id_named_after_its_route,
    test_schemas_carry_the_names_an_sdk_would_show,
)

SUPPLY_PREFIXES = (
    "/v1/suppliers",
    "/v1/contracts",
    "/v1/purchase-orders",
    "/v1/goods-receipts",
    "/v1/supplier-invoices",
    "/v1/statements",
    "/v1/statement-runs",
    "/v1/settlement",
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    routers = [inventory.router, members.router, pricing.router, marketing.router, supply.router]
    return create_app(max_request_body_bytes=1024, routers=routers).openapi()


def supply_operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        if path.startswith(SUPPLY_PREFIXES)
        for method, operation in item.items()
    }


@pytest.mark.parametrize(
    "rule",
    [
        test_every_integer_a_request_may_carry_is_bounded_to_its_wire_type,
        test_every_operation_has_a_unique_camel_case_operation_id_named_after_its_route,
        test_schemas_carry_the_names_an_sdk_would_show,
        test_every_example_names_a_sku_store_or_supplier_of_the_demo_retailer,
    ],
    ids=lambda rule: rule.__name__.removeprefix("test_"),
)
def test_with_the_supply_routes_the_document_keeps_every_rule_of_the_others(
    document: dict[str, Any], rule: Any
) -> None:
    rule(document)


def test_every_supply_operation_names_one_catalogued_scope_and_documents_its_refusals(
    document: dict[str, Any],
) -> None:
    operations = supply_operations(document)
    assert len(operations) >= 30, sorted(operations)
    for route in (
        "GET /v1/suppliers/{supplier_id}/purchase-orders",
        "GET /v1/purchase-orders/{po_id}",
        "POST /v1/purchase-orders/{po_id}/confirm",
        "GET /v1/suppliers/{supplier_id}/statements",
        "GET /v1/statements/{statement_id}",
        "POST /v1/statements/{statement_id}/confirm",
        "POST /v1/statements/{statement_id}/dispute",
        "GET /v1/suppliers/{supplier_id}/scorecard",
        "GET /v1/suppliers/{supplier_id}/sell-through",
        "POST /v1/goods-receipts",
        "POST /v1/statement-runs",
        "GET /v1/statements/{statement_id}/export",
        "GET /v1/settlement/check",
        "PATCH /v1/purchase-orders/{po_id}",
    ):
        assert route in operations, route
    for route, operation in operations.items():
        scopes = [scope for need in operation["security"] for scope in need["client_credentials"]]
        assert len(scopes) == 1, (route, scopes)
        assert scopes[0] in CATALOGUE, route
        assert {"401", "403"} <= operation["responses"].keys(), route
        assert operation.get("summary"), route
        assert operation.get("description"), route
        if route.startswith(("POST", "PUT", "PATCH")):
            headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            assert "Idempotency-Key" in headers, route


def test_money_is_documented_as_fen_with_its_rounding(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    amount = schemas["Amount"]["properties"]
    assert amount["fen"]["format"] == "int64"
    text = json.dumps({name: schemas[name] for name in schemas}, ensure_ascii=False)
    assert "rounded half up" in text
    # Every amount a request carries is whole fen, never a float or a yuan string.
    for model, field in (
        ("ContractItemRequest", "unit_cost_fen"),
        ("FeeRequest", "amount_fen"),
        ("InvoiceLineRequest", "unit_cost_fen"),
        ("RebateTierRequest", "threshold_fen"),
    ):
        schema = schemas[model]["properties"][field]
        kinds = [schema, *schema.get("anyOf", [])]
        integers = [(k["format"], k["minimum"]) for k in kinds if k.get("type") == "integer"]
        assert integers in ([("int64", 0)], [("int64", 1)]), (model, field, schema)
    export = document["paths"]["/v1/statements/{statement_id}/export"]["get"]["responses"]["200"]["content"]
    assert {"text/csv", "application/json"} <= export.keys()
