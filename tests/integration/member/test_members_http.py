"""Members through the gateway over HTTP: one shopper across channels, views by role, merges, erasure, KPIs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.domain.clients import ClientKind, StaffRole
from gateway.settings import GatewaySettings
from services.member.bootstrap import MemberApp
from tests.integration.member.conftest import (
    by_member_id,
    fetch,
    journal_sale,
    publish_sales,
    random_phone,
    settled,
)
from tests.support.clock import HandClock
from tests.support.gateway import (
    RunningGateway,
    assert_problem,
    gateway_schema,
    gateway_settings,
    idempotency_key,
    running_gateway,
)

__all__ = ["gateway_schema", "gateway_settings"]

APP_ID = "wx0123456789abcdef"


@pytest.fixture
async def gateway(app: MemberApp, gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(gateway_backends=f"member=127.0.0.1:{app.server.bound_port}", rate_limit_burst=1000)
    async with running_gateway(settings) as running:
        yield running


@pytest.fixture
def durable(unique: str) -> str:
    return f"member-sales-{unique}"


async def post(gateway: RunningGateway, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await gateway.http.post(path, json=body, headers=headers | idempotency_key())


def pos_sale(store_id: str, phone: str, amount: str) -> dict[str, Any]:
    return {
        "sale_id": f"{store_id}-POS01-{uuid.uuid4().hex[:12]}",
        "kind": "sale",
        "store_id": store_id,
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "lines": [{"sku": "SKU00001", "quantity": "1", "unit_price": amount}],
        "member": {"type": "phone", "value": phone},
        "payments": [{"method": "wechat_pay", "amount": amount}],
    }


async def test_the_same_shopper_arriving_by_three_channels_ends_as_one_member_with_all_points(
    gateway: RunningGateway, nats_url: str, durable: str, clock: HandClock
) -> None:
    mini_program = await gateway.client_headers(ClientKind.APP)
    till = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001")
    app = await gateway.client_headers(ClientKind.APP)
    unionid, app_user, phone = "oUnion" + uuid.uuid4().hex[:20], "10" + uuid.uuid4().hex[:10], random_phone()
    # 1. The mini-program: registers with WeChat and orders online.
    first = await post(gateway, "/v1/members", {"identity": {"type": "wechat_unionid", "value": unionid}}, mini_program)
    assert first.status_code == 201, first.text
    by_wechat = first.json()["member_id"]
    clock.advance(days=30)
    # 2. A store: the shopper gives a phone number at the till, registers, and buys.
    second = await post(gateway, "/v1/members", {"identity": {"type": "phone", "value": phone}}, till)
    by_phone = second.json()["member_id"]
    sold = await post(gateway, "/v1/pos/sales/batch", {"sales": [pos_sale("S001", phone, "88.00")]}, till)
    assert sold.json()["results"][0]["status"] == "accepted", sold.text
    clock.advance(days=30)
    # 3. The app, installed later: a third member at first.
    third = await post(gateway, "/v1/members", {"identity": {"type": "app_user_id", "value": app_user}}, app)
    by_app = third.json()["member_id"]
    assert len({by_wechat, by_phone, by_app}) == 3
    await publish_sales(
        nats_url,
        [
            journal_sale(store_id="ONLINE01", lines=[("SKU00002", 12_000)], member=by_member_id(by_wechat)),
            journal_sale(store_id="ONLINE01", lines=[("SKU00003", 3_050)], member=by_member_id(by_app)),
        ],
    )
    await settled(nats_url, durable)
    points = {
        m: (await gateway.http.get(f"/v1/members/{m}/points", headers=app)).json()["balance"]
        for m in (by_wechat, by_phone, by_app)
    }
    assert points == {by_wechat: 120, by_phone: 88, by_app: 30}

    # The app user verifies their phone number: the app member and the store member are one.
    linked = await post(gateway, f"/v1/members/{by_app}/identities", {"type": "phone", "value": phone}, app)
    assert linked.json()["merge"]["survivor_member_id"] == by_phone, linked.text
    # ... and logs in with WeChat: the mini-program member is the same person too (and the oldest).
    linked = await post(
        gateway, f"/v1/members/{by_phone}/identities", {"type": "wechat_unionid", "value": unionid}, app
    )
    assert (linked.json()["member_id"], linked.json()["merge"]["rule"]) == (by_wechat, "older")

    for kind, value in (("phone", phone), ("wechat_unionid", unionid), ("app_user_id", app_user)):
        resolved = await gateway.http.get("/v1/members/resolve", params={"type": kind, "value": value}, headers=till)
        assert resolved.json() == {"member_id": by_wechat}, kind
    one = await gateway.http.get(f"/v1/members/{by_wechat}/points", headers=app)
    assert one.json()["balance"] == 238
    assert len(one.json()["entries"]) == 3
    assert (await gateway.http.get(f"/v1/members/{by_app}", headers=app)).json()["member_id"] == by_wechat
    another_sale = await post(gateway, "/v1/pos/sales/batch", {"sales": [pos_sale("S001", phone, "10.00")]}, till)
    assert another_sale.status_code == 200
    await settled(nats_url, durable)
    assert (await gateway.http.get(f"/v1/members/{by_wechat}/points", headers=app)).json()["balance"] == 248


async def test_a_store_guides_token_never_sees_a_phone_number(gateway: RunningGateway) -> None:
    guide = await gateway.client_headers(ClientKind.STAFF, store_id="S001", staff_role=StaffRole.STORE_GUIDE)
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    till = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001")
    phone = random_phone()
    registered = await post(
        gateway,
        "/v1/members",
        {
            "identity": {"type": "phone", "value": phone},
            "consents": {"sms": True},
            "profile": {"name": "孙丽", "preferences": {"diet": "无麸质"}},
        },
        guide,
    )
    member_id = registered.json()["member_id"]
    patched = await gateway.http.patch(f"/v1/members/{member_id}", json={"tags": {"add": ["vip"]}}, headers=guide)
    seen = [
        registered,
        patched,
        await gateway.http.get(f"/v1/members/{member_id}", headers=guide),
        await gateway.http.get(f"/v1/members/{member_id}", params={"purpose": "curious"}, headers=guide),
        await gateway.http.get("/v1/members/resolve", params={"type": "phone", "value": phone}, headers=guide),
        await gateway.http.get(f"/v1/members/{member_id}/points", headers=guide),
        await post(gateway, f"/v1/members/{member_id}/identities", {"type": "phone", "value": phone}, guide),
    ]
    for response in seen:
        assert phone[-4:] not in response.text, response.text
    view = seen[2].json()
    assert (view["contact"], view["personal_data"], view["tags"]) == (None, "none", ["vip"])
    assert (view["preferences"], view["tier"]["tier"]) == ({"diet": "无麸质"}, "basic")
    assert [(identity["type"], identity["value"]) for identity in view["identities"]] == [("phone", None)]
    assert_problem(seen[6], 409, "already-exists")
    assert_problem(
        await gateway.http.patch(f"/v1/members/{member_id}", json={"name": "x"}, headers=guide), 403, "forbidden"
    )
    # The till sees it masked; headquarters in clear (audited).
    masked = (await gateway.http.get(f"/v1/members/{member_id}", headers=till)).json()
    assert (masked["contact"]["phone"], masked["contact"]["name"]) == (f"{phone[:3]}****{phone[-4:]}", "孙*")
    clear = (
        await gateway.http.get(f"/v1/members/{member_id}", params={"purpose": "complaint 17"}, headers=headquarters)
    ).json()
    assert (clear["contact"]["phone"], clear["personal_data"]) == (phone, "clear")


async def test_only_profile_preferences_tags_and_consent_can_be_patched(gateway: RunningGateway) -> None:
    app = await gateway.client_headers(ClientKind.APP)
    member_id = (
        await post(gateway, "/v1/members", {"identity": {"type": "phone", "value": random_phone()}}, app)
    ).json()["member_id"]
    for protected in ({"points": 1000}, {"tier": "platinum"}, {"points_balance": 5, "name": "x"}):
        refused = await gateway.http.patch(f"/v1/members/{member_id}", json=protected, headers=app)
        body = assert_problem(refused, 422, "validation-error")
        assert {error["location"] for error in body["errors"]} >= {f"body.{next(iter(protected))}"}
    assert_problem(
        await gateway.http.patch(f"/v1/members/{member_id}", json={"nickname": "x"}, headers=app),
        422,
        "validation-error",
    )
    assert_problem(await gateway.http.patch(f"/v1/members/{member_id}", json={}, headers=app), 422, "invalid-argument")
    changed = await gateway.http.patch(
        f"/v1/members/{member_id}",
        headers=app,
        json={
            "name": "吴磊",
            "birthday": "1979-09-09",
            "consents": {"sms": False, "app_push": True},
            "preferences": {"brand": "伊利"},
        },
    )
    assert changed.status_code == 200, changed.text
    member = changed.json()
    assert (member["contact"]["name"], member["contact"]["birthday"]) == ("吴*", "****-09-09")
    assert {c["channel"]: c["granted"] for c in member["consents"]} == {"sms": False, "app_push": True}
    cleared = await gateway.http.patch(
        f"/v1/members/{member_id}", json={"name": None, "preferences": {"brand": None}}, headers=app
    )
    assert (cleared.json()["contact"]["name"], cleared.json()["preferences"]) == (None, {})


async def test_bad_input_gets_a_precise_problem_and_changes_nothing(gateway: RunningGateway) -> None:
    app = await gateway.client_headers(ClientKind.APP)
    bad_phone = await post(gateway, "/v1/members", {"identity": {"type": "phone", "value": "1380013800"}}, app)
    assert assert_problem(bad_phone, 422, "invalid-argument")["reason"] == "invalid-phone"
    assert_problem(
        await post(gateway, "/v1/members", {"identity": {"type": "fax", "value": "1"}}, app), 422, "validation-error"
    )
    assert_problem(await gateway.http.get("/v1/members/12345", headers=app), 422, "validation-error")
    assert_problem(await gateway.http.get("/v1/members/M0000009", headers=app), 404, "not-found")
    unknown = await gateway.http.get(
        "/v1/members/resolve", params={"type": "email", "value": "nobody@example.com"}, headers=app
    )
    assert assert_problem(unknown, 404, "not-found")["reason"] == "identity-not-found"
    supplier = await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id="SUP001")
    assert_problem(await gateway.http.get("/v1/members/M0000009", headers=supplier), 403, "forbidden")


async def test_merge_undo_redemption_and_erasure_through_the_gateway(gateway: RunningGateway) -> None:
    app = await gateway.client_headers(ClientKind.APP)
    till = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001")
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    manager = await gateway.client_headers(ClientKind.STAFF, store_id="S001", staff_role=StaffRole.STORE_MANAGER)
    openid, card = "oOpen" + uuid.uuid4().hex[:20], "8860" + str(uuid.uuid4().int)[:12]
    older = (
        await post(
            gateway, "/v1/members", {"identity": {"type": "wechat_openid", "value": openid, "app_id": APP_ID}}, app
        )
    ).json()["member_id"]
    newer = (await post(gateway, "/v1/members", {"identity": {"type": "pos_card", "value": card}}, till)).json()
    merged = await post(
        gateway,
        f"/v1/members/{newer['member_id']}/identities",
        {"type": "wechat_openid", "value": openid, "app_id": APP_ID},
        till,
    )
    merge_id = merged.json()["merge"]["merge_id"]
    assert_problem(await post(gateway, f"/v1/merges/{merge_id}/undo", None, till), 403, "forbidden")
    undone = await post(gateway, f"/v1/merges/{merge_id}/undo", None, headquarters)
    assert (undone.status_code, undone.json()["restored_member_id"]) == (200, older)
    again = await post(gateway, f"/v1/merges/{merge_id}/undo", None, headquarters)
    assert assert_problem(again, 409, "failed-precondition")["reason"] == "merge-already-undone"

    too_much = await post(gateway, f"/v1/members/{older}/points/redemptions", {"points": 5}, till)
    problem = assert_problem(too_much, 409, "failed-precondition")
    assert (problem["reason"], problem["available"], problem["requested"]) == ("insufficient-points", 0, 5)
    elsewhere = await post(gateway, f"/v1/members/{older}/points/redemptions", {"points": 5, "store_id": "S002"}, till)
    assert_problem(elsewhere, 403, "forbidden")

    assert_problem(await gateway.http.delete(f"/v1/members/{older}", headers=manager), 403, "forbidden")
    erased = await gateway.http.delete(f"/v1/members/{older}", params={"reason": "PIPL-77"}, headers=headquarters)
    assert (erased.status_code, erased.json()["member_id"]) == (200, older), erased.text
    gone = await gateway.http.get(f"/v1/members/{older}", params={"purpose": "PIPL-77 check"}, headers=headquarters)
    assert assert_problem(gone, 404, "not-found")["reason"] == "member-erased"
    assert (await gateway.http.delete(f"/v1/members/{older}", headers=headquarters)).json() == erased.json()


async def test_member_kpis_per_store_and_period(gateway: RunningGateway, nats_url: str, durable: str) -> None:
    store = f"K{uuid.uuid4().hex[:6].upper()}"
    manager = await gateway.client_headers(ClientKind.STAFF, store_id=store, staff_role=StaffRole.STORE_MANAGER)
    other_manager = await gateway.client_headers(ClientKind.STAFF, store_id="S001", staff_role=StaffRole.STORE_MANAGER)
    app = await gateway.client_headers(ClientKind.APP)
    regular, once = [
        (await post(gateway, "/v1/members", {"identity": {"type": "phone", "value": random_phone()}}, app)).json()[
            "member_id"
        ]
        for _ in range(2)
    ]
    await publish_sales(
        nats_url,
        [
            journal_sale(store_id=store, lines=[("A", 10_000)], member=by_member_id(regular)),
            journal_sale(store_id=store, lines=[("A", 6_000)], member=by_member_id(regular)),
            journal_sale(store_id=store, lines=[("A", 2_000)], member=by_member_id(once)),
            journal_sale(store_id=store, lines=[("A", 2_000)]),  # an anonymous shopper
        ],
    )
    await settled(nats_url, durable)
    kpis = await gateway.http.get("/v1/members/kpis", headers=manager)
    assert kpis.status_code == 200, kpis.text
    expected = {
        "store_id": store,
        "active_members": 2,
        "repeat_members": 1,
        "repeat_purchase_rate": "0.5000",
        "sales_count": 4,
        "net_sales": "200.00",
        "average_basket": "50.00",
        "member_share_of_sales": "0.9000",
        "member_average_basket": "60.00",
    }
    assert {key: kpis.json()[key] for key in expected} == expected
    assert_problem(
        await gateway.http.get("/v1/members/kpis", params={"store_id": store}, headers=other_manager), 403, "forbidden"
    )
    assert_problem(await gateway.http.get("/v1/members/kpis", headers=app), 403, "forbidden")


async def test_headquarters_reads_personal_data_in_clear_only_with_a_purpose_and_the_audit_keeps_it(
    gateway: RunningGateway, member_url: str
) -> None:
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    phone = random_phone()
    registered = await post(
        gateway,
        "/v1/members",
        {"identity": {"type": "phone", "value": phone}, "profile": {"name": "钱多多"}},
        headquarters,
    )
    member_id = registered.json()["member_id"]
    for purpose in ({}, {"purpose": ""}, {"purpose": "   "}):
        refused = await gateway.http.get(f"/v1/members/{member_id}", params=purpose, headers=headquarters)
        body = assert_problem(refused, 422, "validation-error")
        assert body["errors"][0]["location"] == "query.purpose", body
        assert phone not in refused.text
    assert await fetch(member_url, "SELECT 1 FROM personal_data_access") == []
    # A change answers masked without a purpose: a write is no excuse for an unaudited clear read.
    patched = await gateway.http.patch(
        f"/v1/members/{member_id}", json={"tags": {"add": ["vip"]}}, headers=headquarters
    )
    assert (patched.status_code, patched.json()["personal_data"]) == (200, "masked"), patched.text
    assert phone not in patched.text
    assert await fetch(member_url, "SELECT 1 FROM personal_data_access") == []
    clear = await gateway.http.get(
        f"/v1/members/{member_id}", params={"purpose": "complaint 2026-1142"}, headers=headquarters
    )
    assert (clear.json()["personal_data"], clear.json()["contact"]["phone"]) == ("clear", phone)
    (audit,) = await fetch(member_url, "SELECT client_id, staff_role, purpose FROM personal_data_access")
    assert (audit["staff_role"], audit["purpose"]) == ("headquarters", "complaint 2026-1142")


async def test_the_member_mix_counts_a_stores_members_by_stage_tier_and_churn_risk_and_names_nobody(
    gateway: RunningGateway, nats_url: str, durable: str, member_url: str, clock: HandClock
) -> None:
    store = f"X{uuid.uuid4().hex[:6].upper()}"
    till = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
    manager = await gateway.client_headers(ClientKind.STAFF, store_id=store, staff_role=StaffRole.STORE_MANAGER)
    other_manager = await gateway.client_headers(ClientKind.STAFF, store_id="S001", staff_role=StaffRole.STORE_MANAGER)
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    guide = await gateway.client_headers(ClientKind.STAFF, store_id=store, staff_role=StaffRole.STORE_GUIDE)
    members = []
    for _ in range(4):
        registered = await post(gateway, "/v1/members", {"identity": {"type": "phone", "value": random_phone()}}, till)
        assert registered.status_code == 201, registered.text
        members.append(registered.json()["member_id"])
    recent, lapsing, dormant, lost = members
    # Last purchases 3, 45 and 120 days ago; the fourth never bought and registered 200 days ago.
    await publish_sales(
        nats_url,
        [
            journal_sale(
                store_id=store,
                lines=[("A", 1_000)],
                member=by_member_id(member),
                occurred_at=clock() - timedelta(days=d),
            )
            for member, d in ((recent, 3), (lapsing, 45), (dormant, 120))
        ],
    )
    await settled(nats_url, durable)
    # The stage and tier as the periodic review would have left them.
    for member, stage, tier in (
        (recent, "repeat", "gold"),
        (lapsing, "active", "silver"),
        (dormant, "dormant", "basic"),
        (lost, "churned", "basic"),
    ):
        await fetch(
            member_url, "UPDATE member SET lifecycle_stage = $2, tier = $3 WHERE member_id = $1", member, stage, tier
        )
    await fetch(
        member_url, "UPDATE member SET registered_at = $2 WHERE member_id = $1", lost, clock() - timedelta(days=200)
    )

    mix = await gateway.http.get("/v1/members/mix", headers=manager)

    assert mix.status_code == 200, mix.text
    body = mix.json()
    assert (body["store_id"], body["members"]) == (store, 4)
    assert [(row["stage"], row["members"]) for row in body["lifecycle"]] == [
        ("new", 0),
        ("active", 1),
        ("repeat", 1),
        ("dormant", 1),
        ("churned", 1),
    ]
    assert [(row["tier"], row["members"]) for row in body["tiers"]] == [
        ("basic", 2),
        ("silver", 1),
        ("gold", 1),
        ("platinum", 0),
    ]
    assert [(row["risk"], row["members"]) for row in body["churn_risk"]] == [
        ("low", 1),
        ("medium", 1),
        ("high", 1),
        ("lost", 1),
    ]
    # Aggregates only: no member id or any identity anywhere in the answer.
    assert not any(member in mix.text for member in members)
    # Headquarters sees the store's (and the chain's); another store's manager and a guide see nothing of it.
    assert (await gateway.http.get("/v1/members/mix", params={"store_id": store}, headers=headquarters)).json()[
        "members"
    ] == 4
    chain = await gateway.http.get("/v1/members/mix", headers=headquarters)
    assert chain.json()["store_id"] is None
    assert chain.json()["members"] >= 4
    assert_problem(
        await gateway.http.get("/v1/members/mix", params={"store_id": store}, headers=other_manager), 403, "forbidden"
    )
    assert_problem(await gateway.http.get("/v1/members/mix", headers=guide), 403, "forbidden")


async def test_concurrent_resolutions_share_batched_calls_and_each_gets_its_own_answer(gateway: RunningGateway) -> None:
    app = await gateway.client_headers(ClientKind.APP)
    phones = [f"139{uuid.uuid4().int % 10**8:08d}" for _ in range(40)]
    members = {}
    for phone in phones[:30]:  # the last ten belong to nobody
        created = await post(gateway, "/v1/members", {"identity": {"type": "phone", "value": phone}}, app)
        members[phone] = created.json()["member_id"]
    resolver = gateway.resources.member_resolutions
    calls_before, resolved_before = resolver.stats
    asked = [*phones, "1380013800"] * 4  # every phone four times, and a malformed one

    answers = await asyncio.gather(
        *(gateway.http.get("/v1/members/resolve", params={"type": "phone", "value": v}, headers=app) for v in asked)
    )

    for value, answer in zip(asked, answers, strict=True):
        if value in members:
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"member_id": members[value]}
        elif value == "1380013800":
            assert assert_problem(answer, 422, "invalid-argument")["reason"] == "invalid-phone"
        else:
            assert assert_problem(answer, 404, "not-found")["reason"] == "identity-not-found"
    calls, resolved = resolver.stats
    assert resolved - resolved_before == len(asked)
    assert calls - calls_before < len(asked)  # coalesced: fewer calls than resolutions
