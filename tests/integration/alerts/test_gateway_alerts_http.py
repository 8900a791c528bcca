"""The operations feed through the gateway, against the real alerts service: staff read their
store's alerts, acknowledge and resolve them once per Idempotency-Key; another store's manager gets
`404` and changes nothing; clients without an alerts scope get `403`; webhooks are headquarters'."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.clients import ClientKind, StaffRole
from gateway.settings import GatewaySettings
from servicekit.db import UnitOfWork
from services.alerts.bootstrap import AlertsApp
from services.alerts.domain.alerts import AlertKind, Finding, Severity
from services.alerts.domain.causes import Cause, CauseKind
from tests.integration.alerts.conftest import fetch
from tests.support.gateway import (
    RunningGateway,
    assert_problem,
    gateway_schema,
    gateway_settings,
    idempotency_key,
    running_gateway,
)

__all__ = ["gateway_schema", "gateway_settings"]

START = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


@pytest.fixture
async def gateway(app: AlertsApp, gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(gateway_backends=f"alerts=127.0.0.1:{app.server.bound_port}", rate_limit_burst=1000)
    async with running_gateway(settings) as running:
        yield running


async def seed(app: AlertsApp, unit_of_work: Callable[[], UnitOfWork], store: str, subject: str, minute: int) -> str:
    cause = Cause(CauseKind.PRICE_CHANGE, 0.9, "Till price raised", {"skus": "A"}, START)
    async with unit_of_work() as uow:
        raised = await app.services.findings.raise_finding(
            uow,
            Finding(
                AlertKind.SALES_ANOMALY,
                Severity.WARNING,
                store,
                "",
                subject,
                f"{subject} sold less",
                {"lower": "72"},
                f"/overview?store={store}",
                START + timedelta(minutes=minute),
                (cause,),
            ),
        )
        await uow.commit()
    return raised.alert.alert_id


async def test_staff_read_and_handle_their_stores_alerts_and_nobody_elses(
    gateway: RunningGateway, app: AlertsApp, unit_of_work: Callable[[], UnitOfWork], alerts_url: str, unique: str
) -> None:
    http = gateway.http
    store_1, store_2 = f"S1{unique}", f"S2{unique}"
    staff = ClientKind.STAFF
    hq = await gateway.client_headers(staff, staff_role=StaffRole.HEADQUARTERS)
    manager_1 = await gateway.client_headers(staff, staff_role=StaffRole.STORE_MANAGER, store_id=store_1)
    manager_2 = await gateway.client_headers(staff, staff_role=StaffRole.STORE_MANAGER, store_id=store_2)
    guide_1 = await gateway.client_headers(staff, staff_role=StaffRole.STORE_GUIDE, store_id=store_1)
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store_1)
    supplier = await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id=f"SUP{unique}")
    first = await seed(app, unit_of_work, store_1, "DAIRY", 0)
    second = await seed(app, unit_of_work, store_1, "SNACKS", 1)
    await seed(app, unit_of_work, store_2, "DAIRY", 2)

    page = await http.get("/v1/alerts", params={"store_id": store_1, "page_size": 1}, headers=hq)
    assert page.status_code == 200, page.text
    (newest,) = page.json()["alerts"]
    assert newest["alert_id"] == second
    assert newest["causes"][0] == {
        "kind": "price_change",
        "score": 0.9,
        "summary": "Till price raised",
        "facts": {"skus": "A"},
        "occurred_at": "2026-12-03T02:00:00Z",
    }
    rest = await http.get(
        "/v1/alerts",
        params={"store_id": store_1, "page_size": 1, "page_token": page.json()["next_page_token"]},
        headers=hq,
    )
    assert [a["alert_id"] for a in rest.json()["alerts"]] == [first]
    own = await http.get("/v1/alerts", params={"state": "open", "kind": "sales_anomaly"}, headers=guide_1)
    assert own.status_code == 200, own.text
    assert {a["store_id"] for a in own.json()["alerts"]} == {store_1}
    assert_problem(await http.get("/v1/alerts", params={"store_id": store_2}, headers=manager_1), 403, "forbidden")

    # Another store's manager: 404 on read and on every action, and nothing changes.
    assert_problem(await http.get(f"/v1/alerts/{first}", headers=manager_2), 404, "not-found")
    for action, body in (("acknowledge", {}), ("resolve", {"note": "not mine"})):
        response = await http.post(f"/v1/alerts/{first}/{action}", json=body, headers=manager_2 | idempotency_key())
        assert_problem(response, 404, "not-found")
    rows = await fetch(alerts_url, "SELECT state, version FROM alert WHERE alert_id = $1", first)
    assert [(r["state"], r["version"]) for r in rows] == [("open", 1)]
    # Without the scope: 403.
    assert_problem(await http.get("/v1/alerts", headers=terminal), 403, "forbidden")
    assert_problem(await http.get("/v1/alerts", headers=supplier), 403, "forbidden")
    response = await http.post(f"/v1/alerts/{first}/acknowledge", json={}, headers=guide_1 | idempotency_key())
    assert_problem(response, 403, "forbidden")

    key = idempotency_key()
    acknowledged = await http.post(
        f"/v1/alerts/{first}/acknowledge", json={"expected_version": 1}, headers=manager_1 | key
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["state"] == "acknowledged"
    assert acknowledged.json()["acknowledged_by"]
    replay = await http.post(f"/v1/alerts/{first}/acknowledge", json={"expected_version": 1}, headers=manager_1 | key)
    assert replay.json() == acknowledged.json()
    again = await http.post(f"/v1/alerts/{first}/acknowledge", json={}, headers=manager_1 | idempotency_key())
    assert assert_problem(again, 409, "failed-precondition")["reason"] == "alert-not-open"
    too_long = await http.post(
        f"/v1/alerts/{first}/resolve", json={"note": "x" * 501}, headers=manager_1 | idempotency_key()
    )
    assert_problem(too_long, 422, "validation-error")
    resolved = await http.post(
        f"/v1/alerts/{first}/resolve",
        json={"note": "price reverted", "expected_version": 2},
        headers=manager_1 | idempotency_key(),
    )
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["state"], resolved.json()["resolution_note"]) == ("resolved", "price reverted")
    got = await http.get(f"/v1/alerts/{first}", headers=hq)
    assert got.json()["version"] == 3


async def test_webhooks_are_kept_by_headquarters_with_masked_urls(
    gateway: RunningGateway, app: AlertsApp, unique: str
) -> None:
    http = gateway.http
    hq = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    manager = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.STORE_MANAGER, store_id=f"S{unique}")
    body = {
        "name": "Dairy buyers",
        "url": f"https://oapi.dingtalk.com/robot/send?access_token=tok{unique}",
        "format": "dingtalk",
        "kinds": ["sales_anomaly"],
        "min_severity": "warning",
        "role": "headquarters",
    }
    created = await http.post("/v1/alert-webhooks", json=body, headers=hq | idempotency_key())
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["url"] == f"https://oapi.dingtalk.com/…{body['url'][-4:]}"
    assert (hook["format"], hook["kinds"], hook["min_severity"], hook["role"]) == (
        "dingtalk",
        ["sales_anomaly"],
        "warning",
        "headquarters",
    )
    replaced = await http.put(
        f"/v1/alert-webhooks/{hook['webhook_id']}", json=body | {"name": "Dairy team"}, headers=hq | idempotency_key()
    )
    assert replaced.status_code == 200, replaced.text
    listed = await http.get("/v1/alert-webhooks", headers=hq)
    assert [(w["webhook_id"], w["name"]) for w in listed.json()["webhooks"]] == [(hook["webhook_id"], "Dairy team")]
    assert f"tok{unique}" not in listed.text
    assert_problem(await http.get("/v1/alert-webhooks", headers=manager), 403, "forbidden")
    assert_problem(
        await http.post(
            "/v1/alert-webhooks", json=body | {"url": "ftp://x.example/robot"}, headers=hq | idempotency_key()
        ),
        422,
        "validation-error",
    )
    deleted = await http.delete(f"/v1/alert-webhooks/{hook['webhook_id']}", headers=hq | idempotency_key())
    assert deleted.status_code == 200, deleted.text
    assert_problem(
        await http.delete(f"/v1/alert-webhooks/{hook['webhook_id']}", headers=hq | idempotency_key()), 404, "not-found"
    )
