"""The supplier portal on the whole platform: a supplier's sell-through is its own SKUs' sales from
supply joined with their stock from inventory, per store — and another supplier sees none of it.

Real processes (every service and the gateway) holding the small demo retailer; the demo's
supplier users log in with their own credentials.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import Infra
from tests.support.gateway import assert_problem
from tests.support.platform import Platform, running_platform


@pytest.fixture(scope="module")
def platform(infra: Infra, kit_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(infra, kit_template, tmp_path_factory.mktemp("supply-portal")) as running:
        yield running


def bearer(platform: Platform, client_id: str) -> dict[str, str]:
    (client,) = [c for c in platform.retailer.clients if c.client_id == client_id]
    grant = {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.secret}
    response = httpx.post(f"{platform.base_url}/v1/auth/token", data=grant, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def ensure_supplier(platform: Platform, hq: dict[str, str], supplier_id: str, sku: str) -> None:
    """The demo supplier in supply (created by headquarters unless a demo loader did), with a
    contract naming ``sku``: the SKUs whose sales the portal shows are the supplier's own."""
    base = platform.base_url
    if httpx.get(f"{base}/v1/suppliers/{supplier_id}", headers=hq, timeout=30).status_code == 404:
        made = httpx.post(
            f"{base}/v1/suppliers",
            json={"supplier_id": supplier_id, "code": supplier_id, "name": f"{supplier_id} Co."},
            headers=hq | {"Idempotency-Key": uuid.uuid4().hex},
            timeout=30,
        )
        assert made.status_code == 201, made.text
    contract = {
        "mode": "concession",
        "valid_from": "2020-01-01",
        "valid_until": "2020-02-01",
        "items": [{"sku": sku}],
        "commission_rate": "0.2",
    }
    signed = httpx.post(
        f"{base}/v1/suppliers/{supplier_id}/contracts",
        json=contract,
        headers=hq | {"Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )
    assert signed.status_code == 201, signed.text


def sell_through(platform: Platform, headers: dict[str, str], supplier_id: str, **params: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{platform.base_url}/v1/suppliers/{supplier_id}/sell-through", params=params, headers=headers, timeout=120
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_supplier_sees_its_own_skus_sell_through_by_store_and_another_supplier_sees_none_of_it(
    platform: Platform,
) -> None:
    retailer = platform.retailer
    first, second = retailer.suppliers[0], retailer.suppliers[1]
    own = bearer(platform, f"{first.supplier_id}-USER01")
    other = bearer(platform, f"{second.supplier_id}-USER01")
    hq = {"Authorization": f"Bearer {platform.token('headquarters')}"}
    store = retailer.stores[0].location_id
    skus_of = {sku.sku_code: sku.supplier_id for sku in retailer.skus}
    stocked = httpx.get(f"{platform.base_url}/v1/locations/{store}/kpis", headers=own, timeout=120)
    assert stocked.status_code == 200, stocked.text
    closing = {sku["sku"]: Decimal(sku["closing_stock"]) for sku in stocked.json()["skus"]}
    assert closing, "the demo stocks the first supplier's SKUs at the first store"
    assert {skus_of[sku] for sku in closing} == {first.supplier_id}
    sold_sku = sorted(closing)[0]
    ensure_supplier(platform, hq, first.supplier_id, sold_sku)
    ensure_supplier(
        platform, hq, second.supplier_id, next(s.sku_code for s in retailer.skus if s.supplier_id == second.supplier_id)
    )

    # The stock is inventory's own figure for the supplier's SKUs at the store.
    body = sell_through(platform, own, first.supplier_id, store_id=store)
    rows = body["rows"]
    assert {row["store_id"] for row in rows} == {store}
    assert {skus_of[row["sku"]] for row in rows} == {first.supplier_id}
    stock = {row["sku"]: Decimal(row["stock"]) for row in rows}
    assert stock == closing | dict.fromkeys(stock.keys() - closing.keys(), Decimal(0))

    # A sale at the till reaches supply's journal projection and shows as sold, in fen.
    sale = {
        "sale_id": f"{store}-POS01-{uuid.uuid4().hex[:12]}",
        "kind": "sale",
        "store_id": store,
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "lines": [{"sku": sold_sku, "quantity": "2", "unit_price": "10.50"}],
        "payments": [{"method": "cash", "amount": "21.00"}],
    }
    terminal = {"Authorization": f"Bearer {platform.token('pos_terminal')}", "Idempotency-Key": uuid.uuid4().hex}
    uploaded = httpx.post(
        f"{platform.base_url}/v1/pos/sales/batch", json={"sales": [sale]}, headers=terminal, timeout=60
    )
    assert uploaded.status_code == 200, uploaded.text
    deadline = time.monotonic() + 60
    while True:
        rows = sell_through(platform, own, first.supplier_id, store_id=store)["rows"]
        (row,) = [r for r in rows if r["sku"] == sold_sku]
        if Decimal(row["sold"]) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (row["sold"], row["revenue"], row["selling_days"]) == ("2", {"fen": 2100, "yuan": "21.00"}, 1)
    on_hand = Decimal(row["stock"])
    expected = (Decimal(2) / (2 + max(on_hand, Decimal(0)))).quantize(Decimal("0.0001"))
    assert Decimal(row["sell_through"]) == expected

    # Chain-wide: every store, still only the supplier's own SKUs.
    everywhere = sell_through(platform, own, first.supplier_id)["rows"]
    assert {row["store_id"] for row in everywhere} <= {s.location_id for s in retailer.stores}
    assert {skus_of[row["sku"]] for row in everywhere} == {first.supplier_id}

    # The second supplier: the first one's sell-through, scorecard, orders and statements do not exist.
    for path in ("sell-through", "scorecard", "purchase-orders", "statements", "contracts"):
        leaked = httpx.get(f"{platform.base_url}/v1/suppliers/{first.supplier_id}/{path}", headers=other, timeout=60)
        assert_problem(leaked, 404, "not-found")
    its_own = sell_through(platform, other, second.supplier_id)["rows"]
    assert {skus_of[row["sku"]] for row in its_own} <= {second.supplier_id}
    assert sold_sku not in {row["sku"] for row in its_own}

    # Terminals, app back ends and store staff have no business with a supplier's figures.
    for label in ("pos_terminal", "app", "store_guide", "store_manager"):
        refused = httpx.get(
            f"{platform.base_url}/v1/suppliers/{first.supplier_id}/sell-through",
            headers={"Authorization": f"Bearer {platform.token(label)}"},
            timeout=60,
        )
        assert_problem(refused, 403, "forbidden")
