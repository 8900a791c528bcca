"""The alerts routes in the gateway's OpenAPI document: the same contract rules as every other
router's, one catalogued scope per operation with its refusals documented, and the scopes held by
the staff roles that act on the feed (never by terminals, apps or suppliers)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import alerts, inventory, marketing, members, pricing, supply
from gateway.app import create_app
from gateway.domain.clients import ClientKind, StaffRole
from gateway.domain.scopes import (
    ALERT_WEBHOOKS_WRITE,
    ALERTS_READ,
    ALERTS_WRITE,
    CATALOGUE,
    default_scopes,
    grantable_scopes,
)
from tests.unit.test_gateway_openapi import (
    test_every_example_names_a_sku_store_or_supplier_of_the_demo_retailer,
    test_every_integer_a_request_may_carry_is_bounded_to_its_wire_type,
    test_every_operation_has_a_unique_camel_case_operation_id_named_after_its_route,
    test_schemas_carry_the_names_an_sdk_would_show,
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    routers = [inventory.router, members.router, pricing.router, marketing.router, supply.router, alerts.router]
    return create_app(max_request_body_bytes=1024, routers=routers).openapi()


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
def test_with_the_alerts_routes_the_document_keeps_every_rule_of_the_others(
    document: dict[str, Any], rule: Any
) -> None:
    rule(document)


def test_every_alerts_operation_names_one_catalogued_scope_and_documents_its_refusals(
    document: dict[str, Any],
) -> None:
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        if path.startswith(("/v1/alerts", "/v1/alert-webhooks"))
        for method, operation in item.items()
    }
    assert set(operations) == {
        "GET /v1/alerts",
        "GET /v1/alerts/{alert_id}",
        "POST /v1/alerts/{alert_id}/acknowledge",
        "POST /v1/alerts/{alert_id}/resolve",
        "GET /v1/alert-webhooks",
        "POST /v1/alert-webhooks",
        "PUT /v1/alert-webhooks/{webhook_id}",
        "DELETE /v1/alert-webhooks/{webhook_id}",
    }
    for route, operation in operations.items():
        scopes = [scope for need in operation["security"] for scope in need["client_credentials"]]
        assert len(scopes) == 1, (route, scopes)
        assert scopes[0] in CATALOGUE, route
        assert {"401", "403"} <= operation["responses"].keys(), route
        assert operation.get("description"), route
        if not route.startswith("GET"):
            headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            assert "Idempotency-Key" in headers, route


def test_the_feed_is_for_staff_and_webhooks_for_headquarters() -> None:
    feed = {ALERTS_READ, ALERTS_WRITE, ALERT_WEBHOOKS_WRITE}
    assert default_scopes(ClientKind.STAFF, StaffRole.HEADQUARTERS) >= feed
    assert default_scopes(ClientKind.STAFF, StaffRole.STORE_MANAGER) & feed == {ALERTS_READ, ALERTS_WRITE}
    assert default_scopes(ClientKind.STAFF, StaffRole.STORE_GUIDE) & feed == {ALERTS_READ}
    for kind in (ClientKind.APP, ClientKind.POS_TERMINAL, ClientKind.SUPPLIER_USER):
        assert not grantable_scopes(kind) & feed
    assert ALERT_WEBHOOKS_WRITE not in grantable_scopes(ClientKind.STAFF, StaffRole.STORE_MANAGER)
