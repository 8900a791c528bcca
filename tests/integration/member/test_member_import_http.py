"""Legacy members imported over HTTP: headquarters only, once per Idempotency-Key and per external_id."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.domain.clients import ClientKind, StaffRole
from gateway.settings import GatewaySettings
from services.member.bootstrap import MemberApp
from tests.integration.member.conftest import fetch, random_phone
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
async def gateway(app: MemberApp, gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(gateway_backends=f"member=127.0.0.1:{app.server.bound_port}", rate_limit_burst=1000)
    async with running_gateway(settings) as running:
        yield running


def legacy(external_id: str, phone: str, *purchases: dict[str, Any]) -> dict[str, Any]:
    return {"external_id": external_id, "identities": [{"type": "phone", "value": phone}], "purchases": list(purchases)}


def bought(days_ago: int, amount: str, **more: Any) -> dict[str, Any]:
    return {"occurred_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(), "amount": amount, **more}


async def test_headquarters_imports_members_with_their_purchases_and_every_other_tenant_is_refused(
    gateway: RunningGateway, member_url: str
) -> None:
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    source = uuid.uuid4().hex[:8]
    body = {
        "members": [
            legacy(
                f"{source}-1",
                random_phone(),
                bought(
                    200, "128.50", store_id="S001", lines=[{"sku": "SKU00001", "quantity": "2", "amount": "128.50"}]
                ),
                bought(20, "9.90"),
            ),
            legacy(f"{source}-2", "not-a-phone"),
        ]
    }
    key = idempotency_key()
    first = await gateway.http.post("/v1/member-imports", json=body, headers=headquarters | key)
    assert first.status_code == 200, first.text
    answer = first.json()
    created, rejected = answer["results"]
    assert (created["external_id"], created["status"], created["purchases_imported"]) == (f"{source}-1", "created", 2)
    assert created["member_id"].startswith("M")
    assert (rejected["status"], rejected["member_id"], rejected["reason"]) == ("rejected", None, "invalid-phone")
    assert (answer["created"], answer["existing"], answer["rejected"]) == (1, 0, 1)
    facts = await fetch(member_url, "SELECT amount_minor FROM sale_fact WHERE imported ORDER BY amount_minor")
    assert [row["amount_minor"] for row in facts] == [990, 12_850]
    # The same key answers the same; a new key with the same member answers it as existing.
    assert (await gateway.http.post("/v1/member-imports", json=body, headers=headquarters | key)).json() == answer
    again = await gateway.http.post(
        "/v1/member-imports", json={"members": body["members"][:1]}, headers=headquarters | idempotency_key()
    )
    assert [(r["member_id"], r["status"]) for r in again.json()["results"]] == [(created["member_id"], "existing")]
    assert len(await fetch(member_url, "SELECT 1 FROM sale_fact WHERE imported")) == 2

    # Headquarters only; the key is required; a body over the limits never reaches the service.
    for tenant in (
        await gateway.client_headers(ClientKind.STAFF, store_id="S001", staff_role=StaffRole.STORE_MANAGER),
        await gateway.client_headers(ClientKind.STAFF, store_id="S001", staff_role=StaffRole.STORE_GUIDE),
        await gateway.client_headers(ClientKind.APP),
        await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001"),
        await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id="SUP001"),
    ):
        refused = await gateway.http.post("/v1/member-imports", json=body, headers=tenant | idempotency_key())
        assert_problem(refused, 403, "forbidden")
    assert_problem(
        await gateway.http.post("/v1/member-imports", json=body, headers=headquarters), 422, "validation-error"
    )
    too_many = {"members": [legacy(f"{source}-x{n}", random_phone()) for n in range(1001)]}
    assert_problem(
        await gateway.http.post("/v1/member-imports", json=too_many, headers=headquarters | idempotency_key()),
        422,
        "validation-error",
    )
    naive = {"members": [legacy(f"{source}-3", random_phone(), {"occurred_at": "2024-01-01T10:00:00", "amount": "1"})]}
    assert_problem(
        await gateway.http.post("/v1/member-imports", json=naive, headers=headquarters | idempotency_key()),
        422,
        "validation-error",
    )
    assert len(await fetch(member_url, "SELECT 1 FROM member")) == 1
