"""The one paging rule through the real gateway: one page-size cap, opaque signed page tokens.

A stand-in list route (the shape every list route has: ``page: Paging``, a backend cursor
that is a plain key) shows the rule itself; the inventory and pricing tests show it on
their routes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query

from gateway.http.paging import Paging
from gateway.settings import GatewaySettings
from tests.support.gateway import RunningGateway, assert_problem, gateway_schema, gateway_settings, running_gateway

__all__ = ["gateway_schema", "gateway_settings"]

SHELF = [f"SKU{number:05d}" for number in range(1, 8)]


def shelf_router() -> APIRouter:
    """A list route whose backend pages the SKUs of one aisle by SKU, its cursor the last SKU sent."""
    router = APIRouter()

    @router.get("/test/aisles/{aisle}/skus")
    async def list_aisle(aisle: str, page: Paging, colour: str = Query(default="any")) -> dict[str, Any]:
        rest = [sku for sku in SHELF if sku > page.cursor]
        chosen = rest[: page.size]
        cursor = chosen[-1] if len(rest) > page.size else ""
        return {"skus": chosen, "cursor_seen": page.cursor, "next_page_token": page.next_token(cursor)}

    return router


async def pages(gateway: RunningGateway, path: str, **query: Any) -> list[list[str]]:
    """Every page of a listing, following next_page_token to the end."""
    found, token = [], None
    while True:
        params = query | ({"page_token": token} if token else {})
        answer = await gateway.http.get(path, params=params)
        assert answer.status_code == 200, answer.text
        found.append(answer.json()["skus"])
        token = answer.json()["next_page_token"]
        if token is None:
            return found


async def test_page_tokens_lead_through_a_listing_and_nothing_else_passes_for_one(
    gateway_settings: Callable[..., GatewaySettings],
) -> None:
    async with running_gateway(gateway_settings(), routers=[shelf_router()]) as gateway:
        walked = await pages(gateway, "/test/aisles/A1/skus", page_size=3, colour="red")
        first = (await gateway.http.get("/test/aisles/A1/skus", params={"page_size": 3})).json()
        token = first["next_page_token"]
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        tampered = base64.urlsafe_b64encode(raw[:-1] + b"9").rstrip(b"=").decode()
        refused = {
            "garbage": await gateway.http.get("/test/aisles/A1/skus", params={"page_token": "not-a-token"}),
            "a bare key": await gateway.http.get("/test/aisles/A1/skus", params={"page_token": "SKU00003"}),
            "tampered": await gateway.http.get("/test/aisles/A1/skus", params={"page_token": tampered}),
            "another listing": await gateway.http.get("/test/aisles/B2/skus", params={"page_token": token}),
            "another filter": await gateway.http.get(
                "/test/aisles/A1/skus", params={"page_token": token, "colour": "blue"}
            ),
        }
        resized = await gateway.http.get("/test/aisles/A1/skus", params={"page_token": token, "page_size": 4})
    assert walked == [SHELF[0:3], SHELF[3:6], SHELF[6:7]]
    assert SHELF[2] not in token  # opaque: not the backend's key in clear
    assert (resized.json()["skus"], resized.json()["cursor_seen"]) == (SHELF[3:7], SHELF[2])
    for case, answer in refused.items():
        body = assert_problem(answer, 422, "invalid-page-token")
        assert body["errors"][0]["location"] == "query.page_token", case


async def test_the_page_size_cap_is_one_setting_named_in_the_refusal(
    gateway_settings: Callable[..., GatewaySettings],
) -> None:
    async with running_gateway(gateway_settings(max_page_size=4), routers=[shelf_router()]) as gateway:
        default = await gateway.http.get("/test/aisles/A1/skus")
        largest = await gateway.http.get("/test/aisles/A1/skus", params={"page_size": 4})
        over = [await gateway.http.get("/test/aisles/A1/skus", params={"page_size": size}) for size in (5, 0, 10**30)]
        documented = (await gateway.http.get("/openapi.json")).json()
    assert default.json()["skus"] == SHELF[:4]  # the default (50) is lowered to the cap
    assert largest.json()["skus"] == SHELF[:4]
    for answer in over:
        body = assert_problem(answer, 422, "validation-error")
        assert body["errors"][0] == {
            "location": "query.page_size",
            "message": "page_size must be from 1 to 4",
            "type": "page_size_out_of_range",
        }
    parameters = documented["paths"]["/test/aisles/{aisle}/skus"]["get"]["parameters"]
    (page_size,) = [parameter["schema"] for parameter in parameters if parameter["name"] == "page_size"]
    assert (page_size["minimum"], page_size["maximum"], page_size["default"]) == (1, 4, 4)
