"""The gateway's OpenAPI document is a contract an SDK can be generated from and trusted.

Built from the application with every router (no connection is opened), the document is
walked as a client generator or a fuzzer reads it: integers bounded to their wire type,
stable readable operation ids, schema names an SDK can show, examples that exist in the
demo retailer, and the page-size cap the gateway enforces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from demodata import DemoRetailer
from gateway import inventory, members, pricing
from gateway.app import create_app
from gateway.http.problems import RETRY_AFTER

REF = "#/components/schemas/"
# What each protobuf scalar holds; an integer's OpenAPI format names the one it travels in.
WIRE_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
ROUTERS = [inventory.router, members.router, pricing.router]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(max_request_body_bytes=1024, routers=ROUTERS).openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def integer_schemas(document: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]) -> Iterator[Any]:
    """Every integer schema reachable from ``schema`` (through references), with where it is."""
    reference = schema.get("$ref")
    if reference:
        name = reference.removeprefix(REF)
        if name not in seen:
            seen.add(name)
            yield from integer_schemas(document, document["components"]["schemas"][name], name, seen)
        return
    kinds = schema.get("type")
    if kinds == "integer" or (isinstance(kinds, list) and "integer" in kinds):
        yield where, schema
    for name, child in schema.get("properties", {}).items():
        yield from integer_schemas(document, child, f"{where}.{name}", seen)
    for combinator in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for child in schema.get(combinator, []):
            yield from integer_schemas(document, child, where, seen)
    for nested in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(nested), dict):
            yield from integer_schemas(document, schema[nested], f"{where}[]", seen)


def request_integers(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every integer a request may carry: in a query, path or header parameter, or in a body."""
    for method, path, operation in operations(document):
        seen: set[str] = set()
        for parameter in operation.get("parameters", []):
            where = f"{method} {path} {parameter['in']}.{parameter['name']}"
            yield from integer_schemas(document, parameter["schema"], where, seen)
        for media in operation.get("requestBody", {}).get("content", {}).values():
            yield from integer_schemas(document, media["schema"], f"{method} {path} body", seen)


def test_every_integer_a_request_may_carry_is_bounded_to_its_wire_type(document: dict[str, Any]) -> None:
    found = list(request_integers(document))
    assert len(found) >= 10, found  # the walk reaches parameters and nested bodies
    unbounded = []
    for where, schema in found:
        wire = WIRE_RANGES.get(schema.get("format", ""))
        lowest = schema.get("minimum", schema.get("exclusiveMinimum"))
        highest = schema.get("maximum", schema.get("exclusiveMaximum"))
        if wire is None or not isinstance(lowest, int) or not isinstance(highest, int):
            unbounded.append((where, schema))
            continue
        if not wire[0] <= lowest <= highest <= wire[1]:
            unbounded.append((where, schema))
    assert unbounded == [], "integers without a wire format or exact bounds within it"
    since_version = [schema for where, schema in found if where == "GET /v1/items query.since_version"]
    assert since_version == [since_version[0] | {"format": "int64", "minimum": 0, "maximum": 2**63 - 1}]


def test_every_operation_has_a_unique_camel_case_operation_id_named_after_its_route(
    document: dict[str, Any],
) -> None:
    ids = [operation.get("operationId", "") for _, _, operation in operations(document)]
    assert [name for name in ids if not re.fullmatch(r"[a-z]+([A-Z][a-z0-9]*)*", name)] == []
    assert len(ids) == len(set(ids)), sorted(name for name in ids if ids.count(name) > 1)
    by_route = {f"{method} {path}": operation["operationId"] for method, path, operation in operations(document)}
    assert by_route["POST /v1/reservations"] == "reserveStock"
    assert by_route["POST /v1/auth/token"] == "issueToken"
    assert by_route["GET /v1/pos/price-book"] == "posPriceBook"


def test_every_operation_that_needs_a_token_documents_what_a_token_can_be_refused_with(
    document: dict[str, Any],
) -> None:
    """A route names only its own problems (404, 409); the document adds what every route behind
    a token may answer: no or a refused token, a missing scope or another's object, a rate limit."""
    secured = [
        (method, path, operation) for method, path, operation in operations(document) if operation.get("security")
    ]
    assert len(secured) >= 40
    undocumented = [
        f"{method} {path}"
        for method, path, operation in secured
        if not {"401", "403", "429"} <= operation["responses"].keys()
        or RETRY_AFTER not in operation["responses"]["429"].get("headers", {})
    ]
    assert undocumented == []
    token = document["paths"]["/v1/auth/token"]["post"]
    assert "security" not in token
    assert "403" not in token["responses"]
    assert "401" not in document["paths"]["/healthz"]["get"]["responses"]
    reserve = document["paths"]["/v1/reservations"]["post"]["responses"]
    assert {"401", "403", "409", "422", "429"} <= reserve.keys()
    assert reserve["401"]["content"]["application/problem+json"]["schema"]["$ref"] == REF + "Problem"


def test_schemas_carry_the_names_an_sdk_would_show(document: dict[str, Any]) -> None:
    names = list(document["components"]["schemas"])
    generated_looking = [
        name
        for name in names
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name)
        or "V1" in name
        or name.startswith("Body")
        or re.search(r"(In|Out|Input|Output)$", name)
    ]
    assert generated_looking == []
    assert {"Reservation", "ReservationRequest", "TokenRequest", "Problem", "ValidationProblem"} <= set(names)
    token_body = document["paths"]["/v1/auth/token"]["post"]["requestBody"]["content"]
    assert {media["schema"]["$ref"] for media in token_body.values()} == {REF + "TokenRequest"}
    references = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(document)))
    assert references <= set(names)


def test_every_example_names_a_sku_store_or_supplier_of_the_demo_retailer(document: dict[str, Any]) -> None:
    retailer = DemoRetailer()
    known = (
        {sku.sku_code for sku in retailer.skus}
        | {location.location_id for location in retailer.locations}
        | {supplier.supplier_id for supplier in retailer.suppliers}
        | {f"M{number:07d}" for number in range(1, retailer.scale.member_count + 1)}
    )
    # Shapes of the demo's ids: SKU00030, S001, W01, ONLINE01, SUP001, M0000001 (and look-alikes such as SKU-000123).
    shapes = re.compile(r"\b(SKU-?[0-9]+|S[0-9]{3}|W[0-9]{2}|ONLINE[0-9]{2}|SUP[0-9]{3}|M[0-9]{7})\b")
    named = set(shapes.findall(json.dumps(document, ensure_ascii=False)))
    assert sorted(named - known) == []
    assert {"SKU00030", "S001", "SUP001"} <= named


def test_every_list_route_states_the_deployments_page_size_cap() -> None:
    cap = 137  # MAX_PAGE_SIZE of this deployment
    document = create_app(max_request_body_bytes=1024, max_page_size=cap, routers=ROUTERS).openapi()
    listed = {}
    for method, path, operation in operations(document):
        names = {parameter["name"]: parameter for parameter in operation.get("parameters", [])}
        if "page_token" in names or "page_size" in names:
            listed[f"{method} {path}"] = names["page_size"]["schema"]
    assert len(listed) == 10, sorted(listed)
    assert {route: (schema["minimum"], schema["maximum"]) for route, schema in listed.items()} == {
        route: (1, cap) for route in listed
    }
