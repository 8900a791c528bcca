"""Authentication and authorisation through the real gateway: tokens, scopes, ownership, revocation."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable

import pytest

from devstack.servers import free_port
from gateway.adapters.client_registry import ClientRegistry
from gateway.domain.clients import ClientKind, ClientRegistration, StaffRole
from gateway.domain.tokens import InvalidToken, TokenClaims, TokenSigner
from gateway.security.authentication import Authenticator
from gateway.settings import GatewaySettings
from tests.support.clock import HandClock
from tests.support.gateway import (
    RunningGateway,
    assert_problem,
    gateway_schema,
    gateway_settings,
    idempotency_key,
    running_gateway,
)

__all__ = ["gateway_schema", "gateway_settings"]  # fixtures used by this module

KEYS = "k2:second-signing-key-0123456789abcdef,k1:first-signing-key-0123456789abcdef"


@pytest.fixture
async def gateway(gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    async with running_gateway(gateway_settings(token_signing_keys=KEYS, client_cache_seconds=0)) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(value: dict[str, object] | bytes) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# ---- issuing tokens --------------------------------------------------------------------------------------


async def test_a_terminal_gets_a_token_carrying_its_kind_scopes_and_bindings(gateway: RunningGateway) -> None:
    client_id, secret = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    response = await gateway.http.post(
        "/v1/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == (
        "catalogue:read coupons:read coupons:redeem members:points:read members:points:redeem members:read "
        "members:write pos:price-book:read pos:sales:write pos:sync:read prices:read stock:read"
    )
    header_part, payload_part, _ = body["access_token"].split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=="))
    payload = json.loads(base64.urlsafe_b64decode(payload_part + "=="))
    assert header == {"alg": "HS256", "typ": "JWT", "kid": "k2"}
    assert payload["sub"] == client_id
    assert (payload["kind"], payload["store_id"], payload["terminal_id"]) == ("pos_terminal", "S001", client_id)
    assert payload["exp"] - payload["iat"] == body["expires_in"]
    assert payload["jti"]


async def test_json_and_http_basic_grants_work_too(gateway: RunningGateway) -> None:
    client_id, secret = await gateway.register(ClientKind.APP)
    as_json = await gateway.http.post(
        "/v1/auth/token", json={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    as_basic = await gateway.http.post(
        "/v1/auth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert as_json.status_code == 200, as_json.text
    assert as_basic.status_code == 200, as_basic.text


async def test_a_token_may_be_narrowed_to_fewer_scopes_but_never_widened(gateway: RunningGateway) -> None:
    client_id, secret = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    narrowed = await gateway.http.post("/v1/auth/token", data=grant | {"scope": "pos:sync:read"})
    widened = await gateway.http.post("/v1/auth/token", data=grant | {"scope": "pos:sync:read clients:admin"})
    assert narrowed.json()["scope"] == "pos:sync:read"
    assert assert_problem(widened, 400, "bad-request")["error"] == "invalid_scope"
    sales = await gateway.http.post(
        "/v1/pos/sales/batch",
        json={"sales": []},
        headers=bearer(narrowed.json()["access_token"]) | idempotency_key(),
    )
    assert_problem(sales, 403, "forbidden")


async def test_wrong_secrets_unknown_clients_and_other_grants_are_refused(gateway: RunningGateway) -> None:
    client_id, secret = await gateway.register(ClientKind.APP)
    wrong = await gateway.http.post(
        "/v1/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x" * 20}
    )
    unknown = await gateway.http.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": "nobody-at-all", "client_secret": secret},
    )
    password = await gateway.http.post(
        "/v1/auth/token", data={"grant_type": "password", "client_id": client_id, "client_secret": secret}
    )
    plain = await gateway.http.post("/v1/auth/token", content=b"hello", headers={"content-type": "text/plain"})
    assert assert_problem(wrong, 401, "unauthenticated")["error"] == "invalid_client"
    assert assert_problem(unknown, 401, "unauthenticated")["detail"] == wrong.json()["detail"]
    assert assert_problem(password, 400, "bad-request")["error"] == "unsupported_grant_type"
    assert_problem(plain, 415, "unsupported-media-type")
    assert secret not in wrong.text + unknown.text


async def test_token_errors_carry_rfc_6749_error_and_error_description_inside_the_problem(
    gateway: RunningGateway,
) -> None:
    client_id, secret = await gateway.register(ClientKind.APP)
    token_url = "/v1/auth/token"
    grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    basic = "Basic " + base64.b64encode(f"{client_id}:{'x' * 20}".encode()).decode()
    answers = {
        "wrong secret": await gateway.http.post(token_url, data=grant | {"client_secret": "x" * 20}),
        "wrong basic secret": await gateway.http.post(
            token_url, data={"grant_type": "client_credentials"}, headers={"Authorization": basic}
        ),
        "other grant": await gateway.http.post(token_url, data=grant | {"grant_type": "password"}),
        "no secret": await gateway.http.post(
            token_url, data={"grant_type": "client_credentials", "client_id": client_id}
        ),
        "unknown field": await gateway.http.post(token_url, data=grant | {"username": "x"}),
        "unknown scope": await gateway.http.post(token_url, data=grant | {"scope": "root:everything"}),
        "scope not held": await gateway.http.post(token_url, data=grant | {"scope": "clients:admin"}),
        "plain text": await gateway.http.post(token_url, content=b"hello", headers={"content-type": "text/plain"}),
    }
    expected = {
        "wrong secret": (401, "invalid_client"),
        "wrong basic secret": (401, "invalid_client"),
        "other grant": (400, "unsupported_grant_type"),
        "no secret": (400, "invalid_request"),
        "unknown field": (400, "invalid_request"),
        "unknown scope": (400, "invalid_scope"),
        "scope not held": (400, "invalid_scope"),
        "plain text": (415, "invalid_request"),
    }
    assert {case: (answer.status_code, answer.json().get("error")) for case, answer in answers.items()} == expected
    for case, answer in answers.items():
        body = answer.json()
        # RFC 6749 §5.2: error_description is printable ASCII without '"' or '\\'; RFC 9457 members stay.
        assert re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]+", body["error_description"]), case
        assert body["error_description"] == body["detail"], case
        assert {"type", "title", "status", "detail"} <= body.keys(), case
        assert answer.headers["cache-control"] == "no-store", case
        if answer.status_code == 401:
            assert answer.headers["www-authenticate"].startswith("Basic "), case
        assert secret not in answer.text


# ---- refusing tokens ---------------------------------------------------------------------------------------


async def test_requests_without_a_valid_token_get_401_with_a_bearer_challenge(gateway: RunningGateway) -> None:
    client_id, secret = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    token = await gateway.token(client_id, secret)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    other_store = b64(claims | {"store_id": "S002"})
    now = int(time.time())
    foreign = TokenSigner([("k2", b"an-attackers-key-0123456789abcdef0123")])
    expired = TokenSigner([("k1", b"first-signing-key-0123456789abcdef")]).issue(
        TokenClaims(client_id, "pos_terminal", frozenset({"pos:sync:read"}), now - 3600, now - 60, "j", "S001")
    )
    refused = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {token}"},
        "garbage": bearer("not-a-token"),
        "tampered claims": bearer(f"{header}.{other_store}.{signature}"),
        "alg none": bearer(f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k2'})}.{payload}."),
        "alg none, signature kept": bearer(f"{b64({'alg': 'none', 'kid': 'k2'})}.{payload}.{signature}"),
        "alg HS512": bearer(f"{b64({'alg': 'HS512', 'kid': 'k2'})}.{payload}.{signature}"),
        "unknown kid": bearer(f"{b64({'alg': 'HS256', 'kid': 'k9'})}.{payload}.{signature}"),
        "signed with another key": bearer(
            foreign.issue(TokenClaims(client_id, "pos_terminal", frozenset({"pos:sync:read"}), now, now + 60, "j"))
        ),
        "expired": bearer(expired),
    }
    for case, headers in refused.items():
        response = await gateway.http.get("/v1/pos/sync", headers=headers)
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer"), case


async def test_tokens_of_the_previous_signing_key_keep_verifying_after_rotation(gateway: RunningGateway) -> None:
    client_id, _ = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    now = int(time.time())
    old = TokenSigner([("k1", b"first-signing-key-0123456789abcdef")]).issue(
        TokenClaims(client_id, "pos_terminal", frozenset({"pos:sync:read"}), now, now + 60, "j", "S001", client_id)
    )
    response = await gateway.http.get("/v1/pos/sync", headers=bearer(old))
    assert response.status_code == 200, response.text


async def test_a_revoked_clients_tokens_stop_working_and_it_gets_no_new_one(gateway: RunningGateway) -> None:
    client_id, secret = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    admin = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    token = await gateway.token(client_id, secret)
    assert (await gateway.http.get("/v1/pos/sync", headers=bearer(token))).status_code == 200

    revoked = await gateway.http.post(f"/v1/admin/clients/{client_id}/revoke", headers=admin | idempotency_key())
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"]

    assert_problem(await gateway.http.get("/v1/pos/sync", headers=bearer(token)), 401, "unauthenticated")
    again = await gateway.http.post(
        "/v1/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    assert_problem(again, 401, "unauthenticated")


async def test_a_revoked_token_is_refused_on_every_pod_while_the_clients_other_tokens_work(
    gateway: RunningGateway, gateway_settings: Callable[..., GatewaySettings]
) -> None:
    client_id, secret = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    signed_out, other = await gateway.token(client_id, secret), await gateway.token(client_id, secret)
    settings = gateway_settings(token_signing_keys=KEYS, client_cache_seconds=0)
    async with running_gateway(settings) as second_pod:
        for pod in (gateway, second_pod):  # both pods have the token verified and remembered
            assert (await pod.http.get("/v1/pos/sync", headers=bearer(signed_out))).status_code == 200

        revoked = await gateway.http.post("/v1/auth/revoke", headers=bearer(signed_out))

        assert revoked.status_code == 204, revoked.text
        for pod in (gateway, second_pod):
            assert_problem(await pod.http.get("/v1/pos/sync", headers=bearer(signed_out)), 401, "unauthenticated")
            assert (await pod.http.get("/v1/pos/sync", headers=bearer(other))).status_code == 200
    # Revoking again, or without a token, is refused; the client still gets new tokens.
    assert_problem(await gateway.http.post("/v1/auth/revoke", headers=bearer(signed_out)), 401, "unauthenticated")
    assert_problem(await gateway.http.post("/v1/auth/revoke"), 401, "unauthenticated")
    fresh = await gateway.token(client_id, secret)
    assert (await gateway.http.get("/v1/pos/sync", headers=bearer(fresh))).status_code == 200


async def test_a_remembered_token_is_refused_once_its_exp_has_passed(gateway: RunningGateway) -> None:
    client_id, secret = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    clock = HandClock()
    authenticator = Authenticator(
        gateway.resources.clients,
        TokenSigner(gateway.resources.settings.signing_keys),
        token_ttl_seconds=60,
        cache_seconds=0,
        clock=lambda: clock().timestamp(),
    )
    claims = await authenticator.issue(client_id, secret, None)
    assert isinstance(claims, TokenClaims)
    token = authenticator.sign(claims)
    # The first request verifies the signature; the next ones find the token remembered.
    for _ in range(3):
        assert (await authenticator.authenticate(token)).client_id == client_id
    clock.advance(seconds=59)
    assert (await authenticator.authenticate(token)).client_id == client_id

    clock.advance(seconds=1)
    with pytest.raises(InvalidToken, match="expired"):
        await authenticator.authenticate(token)
    with pytest.raises(InvalidToken, match="expired"):
        await authenticator.authenticate(token)


async def test_a_remembered_token_is_refused_once_its_client_is_revoked(gateway: RunningGateway) -> None:
    client_id, secret = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    other_id, other_secret = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    authenticator = Authenticator(
        gateway.resources.clients,
        TokenSigner(gateway.resources.settings.signing_keys),
        token_ttl_seconds=600,
        cache_seconds=300,
    )
    tokens = {}
    for client, client_secret in ((client_id, secret), (other_id, other_secret)):
        claims = await authenticator.issue(client, client_secret, None)
        assert isinstance(claims, TokenClaims)
        tokens[client] = authenticator.sign(claims)
        assert (await authenticator.authenticate(tokens[client])).client_id == client

    # As the revoke route does: the registry, then this pod's cached registration.
    assert await gateway.resources.clients.revoke(client_id) is not None
    authenticator.forget(client_id)

    with pytest.raises(InvalidToken, match="revoked"):
        await authenticator.authenticate(tokens[client_id])
    assert (await authenticator.authenticate(tokens[other_id])).client_id == other_id


class CountingRegistry(ClientRegistry):
    """The real registry, counting its reads of registrations and revoked token ids."""

    def __init__(self, registry: ClientRegistry) -> None:
        self.__dict__.update(registry.__dict__)
        self.reads: list[str] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def get(self, client_id: str) -> ClientRegistration | None:
        registration = await super().get(client_id)
        self.reads.append("registration")
        await self.hold.wait()  # read, but not answered yet
        return registration

    async def revoked_token_ids(self, client_id: str) -> frozenset[str]:
        revoked = await super().revoked_token_ids(client_id)
        self.reads.append("revoked")
        await self.hold.wait()
        return revoked


async def counted_client(gateway: RunningGateway) -> tuple[str, CountingRegistry, Authenticator, str]:
    """A new app client, an authenticator caching for 300 s over a counting registry, and a token
    it issued (the reads of issuing it forgotten)."""
    client_id, secret = await gateway.register(ClientKind.APP)
    registry = CountingRegistry(gateway.resources.clients)
    authenticator = Authenticator(
        registry, TokenSigner(gateway.resources.settings.signing_keys), token_ttl_seconds=600, cache_seconds=300
    )
    claims = await authenticator.issue(client_id, secret, None)
    assert isinstance(claims, TokenClaims)
    token = authenticator.sign(claims)
    registry.reads.clear()
    return client_id, registry, authenticator, token


async def test_requests_finding_a_clients_cached_entry_expired_together_share_one_registry_read(
    gateway: RunningGateway,
) -> None:
    client_id, registry, authenticator, token = await counted_client(gateway)

    registry.hold.clear()  # the first read is held until every request has asked
    asking = [asyncio.create_task(authenticator.authenticate(token)) for _ in range(64)]
    while not registry.reads:
        await asyncio.sleep(0)
    registry.hold.set()
    principals = await asyncio.gather(*asking)

    assert {principal.client_id for principal in principals} == {client_id}
    assert sorted(registry.reads) == ["registration", "revoked"]


async def test_a_registry_read_in_flight_when_the_client_is_forgotten_is_not_kept(gateway: RunningGateway) -> None:
    client_id, registry, authenticator, token = await counted_client(gateway)

    registry.hold.clear()
    stale = asyncio.create_task(authenticator.authenticate(token))  # reads the registration before the revocation
    while not registry.reads:
        await asyncio.sleep(0)
    assert await gateway.resources.clients.revoke(client_id) is not None
    authenticator.forget(client_id)  # as the revoke route does
    registry.hold.set()
    await asyncio.gather(stale, return_exceptions=True)

    with pytest.raises(InvalidToken, match="revoked"):
        await authenticator.authenticate(token)


async def test_a_token_differing_from_a_remembered_one_in_any_byte_is_verified_afresh(
    gateway: RunningGateway,
) -> None:
    client_id, secret = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    token = await gateway.token(client_id, secret)
    assert (await gateway.http.get("/v1/pos/sync", headers=bearer(token))).status_code == 200
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    for forged in (
        f"{header}.{b64(claims | {'store_id': 'S002'})}.{signature}",
        f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
    ):
        assert_problem(await gateway.http.get("/v1/pos/sync", headers=bearer(forged)), 401, "unauthenticated")
    assert (await gateway.http.get("/v1/pos/sync", headers=bearer(token))).status_code == 200


# ---- scopes and ownership ---------------------------------------------------------------------------------------


async def test_only_headquarters_staff_administer_clients(gateway: RunningGateway) -> None:
    manager = await gateway.client_headers(ClientKind.STAFF, store_id="S001", staff_role=StaffRole.STORE_MANAGER)
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001")
    supplier = await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id="SUP01")
    # Even a client registered with the admin scope, if it is not headquarters staff.
    app_with_scope = await gateway.client_headers(ClientKind.APP, scopes=frozenset({"clients:admin"}))
    new = {"client_id": "intruder-01", "kind": "app", "display_name": "Intruder"}
    for headers in (manager, terminal, supplier, app_with_scope):
        response = await gateway.http.post("/v1/admin/clients", json=new, headers=headers | idempotency_key())
        assert_problem(response, 403, "forbidden")
        assert_problem(await gateway.http.get("/v1/admin/clients/intruder-01", headers=headers), 403, "forbidden")


async def test_registration_refuses_scopes_the_clients_kind_can_never_use_and_names_them(
    gateway: RunningGateway,
) -> None:
    admin = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    overreaching = {
        "app": {"kind": "app", "scopes": ["stock:read", "clients:admin", "members:pii:read"]},
        "till": {"kind": "pos_terminal", "store_id": "S001", "terminal_id": "T9", "scopes": ["members:erase"]},
        "supplier": {"kind": "supplier_user", "supplier_id": "SUP001", "scopes": ["members:read"]},
        "guide": {"kind": "staff", "staff_role": "store_guide", "store_id": "S001", "scopes": ["prices:write"]},
    }
    unusable = {
        "app": "clients:admin, members:pii:read",
        "till": "members:erase",
        "supplier": "members:read",
        "guide": "prices:write",
    }
    for name, fields in overreaching.items():
        new = {"client_id": f"overreach-{name}", "display_name": name} | fields
        refused = await gateway.http.post("/v1/admin/clients", json=new, headers=admin | idempotency_key())
        body = assert_problem(refused, 422, "invalid-argument")
        assert body["errors"][0]["location"] == "body.scopes", body
        assert body["detail"].endswith(unusable[name]), body
        assert_problem(await gateway.http.get(f"/v1/admin/clients/overreach-{name}", headers=admin), 404, "not-found")
    fitting = {"client_id": "fitting-app", "display_name": "app", "kind": "app", "scopes": ["stock:read"]}
    created = await gateway.http.post("/v1/admin/clients", json=fitting, headers=admin | idempotency_key())
    assert (created.status_code, created.json()["client"]["scopes"]) == (201, ["stock:read"])


async def test_headquarters_register_rotate_and_inspect_a_client(gateway: RunningGateway) -> None:
    admin = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    new = {
        "client_id": "S009-POS01",
        "kind": "pos_terminal",
        "display_name": "Till 1",
        "store_id": "S009",
        "terminal_id": "S009-POS01",
    }
    key = idempotency_key()
    created = await gateway.http.post("/v1/admin/clients", json=new, headers=admin | key)
    assert created.status_code == 201, created.text
    secret = created.json()["client_secret"]
    assert created.json()["client"]["scopes"] == [
        "catalogue:read",
        "coupons:read",
        "coupons:redeem",
        "members:points:read",
        "members:points:redeem",
        "members:read",
        "members:write",
        "pos:price-book:read",
        "pos:sales:write",
        "pos:sync:read",
        "prices:read",
        "stock:read",
    ]
    replayed = await gateway.http.post("/v1/admin/clients", json=new, headers=admin | key)
    assert replayed.status_code == 201
    assert replayed.json()["client_secret"] is None  # a secret is never stored, not even for replays
    taken = await gateway.http.post("/v1/admin/clients", json=new, headers=admin | idempotency_key())
    assert_problem(taken, 409, "already-exists")
    bad = await gateway.http.post(
        "/v1/admin/clients", json=new | {"client_id": "S009-POS02", "store_id": None}, headers=admin | idempotency_key()
    )
    assert_problem(bad, 422, "invalid-argument")

    await gateway.token("S009-POS01", secret)
    rotated = await gateway.http.post("/v1/admin/clients/S009-POS01/secret", headers=admin | idempotency_key())
    assert rotated.status_code == 200, rotated.text
    old = await gateway.http.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": "S009-POS01", "client_secret": secret},
    )
    assert_problem(old, 401, "unauthenticated")
    await gateway.token("S009-POS01", rotated.json()["client_secret"])
    shown = await gateway.http.get("/v1/admin/clients/S009-POS01", headers=admin)
    assert shown.json()["store_id"] == "S009"
    assert "secret" not in shown.text
    assert_problem(await gateway.http.get("/v1/admin/clients/nobody-here", headers=admin), 404, "not-found")


async def test_a_terminal_reads_only_its_own_stores_sync_data(gateway: RunningGateway) -> None:
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001")
    app = await gateway.client_headers(ClientKind.APP)
    sync = await gateway.http.get("/v1/pos/sync", headers=terminal)
    assert sync.status_code == 200, sync.text
    assert sync.json()["store"]["store_id"] == "S001"
    assert_problem(await gateway.http.get("/v1/pos/sync", headers=app), 403, "forbidden")


async def test_the_access_log_names_the_client_and_its_kind_and_nothing_personal(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    client_id, secret = await gateway.register(ClientKind.POS_TERMINAL, store_id="S001")
    token = await gateway.token(client_id, secret)
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        await gateway.http.get("/v1/pos/sync?phone=13800138000", headers=bearer(token))
    [line] = [record for record in caplog.records if record.name == "gateway.access"]
    assert (line.client_id, line.client_kind, line.route) == (client_id, "pos_terminal", "/v1/pos/sync")  # type: ignore[attr-defined]
    assert "13800138000" not in json.dumps(line.__dict__, default=str)


async def test_a_client_over_its_rate_limit_gets_429_with_retry_after(
    gateway_settings: Callable[..., GatewaySettings],
) -> None:
    async with running_gateway(gateway_settings(rate_limit_per_second=0.01, rate_limit_burst=3)) as gateway:
        terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001")
        other = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S001")
        statuses = [(await gateway.http.get("/v1/pos/sync", headers=terminal)).status_code for _ in range(3)]
        limited = await gateway.http.get("/v1/pos/sync", headers=terminal)
        assert statuses == [200, 200, 200]
        assert_problem(limited, 429, "too-many-requests")
        assert int(limited.headers["retry-after"]) >= 1
        assert (await gateway.http.get("/v1/pos/sync", headers=other)).status_code == 200


async def test_one_idempotency_key_cannot_replay_a_revocation_onto_another_client(gateway: RunningGateway) -> None:
    admin = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    first, _ = await gateway.register(ClientKind.APP)
    second, second_secret = await gateway.register(ClientKind.APP)
    key = idempotency_key()
    assert (await gateway.http.post(f"/v1/admin/clients/{first}/revoke", headers=admin | key)).status_code == 200
    other = await gateway.http.post(f"/v1/admin/clients/{second}/revoke", headers=admin | key)
    assert_problem(other, 422, "idempotency-key-reused")
    await gateway.token(second, second_secret)  # still active


async def test_while_the_gateway_database_is_down_token_and_api_requests_get_503_not_500(
    gateway_settings: Callable[..., GatewaySettings],
) -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/gateway"
    async with running_gateway(gateway_settings(database_url=down, token_signing_keys=KEYS)) as gateway:
        token = await gateway.http.post(
            "/v1/auth/token", data={"grant_type": "client_credentials", "client_id": "S001-POS01", "client_secret": "x"}
        )
        now = int(time.time())
        signed = TokenSigner([("k2", b"second-signing-key-0123456789abcdef")]).issue(
            TokenClaims("S001-POS01", "pos_terminal", frozenset({"pos:sync:read"}), now, now + 60, "j", "S001")
        )
        sync = await gateway.http.get("/v1/pos/sync", headers=bearer(signed))
    for response in (token, sync):
        assert_problem(response, 503, "service-unavailable")
        assert response.headers["retry-after"] == "2"
