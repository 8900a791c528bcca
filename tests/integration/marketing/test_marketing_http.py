"""Marketing through the gateway: every route refuses what the caller may not see or do, and a
campaign runs from a segment to a held coupon over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from retail.member.v1 import events_pb2 as member_events
from retail.member.v1 import member_service_pb2 as member_pb2

from gateway.domain.clients import ClientKind, StaffRole
from gateway.settings import GatewaySettings
from servicekit.protowire import timestamp
from services.marketing.bootstrap import MarketingApp
from tests.integration.marketing.test_marketing_service import publish
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
async def gateway(app: MarketingApp, gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(gateway_backends=f"marketing=127.0.0.1:{app.server.bound_port}", rate_limit_burst=1000)
    async with running_gateway(settings) as running:
        yield running


async def poll(check: Callable[[], Any], timeout: float = 30) -> Any:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


async def test_a_campaign_over_http_and_every_tenant_kept_to_its_own(
    gateway: RunningGateway, nats_url: str, unique: str
) -> None:
    store_a, store_b = f"A{unique}", f"B{unique}"
    hq = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    hq_approver = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    manager_a = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.STORE_MANAGER, store_id=store_a)
    manager_b = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.STORE_MANAGER, store_id=store_b)
    app_client = await gateway.client_headers(ClientKind.APP)
    other_app = await gateway.client_headers(ClientKind.APP)
    terminal_b = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store_b)
    supplier = await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id=f"SUP{unique}")
    http = gateway.http

    now = datetime.now(UTC)
    members = [f"M{int(unique[:8], 16) % 10**9:09d}{index}" for index in range(10)]
    for member_id in members:
        for name, event in (
            (
                "member_registered",
                member_events.MemberRegistered(member_id=member_id, store_id=store_a, occurred_at=timestamp(now)),
            ),
            (
                "consent_changed",
                member_events.ConsentChanged(
                    member_id=member_id,
                    channel=member_pb2.CONSENT_CHANNEL_APP_PUSH,
                    granted=True,
                    occurred_at=timestamp(now),
                ),
            ),
        ):
            await publish(nats_url, f"retail.member.v1.{name}", event, f"{name}-{member_id}")
    rule = {"attribute": "home_store", "op": "in", "value": [store_a]}

    async def arrived() -> bool:
        preview = await http.post("/v1/segments/preview", json={"rule": rule}, headers=hq | idempotency_key())
        assert preview.status_code == 200, preview.text
        return bool(preview.json()["members"] == len(members))

    await poll(arrived)
    bad = await http.post(
        "/v1/segments", json={"name": "x", "rule": {"attribute": "shoe_size"}}, headers=hq | idempotency_key()
    )
    assert_problem(bad, 422, "invalid-argument")

    # Who may not touch marketing at all.
    for headers in (supplier, app_client, terminal_b):
        assert_problem(await http.get("/v1/campaigns", headers=headers), 403, "forbidden")
        assert_problem(
            await http.post("/v1/segments", json={"name": "x", "rule": rule}, headers=headers | idempotency_key()),
            403,
            "forbidden",
        )
    assert_problem(await http.get(f"/v1/members/{members[0]}/coupons", headers=supplier), 403, "forbidden")
    # Segments cover the whole chain: a store manager (who runs their store's campaigns) sees none.
    assert_problem(await http.get("/v1/segments", headers=manager_a), 403, "forbidden")
    assert_problem(
        await http.post("/v1/segments/preview", json={"rule": rule}, headers=manager_a | idempotency_key()),
        403,
        "forbidden",
    )

    segment = await http.post("/v1/segments", json={"name": "Store A", "rule": rule}, headers=hq | idempotency_key())
    assert segment.status_code == 201, segment.text
    snapshot = await http.post(f"/v1/segments/{segment.json()['segment_id']}/snapshots", headers=hq | idempotency_key())
    assert snapshot.status_code == 201, snapshot.text
    campaign_body = {
        "name": "Twenty off",
        "snapshot_id": snapshot.json()["snapshot_id"],
        "offer": {"kind": "amount_off", "amount_off": "20.00", "min_spend": "100.00"},
        "terms": {
            "valid_from": (now - timedelta(minutes=1)).isoformat(),
            "valid_until": (now + timedelta(days=7)).isoformat(),
        },
        "contact_channels": ["app_push"],
        "control_fraction_bp": 2000,
    }
    # A store manager creates campaigns of their own store only.
    assert_problem(
        await http.post(
            "/v1/campaigns", json=campaign_body | {"store_id": store_a}, headers=manager_b | idempotency_key()
        ),
        403,
        "forbidden",
    )
    created = await http.post("/v1/campaigns", json=campaign_body, headers=hq | idempotency_key())
    assert created.status_code == 201, created.text
    campaign_id = created.json()["campaign_id"]
    # A chain-wide campaign is no store manager's to see or act on: 404, it does not leak.
    assert_problem(await http.get(f"/v1/campaigns/{campaign_id}", headers=manager_a), 404, "not-found")
    assert_problem(await http.get(f"/v1/campaigns/{campaign_id}/report", headers=manager_b), 404, "not-found")
    assert_problem(
        await http.post(f"/v1/campaigns/{campaign_id}/approve", headers=manager_a | idempotency_key()), 404, "not-found"
    )
    assert (await http.get("/v1/campaigns", headers=manager_a)).json()["campaigns"] == []
    assert_problem(
        await http.post(f"/v1/campaigns/{campaign_id}/approve", headers=hq | idempotency_key()), 403, "forbidden"
    )
    approved = await http.post(f"/v1/campaigns/{campaign_id}/approve", headers=hq_approver | idempotency_key())
    assert approved.status_code == 200, approved.text
    launched = await http.post(f"/v1/campaigns/{campaign_id}/launch", headers=hq | idempotency_key())
    assert launched.status_code == 202, launched.text

    async def running() -> dict[str, Any] | None:
        body: dict[str, Any] = (await http.get(f"/v1/campaigns/{campaign_id}", headers=hq)).json()
        return body if body["status"] == "running" else None

    progress = (await poll(running))["progress"]
    assert (progress["treatment"], progress["control"], progress["issued"]) == (8, 2, 8)

    owned = {}
    for member_id in members:
        coupons = (await http.get(f"/v1/members/{member_id}/coupons", headers=app_client)).json()["coupons"]
        if coupons:
            owned[member_id] = coupons[0]["code"]
    assert len(owned) == 8
    holder, code = next(iter(owned.items()))
    basket = {
        "member_id": holder,
        "channel": "store",
        "store_id": store_a,
        "lines": [{"sku": "RICE", "amount": "120.00"}],
    }
    # A terminal of store B holds coupons in store B only.
    assert_problem(
        await http.post(f"/v1/coupons/{code}/hold", json=basket, headers=terminal_b | idempotency_key()),
        403,
        "forbidden",
    )
    hold = await http.post(
        f"/v1/coupons/{code}/hold",
        json=basket | {"channel": "app", "store_id": None},
        headers=app_client | idempotency_key(),
    )
    assert hold.status_code == 201, hold.text
    assert (hold.json()["discount"], hold.json()["line_discounts"]) == ("20.00", ["20.00"])
    hold_id = hold.json()["hold_id"]
    # Another client's hold is not theirs to know of.
    assert_problem(
        await http.post(f"/v1/coupon-holds/{hold_id}/release", headers=other_app | idempotency_key()), 404, "not-found"
    )
    released = await http.post(f"/v1/coupon-holds/{hold_id}/release", headers=app_client | idempotency_key())
    assert released.json() == {"hold_id": hold_id, "status": "released"}
    malformed = await http.post(
        "/v1/coupons/NOT-A-CODE-OF-OURS-12/hold",
        json=basket | {"channel": "app"},
        headers=app_client | idempotency_key(),
    )
    assert malformed.status_code in (404, 422), malformed.text

    report = await http.get(f"/v1/campaigns/{campaign_id}/report", headers=hq)
    assert report.status_code == 200, report.text
    assert (report.json()["treatment"]["members"], report.json()["control"]["members"]) == (8, 2)
    conflicts = await http.get("/v1/redemption-conflicts", params={"store_id": store_a}, headers=manager_b)
    assert_problem(conflicts, 403, "forbidden")
    assert_problem(
        await http.post("/v1/models/repurchase/train", headers=manager_a | idempotency_key()), 403, "forbidden"
    )
    status = await http.get("/v1/models/repurchase", headers=hq)
    assert status.json() == {"latest": None, "serving": None}
    assert_problem(await http.get(f"/v1/members/{holder}/propensity", headers=hq), 409, "failed-precondition")
    assert_problem(await http.get(f"/v1/members/{holder}/recommendations", headers=hq), 409, "failed-precondition")
    for headers in (app_client, terminal_b, supplier):
        assert_problem(await http.get(f"/v1/members/{holder}/recommendations", headers=headers), 403, "forbidden")
        assert_problem(await http.get(f"/v1/members/{holder}/propensity", headers=headers), 403, "forbidden")


def test_marketing_routes_are_only_where_the_backend_is(gateway_settings: Callable[..., GatewaySettings]) -> None:
    from gateway.bootstrap import build_app

    with_marketing = build_app(gateway_settings(gateway_backends="marketing=127.0.0.1:1")).openapi()["paths"]
    without = build_app(gateway_settings(gateway_backends="")).openapi()["paths"]
    assert {"/v1/campaigns", "/v1/coupons/{code}/hold", "/v1/segments"} <= set(with_marketing)
    assert not any(path.startswith(("/v1/campaigns", "/v1/coupons", "/v1/segments")) for path in without)
