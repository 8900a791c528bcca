"""Pricing through the gateway over HTTP: catalogue, price rules, scheduled changes, effective
prices, the POS price book with ETags, shelf labels and markdowns; who may do what, and bad
input that changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from retail.pricing.v1 import pricing_service_pb2 as pb

from gateway.domain.clients import ClientKind, StaffRole
from gateway.settings import GatewaySettings
from servicekit.db import units_of_work
from services.pricing.bootstrap import PricingApp
from services.pricing.service_layer.markdowns import OverstockAlert
from tests.integration.pricing.conftest import Clock, barcode_for, put_item, put_store, set_prices
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
async def gateway(app: PricingApp, gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(gateway_backends=f"pricing=127.0.0.1:{app.server.bound_port}", rate_limit_burst=1000)
    async with running_gateway(settings) as running:
        yield running


@dataclass(frozen=True)
class Chain:
    """Two stores, two suppliers, and a client of every kind that pricing serves."""

    store_a: str
    store_b: str
    supplier_a: str
    supplier_b: str
    headquarters: dict[str, str]
    manager_a: dict[str, str]
    manager_b: dict[str, str]
    guide_a: dict[str, str]
    till_a: dict[str, str]
    till_b: dict[str, str]
    app: dict[str, str]
    supplier_user_a: dict[str, str]


@pytest.fixture
async def chain(app: PricingApp, gateway: RunningGateway, unique: str) -> Chain:
    store_a, store_b = f"A{unique}", f"B{unique}"
    await put_store(app, store_a)
    await put_store(app, store_b)
    staff = ClientKind.STAFF
    return Chain(
        store_a=store_a,
        store_b=store_b,
        supplier_a=f"SA{unique}",
        supplier_b=f"SB{unique}",
        headquarters=await gateway.client_headers(staff, staff_role=StaffRole.HEADQUARTERS),
        manager_a=await gateway.client_headers(staff, store_id=store_a, staff_role=StaffRole.STORE_MANAGER),
        manager_b=await gateway.client_headers(staff, store_id=store_b, staff_role=StaffRole.STORE_MANAGER),
        guide_a=await gateway.client_headers(staff, store_id=store_a, staff_role=StaffRole.STORE_GUIDE),
        till_a=await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store_a),
        till_b=await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store_b),
        app=await gateway.client_headers(ClientKind.APP),
        supplier_user_a=await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id=f"SA{unique}"),
    )


async def put(gateway: RunningGateway, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await gateway.http.put(path, json=body, headers=headers | idempotency_key())


async def post(gateway: RunningGateway, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await gateway.http.post(path, json=body, headers=headers | idempotency_key())


def moment(clock: Clock, **delta: float) -> str:
    return (clock.now() + timedelta(**delta)).isoformat()


def item_body(supplier_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": "伊利纯牛奶 250ml",
        "category": "C0101",
        "barcode": barcode_for(supplier_id),
        "unit": "piece",
        "cost": "5.00",
        "supplier_id": supplier_id,
    } | fields


async def priced_sku(app: PricingApp, sku: str, base_fen: int = 1000, **item: Any) -> str:
    await put_item(app, sku, cost_fen=min(500, base_fen // 2), **item)
    await set_prices(app, sku, base_fen)
    return sku


async def book(gateway: RunningGateway, till: dict[str, str], **params: Any) -> httpx.Response:
    etag = params.pop("etag", None)
    headers = till | ({"If-None-Match": etag} if etag else {})
    return await gateway.http.get("/v1/pos/price-book", params=params, headers=headers)


def entries_by_sku(answer: httpx.Response) -> dict[str, dict[str, Any]]:
    return {entry["sku"]: entry for entry in answer.json()["entries"]}


# ---- stores and the catalogue ------------------------------------------------------------------------


async def test_headquarters_registers_stores_and_items_and_a_retried_put_replays(
    gateway: RunningGateway, chain: Chain, unique: str
) -> None:
    hq = chain.headquarters
    store = f"N{unique}"
    created = await put(gateway, f"/v1/stores/{store}", {"name": "新店", "price_groups": ["east"]}, hq)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "store_id": store,
        "name": "新店",
        "price_groups": ["east"],
        "currency": "CNY",
        "label_station_kind": None,
        "label_station_url": None,
        "price_book_version": created.json()["price_book_version"],
    }
    changed = await put(
        gateway,
        f"/v1/stores/{store}",
        {"name": "新店", "label_station_kind": "batch", "label_station_url": "http://10.0.0.9"},
        hq,
    )
    assert (changed.status_code, changed.json()["label_station_kind"]) == (200, "batch"), changed.text

    sku = f"SKU{unique}"
    key = idempotency_key()
    body = item_body(chain.supplier_a, store_ids=[store], cost="4.35")
    first = await gateway.http.put(f"/v1/items/{sku}", json=body, headers=hq | key)
    assert first.status_code == 201, first.text
    assert (first.json()["cost"], first.json()["currency"], first.json()["version"]) == ("4.35", "CNY", 1)
    replay = await gateway.http.put(f"/v1/items/{sku}", json=body, headers=hq | key)
    assert (replay.status_code, replay.json(), replay.headers.get("Idempotent-Replayed")) == (201, first.json(), "true")
    renamed = await put(gateway, f"/v1/items/{sku}", body | {"name": "伊利纯牛奶 250ml×12"}, hq)
    assert (renamed.status_code, renamed.json()["version"]) == (200, 2), renamed.text

    listed = await gateway.http.get("/v1/items", params={"store_id": store}, headers=hq)
    assert [(item["sku"], item["name"]) for item in listed.json()["items"]] == [(sku, "伊利纯牛奶 250ml×12")]
    assert listed.json()["next_page_token"] is None


async def test_only_headquarters_writes_stores_items_and_price_rules(
    app: PricingApp, gateway: RunningGateway, chain: Chain, unique: str
) -> None:
    sku = await priced_sku(app, f"SKU{unique}")
    prices = {"base_price": "1.00"}
    for headers in (chain.app, chain.till_a, chain.manager_a, chain.guide_a, chain.supplier_user_a):
        assert_problem(await put(gateway, f"/v1/prices/{sku}", prices, headers), 403, "forbidden")
        assert_problem(await put(gateway, f"/v1/items/{sku}", item_body(chain.supplier_a), headers), 403, "forbidden")
        assert_problem(await put(gateway, f"/v1/stores/{chain.store_a}", {"name": "x"}, headers), 403, "forbidden")
    # A store manager registered with the headquarters scopes is still not headquarters.
    client_id, secret = await gateway.register(
        ClientKind.STAFF,
        store_id=chain.store_a,
        staff_role=StaffRole.STORE_MANAGER,
        scopes=frozenset({"prices:write", "catalogue:write", "stores:write"}),
    )
    elevated = {"Authorization": f"Bearer {await gateway.token(client_id, secret)}"}
    assert_problem(await put(gateway, f"/v1/prices/{sku}", prices, elevated), 403, "forbidden")
    assert_problem(await put(gateway, f"/v1/items/{sku}", item_body(chain.supplier_a), elevated), 403, "forbidden")
    unchanged = await gateway.http.get(f"/v1/prices/{sku}", headers=chain.headquarters)
    assert unchanged.json()["base_price"] == "10.00"


async def test_catalogue_listing_is_bound_to_the_callers_store_or_supplier(
    app: PricingApp, gateway: RunningGateway, chain: Chain, unique: str
) -> None:
    everywhere = await priced_sku(app, f"E{unique}", supplier_id=chain.supplier_a)
    only_b = await priced_sku(app, f"O{unique}", store_ids=[chain.store_b], supplier_id=chain.supplier_b)

    async def skus(headers: dict[str, str], **params: str) -> set[str]:
        answer = await gateway.http.get("/v1/items", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return {item["sku"] for item in answer.json()["items"]}

    assert await skus(chain.app) == {everywhere, only_b}
    assert await skus(chain.app, store_id=chain.store_a) == {everywhere}
    assert await skus(chain.till_a) == {everywhere}
    assert await skus(chain.till_b) == {everywhere, only_b}
    assert await skus(chain.guide_a) == {everywhere}
    assert await skus(chain.headquarters, supplier_id=chain.supplier_b) == {only_b}
    assert await skus(chain.supplier_user_a) == {everywhere}
    assert await skus(chain.supplier_user_a, store_id=chain.store_b) == {everywhere}
    for headers, params in (
        (chain.till_a, {"store_id": chain.store_b}),
        (chain.manager_a, {"store_id": chain.store_b}),
        (chain.supplier_user_a, {"supplier_id": chain.supplier_b}),
    ):
        assert_problem(await gateway.http.get("/v1/items", params=params, headers=headers), 403, "forbidden")


# ---- price rules --------------------------------------------------------------------------------------


async def test_prices_are_set_as_one_set_and_read_back_with_rule_ids_and_label_text(
    app: PricingApp, gateway: RunningGateway, chain: Chain, clock: Clock, unique: str
) -> None:
    sku = f"SKU{unique}"
    await put_item(app, sku, cost_fen=500)
    body = {
        "base_price": "12.50",
        "overrides": [
            {"store_id": chain.store_b, "price": "11.90"},
            {"channel": "online", "member_tier": "gold", "price": "11.00", "priority": 1},
        ],
        "promotions": [
            {
                "name": "周末八折",
                "valid_from": moment(clock, hours=-1),
                "valid_to": moment(clock, days=2),
                "percent_off": "20",
            },
            {
                "name": "第二件半价",
                "store_id": chain.store_a,
                "valid_from": moment(clock, hours=-1),
                "valid_to": moment(clock, days=2),
                "priority": 5,
                "multi_buy": {"quantity": 2, "bundle_price": "18.75"},
            },
        ],
    }
    answer = await put(gateway, f"/v1/prices/{sku}", body, chain.headquarters)
    assert answer.status_code == 200, answer.text
    prices = answer.json()
    assert (prices["sku"], prices["currency"], prices["base_price"]) == (sku, "CNY", "12.50")
    overrides = {(o["store_id"], o["channel"], o["member_tier"], o["price"]) for o in prices["overrides"]}
    assert overrides == {(chain.store_b, None, None, "11.90"), (None, "online", "gold", "11.00")}
    assert all(rule["rule_id"] for rule in prices["overrides"] + prices["promotions"])
    by_name = {promotion["name"]: promotion for promotion in prices["promotions"]}
    assert (by_name["周末八折"]["percent_off"], by_name["周末八折"]["display_text"]) == ("20", "8折")
    assert by_name["第二件半价"]["multi_buy"] == {"quantity": 2, "bundle_price": "18.75"}
    assert by_name["第二件半价"]["display_text"]
    for reader in (chain.headquarters, chain.manager_a, chain.app):
        read = await gateway.http.get(f"/v1/prices/{sku}", headers=reader)
        assert read.json() == prices, read.text
    assert_problem(await gateway.http.get(f"/v1/prices/{sku}", headers=chain.supplier_user_a), 403, "forbidden")
    assert_problem(await gateway.http.get(f"/v1/prices/NO{unique}", headers=chain.app), 404, "not-found")


async def test_bad_prices_are_refused_naming_the_field_and_change_nothing(
    app: PricingApp, gateway: RunningGateway, chain: Chain, clock: Clock, unique: str
) -> None:
    sku = await priced_sku(app, f"SKU{unique}")
    before = (await gateway.http.get(f"/v1/prices/{sku}", headers=chain.headquarters)).json()
    promotion = {
        "name": "特价",
        "valid_from": moment(clock, hours=1),
        "valid_to": moment(clock, days=1),
        "fixed_price": "8.00",
    }
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"base_price": "-1.00"}, "body.base_price"),
        ({"base_price": "12.345"}, "body.base_price"),
        ({"base_price": "1e3"}, "body.base_price"),
        ({"base_price": 12.5}, "body.base_price"),
        ({"base_price": "１２.00"}, "body.base_price"),  # full-width digits
        ({"base_price": "12.00", "currency": "cny"}, "body.currency"),
        ({"base_price": "12.00", "discount": "1"}, "body.discount"),
        ({"base_price": "12.00", "overrides": [{"price": "-0.01"}]}, "body.overrides.0.price"),
        (
            {"base_price": "12.00", "overrides": [{"store_id": chain.store_a, "store_group": "east", "price": "9.00"}]},
            "body.overrides.0",
        ),
        (
            {"base_price": "12.00", "overrides": [{"price": "9.00", "valid_from": "2030-01-01T00:00:00"}]},
            "body.overrides.0.valid_from",
        ),
        ({"base_price": "12.00", "promotions": [promotion | {"percent_off": "10"}]}, "body.promotions.0"),
        (
            {"base_price": "12.00", "promotions": [{k: v for k, v in promotion.items() if k != "fixed_price"}]},
            "body.promotions.0",
        ),
        (
            {"base_price": "12.00", "promotions": [promotion | {"valid_to": "2030-01-01T00:00:00"}]},
            "body.promotions.0.valid_to",
        ),
        (
            {"base_price": "12.00", "promotions": [promotion | {"multi_buy": None, "fixed_price": "8.001"}]},
            "body.promotions.0.fixed_price",
        ),
    ]
    for body, location in refusals:
        problem = assert_problem(
            await put(gateway, f"/v1/prices/{sku}", body, chain.headquarters), 422, "validation-error"
        )
        assert any(error["location"].startswith(location) for error in problem["errors"]), (body, problem)

    # What only the service can judge: overlapping promotions, a price below cost, an unknown SKU.
    overlapping = {"base_price": "12.00", "promotions": [promotion, promotion | {"fixed_price": "7.00"}]}
    problem = assert_problem(
        await put(gateway, f"/v1/prices/{sku}", overlapping, chain.headquarters), 422, "invalid-argument"
    )
    assert problem["reason"] == "overlapping-rules"
    below_cost = await put(gateway, f"/v1/prices/{sku}", {"base_price": "4.00"}, chain.headquarters)
    assert assert_problem(below_cost, 409, "failed-precondition")["reason"] == "below-cost"
    unknown = await put(gateway, f"/v1/prices/NO{unique}", {"base_price": "4.00"}, chain.headquarters)
    assert assert_problem(unknown, 404, "not-found")["reason"] == "unknown-sku"
    assert (await gateway.http.get(f"/v1/prices/{sku}", headers=chain.headquarters)).json() == before

    accepted = await put(
        gateway,
        f"/v1/prices/{sku}",
        {"base_price": "4.00", "guard_rail_override": {"reason": "clearance, ticket 81"}},
        chain.headquarters,
    )
    assert (accepted.status_code, accepted.json()["base_price"]) == (200, "4.00"), accepted.text


# ---- effective prices ---------------------------------------------------------------------------------


async def test_effective_prices_and_baskets_follow_store_channel_tier_and_moment(
    app: PricingApp, gateway: RunningGateway, chain: Chain, clock: Clock, unique: str
) -> None:
    sku, other = f"SKU{unique}", f"OTH{unique}"
    await put_item(app, sku, cost_fen=500)
    await priced_sku(app, other, base_fen=300, unit=pb.UNIT_KG)
    promotions = [
        {
            "name": "金卡八折",
            "member_tier": "gold",
            "valid_from": moment(clock, hours=-1),
            "valid_to": moment(clock, days=1),
            "percent_off": "20",
        },
        {
            "name": "两件 18 元",
            "valid_from": moment(clock, days=3),
            "valid_to": moment(clock, days=4),
            "multi_buy": {"quantity": 2, "bundle_price": "18.00"},
        },
    ]
    body = {
        "base_price": "10.00",
        "overrides": [{"store_id": chain.store_b, "price": "9.50"}],
        "promotions": promotions,
    }
    assert (await put(gateway, f"/v1/prices/{sku}", body, chain.headquarters)).status_code == 200

    async def effective(headers: dict[str, str], **params: str) -> dict[str, Any]:
        answer = await gateway.http.get("/v1/prices/effective", params={"sku": sku} | params, headers=headers)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    plain = await effective(chain.app, store_id=chain.store_a)
    assert (plain["unit_price"], plain["regular_price"], plain["currency"], plain["promotion"]) == (
        "10.00",
        "10.00",
        "CNY",
        None,
    )
    assert (plain["quantity"], plain["line_total"], plain["promotion_applied"]) == ("1", "10.00", False)
    assert plain["regular_rule_id"]
    assert plain["explanation"]
    assert (await effective(chain.till_b))["unit_price"] == "9.50"  # a terminal's own store by default
    gold = await effective(chain.till_a, tier="gold", quantity="3")
    assert (gold["unit_price"], gold["line_total"], gold["promotion_applied"]) == ("8.00", "24.00", True)
    assert gold["promotion"]["name"] == "金卡八折"
    later = await effective(chain.headquarters, store_id=chain.store_a, at=moment(clock, days=3, hours=1), quantity="2")
    assert (later["line_total"], later["promotion"]["name"], later["promotion_applied"]) == (
        "18.00",
        "两件 18 元",
        True,
    )

    basket = await gateway.http.post(
        "/v1/prices/effective/basket",
        headers=chain.guide_a,
        json={
            "tier": "gold",
            "lines": [{"sku": sku, "quantity": "2"}, {"sku": other, "quantity": "1.5"}],
        },
    )
    assert basket.status_code == 200, basket.text
    assert [(line["sku"], line["line_total"]) for line in basket.json()["lines"]] == [(sku, "16.00"), (other, "4.50")]
    assert (basket.json()["total"], basket.json()["regular_total"], basket.json()["currency"]) == (
        "20.50",
        "24.50",
        "CNY",
    )


async def test_concurrent_baskets_share_batched_calls_and_each_gets_its_own_answer(
    app: PricingApp, gateway: RunningGateway, chain: Chain, unique: str
) -> None:
    skus = [await priced_sku(app, f"SKU{unique}{index}", base_fen=1000 + index) for index in range(4)]
    baskets: list[dict[str, Any]] = [
        {"store_id": chain.store_a, "lines": [{"sku": sku, "quantity": str(1 + n % 3)} for sku in skus[n % 4 :]]}
        for n in range(24)
    ]
    baskets[5]["lines"].append({"sku": f"NO{unique}", "quantity": "1"})  # refused alone: the others are answered
    calls_before, baskets_before = gateway.resources.basket_prices.stats

    async def price(basket: dict[str, Any]) -> httpx.Response:
        return await gateway.http.post("/v1/prices/effective/basket", json=basket, headers=chain.app)

    together = await asyncio.gather(*(price(basket) for basket in baskets))

    calls, priced = gateway.resources.basket_prices.stats
    assert priced - baskets_before == len(baskets)
    assert calls - calls_before < len(baskets)  # coalesced: fewer calls than baskets
    assert_problem(together[5], 404, "not-found")
    for index, (basket, answer) in enumerate(zip(baskets, together, strict=True)):
        if index != 5:
            alone = await price(basket)  # one at a time: a batch of one
            assert (answer.status_code, answer.content) == (200, alone.content)
            assert answer.headers["content-type"] == "application/json"
    assert together[0].json()["total"] == "40.06"


async def test_terminals_and_store_staff_ask_prices_of_their_own_store_only(
    app: PricingApp, gateway: RunningGateway, chain: Chain, unique: str
) -> None:
    sku = await priced_sku(app, f"SKU{unique}")
    params = {"sku": sku, "store_id": chain.store_b}
    for headers in (chain.till_a, chain.guide_a, chain.manager_a, chain.supplier_user_a):
        assert_problem(await gateway.http.get("/v1/prices/effective", params=params, headers=headers), 403, "forbidden")
        basket = {"store_id": chain.store_b, "lines": [{"sku": sku, "quantity": "1"}]}
        assert_problem(
            await gateway.http.post("/v1/prices/effective/basket", json=basket, headers=headers), 403, "forbidden"
        )
    for headers in (chain.till_b, chain.manager_b, chain.app, chain.headquarters):
        answer = await gateway.http.get("/v1/prices/effective", params=params, headers=headers)
        assert (answer.status_code, answer.json().get("unit_price")) == (200, "10.00"), answer.text
    # Clients bound to no store name one.
    no_store = await gateway.http.get("/v1/prices/effective", params={"sku": sku}, headers=chain.app)
    assert assert_problem(no_store, 422, "validation-error")["errors"][0]["location"] == "query.store_id"


async def test_bad_price_questions_are_refused(
    app: PricingApp, gateway: RunningGateway, chain: Chain, unique: str
) -> None:
    sku = await priced_sku(app, f"SKU{unique}")
    for params in (
        {"sku": sku, "at": "2030-01-01T00:00:00"},  # no offset
        {"sku": sku, "channel": "fax"},
        {"sku": sku, "tier": "diamond"},
        {"sku": sku, "quantity": "-1"},
        {"sku": sku, "quantity": "1.2345"},
    ):
        refused = await gateway.http.get("/v1/prices/effective", params=params, headers=chain.till_a)
        assert_problem(refused, 422, "validation-error")
    baskets: list[dict[str, Any]] = [
        {"lines": []},
        {"lines": [{"sku": sku, "quantity": "1"}] * 201},
        {"lines": [{"sku": sku, "quantity": "1", "price": "0.01"}]},
        {"lines": [{"sku": sku, "quantity": "1"}], "at": "2030-01-01T00:00:00"},
    ]
    for basket in baskets:
        refused = await gateway.http.post("/v1/prices/effective/basket", json=basket, headers=chain.till_a)
        assert_problem(refused, 422, "validation-error")
    unknown = await gateway.http.get("/v1/prices/effective", params={"sku": f"NO{unique}"}, headers=chain.till_a)
    assert_problem(unknown, 404, "not-found")


# ---- scheduled changes and the POS price book ---------------------------------------------------------


async def test_headquarters_schedules_for_any_store_and_a_manager_for_their_own_only(
    app: PricingApp, gateway: RunningGateway, chain: Chain, clock: Clock, unique: str
) -> None:
    sku = await priced_sku(app, f"SKU{unique}")
    change = {"sku": sku, "price": "9.90", "effective_at": moment(clock, hours=2)}
    chain_wide = await post(gateway, "/v1/price-changes", change, chain.headquarters)
    assert chain_wide.status_code == 201, chain_wide.text
    assert (chain_wide.json()["state"], chain_wide.json()["store_ids"], chain_wide.json()["price"]) == (
        "scheduled",
        [],
        "9.90",
    )
    assert chain_wide.json()["change_id"]
    own = await post(
        gateway, "/v1/price-changes", change | {"store_ids": [chain.store_a], "channel": "store"}, chain.manager_a
    )
    assert (own.status_code, own.json()["store_ids"], own.json()["channel"]) == (201, [chain.store_a], "store")
    for store_ids in ([], [chain.store_b], [chain.store_a, chain.store_b]):
        refused = await post(gateway, "/v1/price-changes", change | {"store_ids": store_ids}, chain.manager_a)
        assert_problem(refused, 403, "forbidden")
    for headers in (chain.guide_a, chain.till_a, chain.app):
        refused = await post(gateway, "/v1/price-changes", change | {"store_ids": [chain.store_a]}, headers)
        assert_problem(refused, 403, "forbidden")
    for_b = await post(gateway, "/v1/price-changes", change | {"store_ids": [chain.store_b]}, chain.headquarters)
    assert for_b.status_code == 201, for_b.text

    listed = await gateway.http.get("/v1/price-changes", params={"sku": sku}, headers=chain.headquarters)
    assert {c["change_id"] for c in listed.json()["changes"]} == {
        chain_wide.json()["change_id"],
        own.json()["change_id"],
        for_b.json()["change_id"],
    }
    seen_by_a = await gateway.http.get("/v1/price-changes", params={"sku": sku}, headers=chain.manager_a)
    assert {c["change_id"] for c in seen_by_a.json()["changes"]} == {
        chain_wide.json()["change_id"],
        own.json()["change_id"],
    }
    for headers in (chain.app, chain.till_a):
        assert_problem(await gateway.http.get("/v1/price-changes", headers=headers), 403, "forbidden")


async def test_a_bad_price_change_is_refused_and_schedules_nothing(
    app: PricingApp, gateway: RunningGateway, chain: Chain, clock: Clock, unique: str
) -> None:
    sku = await priced_sku(app, f"SKU{unique}")
    good = {"sku": sku, "price": "9.90", "effective_at": moment(clock, hours=2)}
    for body, status, slug in (
        (
            good | {"effective_at": (clock.now() + timedelta(hours=2)).replace(tzinfo=None).isoformat()},
            422,
            "validation-error",
        ),
        (good | {"price": "-9.90"}, 422, "validation-error"),
        (good | {"price": "9.999"}, 422, "validation-error"),
        (good | {"channel": "tv"}, 422, "validation-error"),
        (good | {"note": "x"}, 422, "validation-error"),
        (good | {"effective_at": moment(clock, hours=-1)}, 422, "invalid-argument"),
        (good | {"price": "1.00"}, 409, "failed-precondition"),
        (good | {"store_ids": [f"NO{unique}"]}, 404, "not-found"),
    ):
        assert_problem(await post(gateway, "/v1/price-changes", body, chain.headquarters), status, slug)
    listed = await gateway.http.get("/v1/price-changes", params={"sku": sku}, headers=chain.headquarters)
    assert listed.json() == {"changes": [], "next_page_token": None}


async def test_the_pos_price_book_answers_304_while_unchanged_and_the_new_version_after_a_change(
    app: PricingApp, gateway: RunningGateway, chain: Chain, clock: Clock, unique: str
) -> None:
    milk, bread = await priced_sku(app, f"M{unique}"), await priced_sku(app, f"B{unique}", base_fen=650)
    full = await book(gateway, chain.till_a)
    assert full.status_code == 200, full.text
    version = full.json()["version"]
    etag = f'"pb-{chain.store_a}-{version}"'
    assert (full.headers["ETag"], full.headers["Cache-Control"], full.json()["delta"]) == (etag, "no-cache", False)
    assert full.json()["store_id"] == chain.store_a
    entries = entries_by_sku(full)
    assert (entries[milk]["unit_price"], entries[bread]["regular_price"], entries[milk]["unit"]) == (
        "10.00",
        "6.50",
        "piece",
    )
    assert entries[milk]["barcode"] == barcode_for(milk)
    assert not entries[milk]["removed"]

    for held in (etag, f"W/{etag}", f'"pb-{chain.store_a}-{version - 1}", {etag}', "*"):
        unchanged = await book(gateway, chain.till_a, etag=held)
        assert (unchanged.status_code, unchanged.content) == (304, b""), held
        assert (unchanged.headers["ETag"], unchanged.headers["Cache-Control"]) == (etag, "no-cache")
    # Another store's tag with the same version says nothing about this store's book.
    other_store = await book(gateway, chain.till_a, etag=f'"pb-{chain.store_b}-{version}"')
    assert (other_store.status_code, other_store.headers["ETag"]) == (200, etag)

    # Headquarters changes milk now, and schedules bread for later.
    assert (await put(gateway, f"/v1/prices/{milk}", {"base_price": "10.50"}, chain.headquarters)).status_code == 200
    changed = await book(gateway, chain.till_a, etag=etag)
    assert changed.status_code == 200, changed.text
    newer = changed.json()["version"]
    assert newer > version
    assert changed.headers["ETag"] == f'"pb-{chain.store_a}-{newer}"'
    assert entries_by_sku(changed)[milk]["unit_price"] == "10.50"
    delta = await book(gateway, chain.till_a, since_version=version)
    assert (delta.json()["delta"], list(entries_by_sku(delta))) == (True, [milk])

    scheduled = await post(
        gateway,
        "/v1/price-changes",
        {"sku": bread, "price": "5.90", "effective_at": moment(clock, hours=1)},
        chain.headquarters,
    )
    assert scheduled.status_code == 201, scheduled.text
    current = changed.headers["ETag"]
    assert (await book(gateway, chain.till_a, etag=current)).status_code == 304
    clock.advance(timedelta(hours=1, seconds=1))
    await app.services.scheduler.run_due()
    after = await book(gateway, chain.till_a, etag=current, since_version=newer)
    assert after.status_code == 200, after.text
    assert after.headers["ETag"] != current
    assert {sku: entry["unit_price"] for sku, entry in entries_by_sku(after).items()} == {bread: "5.90"}
    applied = await gateway.http.get("/v1/price-changes", params={"sku": bread}, headers=chain.headquarters)
    assert applied.json()["changes"][0]["state"] == "applied"


async def test_a_terminal_syncs_the_real_price_book_and_catalogue_versions_of_its_store(
    app: PricingApp, gateway: RunningGateway, chain: Chain, unique: str
) -> None:
    milk = await priced_sku(app, f"M{unique}")

    async def versions(till: dict[str, str]) -> tuple[int, int]:
        answer = await gateway.http.get("/v1/pos/sync", headers=till)
        assert answer.status_code == 200, answer.text
        datasets = answer.json()["datasets"]
        assert [datasets[name]["available"] for name in ("price_book", "catalogue")] == [True, True], datasets
        return int(datasets["price_book"]["version"]), int(datasets["catalogue"]["version"])

    async def item_versions(store_id: str) -> list[int]:
        items = await gateway.http.get("/v1/items", params={"store_id": store_id}, headers=chain.headquarters)
        return [item["version"] for item in items.json()["items"]]

    book_version, catalogue_version = await versions(chain.till_a)
    etag = (await book(gateway, chain.till_a)).headers["ETag"]
    assert etag == f'"pb-{chain.store_a}-{book_version}"'
    assert catalogue_version == max(await item_versions(chain.store_a)) > 0

    # A price change moves the book; an item listed in store B moves only B's catalogue.
    assert (await put(gateway, f"/v1/prices/{milk}", {"base_price": "10.50"}, chain.headquarters)).status_code == 200
    await priced_sku(app, f"B{unique}", store_ids=[chain.store_b])
    moved_book, same_catalogue = await versions(chain.till_a)
    assert moved_book > book_version
    assert (await book(gateway, chain.till_a)).headers["ETag"] == f'"pb-{chain.store_a}-{moved_book}"'
    assert same_catalogue == catalogue_version
    assert (await versions(chain.till_b))[1] == max(await item_versions(chain.store_b)) > catalogue_version

    # A change to an item listed in store A moves A's catalogue to that item's version.
    renamed = await put(gateway, f"/v1/items/{milk}", item_body("SUP001", name="伊利纯牛奶 1L"), chain.headquarters)
    assert renamed.status_code == 200, renamed.text
    assert (await versions(chain.till_a))[1] == renamed.json()["version"] > catalogue_version


async def test_only_a_terminal_reads_the_price_book_and_only_its_own_stores(
    app: PricingApp, gateway: RunningGateway, chain: Chain, unique: str
) -> None:
    await priced_sku(app, f"SKU{unique}")
    assert_problem(await book(gateway, chain.till_a, store_id=chain.store_b), 403, "forbidden")
    own = await book(gateway, chain.till_a, store_id=chain.store_a)
    assert (own.status_code, own.json()["store_id"]) == (200, chain.store_a)
    theirs = await book(gateway, chain.till_b)
    assert (theirs.json()["store_id"], theirs.headers["ETag"].startswith(f'"pb-{chain.store_b}-')) == (
        chain.store_b,
        True,
    )
    for headers in (chain.headquarters, chain.manager_a, chain.app, chain.supplier_user_a):
        assert_problem(await book(gateway, headers), 403, "forbidden")
    assert_problem(await book(gateway, chain.till_a, since_version=-1), 422, "validation-error")


# ---- shelf labels -------------------------------------------------------------------------------------


async def test_store_managers_link_labels_of_their_own_store_and_staff_read_the_audit(
    app: PricingApp, gateway: RunningGateway, chain: Chain, unique: str
) -> None:
    sku = await priced_sku(app, f"SKU{unique}")
    only_b = await priced_sku(app, f"O{unique}", store_ids=[chain.store_b])
    label = f"/v1/stores/{chain.store_a}/labels/0000021A{unique}"
    created = await put(gateway, label, {"sku": sku}, chain.manager_a)
    assert created.status_code == 201, created.text
    assert (created.json()["sku"], created.json()["template"], created.json()["state"]) == (sku, "standard", "pending")
    assert (created.json()["desired_price"], created.json()["currency"]) == ("10.00", "CNY")
    relinked = await put(gateway, label, {"sku": sku, "template": "promo"}, chain.headquarters)
    assert (relinked.status_code, relinked.json()["template"]) == (200, "promo"), relinked.text

    for headers in (chain.manager_b, chain.guide_a, chain.till_a, chain.app):
        assert_problem(await put(gateway, label, {"sku": sku, "template": "standard"}, headers), 403, "forbidden")
    # A guide given the scope is still not the store's manager.
    client_id, secret = await gateway.register(
        ClientKind.STAFF, store_id=chain.store_a, staff_role=StaffRole.STORE_GUIDE, scopes=frozenset({"labels:write"})
    )
    elevated_guide = {"Authorization": f"Bearer {await gateway.token(client_id, secret)}"}
    assert_problem(await put(gateway, label, {"sku": sku}, elevated_guide), 403, "forbidden")
    not_listed = await put(gateway, label, {"sku": only_b}, chain.manager_a)
    assert assert_problem(not_listed, 409, "failed-precondition")["reason"] == "sku-not-listed"
    assert_problem(await put(gateway, label, {"sku": sku, "colour": "red"}, chain.manager_a), 422, "validation-error")

    for headers in (chain.guide_a, chain.manager_a, chain.headquarters):
        listed = await gateway.http.get(f"/v1/stores/{chain.store_a}/labels", headers=headers)
        assert [(x["sku"], x["template"]) for x in listed.json()["labels"]] == [(sku, "promo")], listed.text
    pending = await gateway.http.get(
        f"/v1/stores/{chain.store_a}/labels", params={"state": "acknowledged"}, headers=chain.guide_a
    )
    assert pending.json()["labels"] == []
    audit = await gateway.http.get(f"/v1/stores/{chain.store_a}/label-mismatches", headers=chain.guide_a)
    assert audit.status_code == 200, audit.text
    assert (audit.json()["store_id"], audit.json()["label_count"], audit.json()["deadline_seconds"]) == (
        chain.store_a,
        1,
        300,
    )
    assert Decimal(audit.json()["mismatch_rate"]) == Decimal(audit.json()["mismatch_count"])
    for path in ("labels", "label-mismatches"):
        for headers in (chain.manager_b, chain.till_a, chain.app):
            assert_problem(
                await gateway.http.get(f"/v1/stores/{chain.store_a}/{path}", headers=headers), 403, "forbidden"
            )


async def test_labels_that_do_not_confirm_in_time_fail_the_parity_audit(
    app: PricingApp, gateway: RunningGateway, chain: Chain, clock: Clock, unique: str
) -> None:
    sku = await priced_sku(app, f"SKU{unique}")
    for label in ("L1", "L2"):
        assert (
            await put(gateway, f"/v1/stores/{chain.store_a}/labels/{label}{unique}", {"sku": sku}, chain.manager_a)
        ).status_code == 201
    clock.advance(timedelta(seconds=301))
    audit = (await gateway.http.get(f"/v1/stores/{chain.store_a}/label-mismatches", headers=chain.manager_a)).json()
    assert (audit["label_count"], audit["mismatch_count"], Decimal(audit["mismatch_rate"])) == (2, 2, Decimal(1))
    assert {(m["label"]["label_id"], m["reason"], m["pos_price"]) for m in audit["mismatches"]} == {
        (f"L1{unique}", "not_acknowledged", "10.00"),
        (f"L2{unique}", "not_acknowledged", "10.00"),
    }


# ---- markdowns ----------------------------------------------------------------------------------------


async def overstocked(app: PricingApp, store_id: str, sku: str) -> str:
    """A markdown suggestion as inventory's overstock alert makes one (90 days of cover, 30 allowed)."""
    async with units_of_work(app.connected.engine)() as uow:
        row = await app.services.markdowns.on_overstock(uow, OverstockAlert(store_id, sku, Decimal(90), Decimal(30)))
        await uow.commit()
    assert row is not None
    return row.markdown_id


async def test_a_store_manager_decides_markdowns_of_their_own_store_only(
    app: PricingApp, gateway: RunningGateway, chain: Chain, clock: Clock, unique: str
) -> None:
    sku = await priced_sku(app, f"SKU{unique}")
    markdown_id = await overstocked(app, chain.store_a, sku)
    listed = await gateway.http.get(f"/v1/stores/{chain.store_a}/markdown-suggestions", headers=chain.manager_a)
    assert listed.status_code == 200, listed.text
    [suggestion] = listed.json()["suggestions"]
    assert (suggestion["markdown_id"], suggestion["state"], suggestion["current_price"]) == (
        markdown_id,
        "open",
        "10.00",
    )
    assert Decimal(suggestion["suggested_price"]) < Decimal("10.00")
    for headers in (chain.manager_b, chain.guide_a, chain.till_a, chain.app):
        refused = await gateway.http.get(f"/v1/stores/{chain.store_a}/markdown-suggestions", headers=headers)
        assert_problem(refused, 403, "forbidden")

    decide = f"/v1/markdown-suggestions/{markdown_id}:decide"
    for headers in (chain.manager_b, chain.guide_a, chain.till_a):
        assert_problem(await post(gateway, decide, {"approve": True}, headers), 403, "forbidden")
    assert_problem(await post(gateway, decide, {"approve": "yes please"}, chain.manager_a), 422, "validation-error")
    still_open = await gateway.http.get(f"/v1/stores/{chain.store_a}/markdown-suggestions", headers=chain.manager_a)
    assert [s["state"] for s in still_open.json()["suggestions"]] == ["open"]

    approved = await post(gateway, decide, {"approve": True, "effective_at": moment(clock, hours=12)}, chain.manager_a)
    assert approved.status_code == 200, approved.text
    decision = approved.json()
    assert decision["suggestion"]["state"] == "approved"
    assert (decision["change"]["store_ids"], decision["change"]["markdown_id"], decision["change"]["price"]) == (
        [chain.store_a],
        markdown_id,
        suggestion["suggested_price"],
    )
    again = await post(gateway, decide, {"approve": False}, chain.headquarters)
    assert assert_problem(again, 409, "failed-precondition")["reason"] == "markdown-not-open"
    approved_list = await gateway.http.get(
        f"/v1/stores/{chain.store_a}/markdown-suggestions", params={"state": "approved"}, headers=chain.headquarters
    )
    assert [s["change_id"] for s in approved_list.json()["suggestions"]] == [decision["change"]["change_id"]]
    assert_problem(
        await post(gateway, "/v1/markdown-suggestions/MDNONE:decide", {"approve": False}, chain.headquarters),
        404,
        "not-found",
    )


# ---- mounting -----------------------------------------------------------------------------------------


async def test_the_pricing_routes_exist_only_with_a_pricing_backend(
    gateway: RunningGateway, gateway_settings: Callable[..., GatewaySettings]
) -> None:
    paths = (await gateway.http.get("/openapi.json")).json()["paths"]
    assert {"/v1/items", "/v1/pos/price-book", "/v1/prices/effective"} <= set(paths)
    async with running_gateway(gateway_settings(gateway_backends="")) as without:
        paths = (await without.http.get("/openapi.json")).json()["paths"]
        assert not any(path.startswith(("/v1/items", "/v1/prices", "/v1/pos/price-book")) for path in paths)
        headquarters = await without.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
        assert_problem(await without.http.get("/v1/items", headers=headquarters), 404, "not-found")
