"""The console's own rules: settings, sessions (idle timeout, token expiry, signed cookie), CSRF tokens."""

from __future__ import annotations

import base64
import json

import pytest

from console.figures import unavailable
from console.gateway_client import Answer
from console.sessions import SessionStore, claims_of
from console.settings import DEV_SESSION_KEY, load_console_settings
from servicekit.settings import SettingsError


def token(**claims: object) -> str:
    """A token shaped like the gateway's (the console reads its claims; the gateway verifies it)."""

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    payload = {"sub": "S001-MGR01", "scope": "stock:read labels:read", **claims}
    return f"{part({'alg': 'HS256'})}.{part(payload)}.signature"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_session_key_must_be_real_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_URL", "https://gateway.example")
    monkeypatch.delenv("CONSOLE_SESSION_KEY", raising=False)
    assert load_console_settings(app_env="local").console_session_key.get_secret_value() == DEV_SESSION_KEY
    with pytest.raises(SettingsError, match="CONSOLE_SESSION_KEY still holds the local-development default"):
        load_console_settings(app_env="production")
    with pytest.raises(SettingsError, match="at least 32 characters"):
        load_console_settings(app_env="production", console_session_key="short")
    production = load_console_settings(app_env="production", console_session_key="k" * 40)
    assert production.cookies_secure
    assert not load_console_settings(app_env="test").cookies_secure


def test_the_gateway_url_is_required_and_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_URL", raising=False)
    with pytest.raises(SettingsError, match="GATEWAY_URL is required"):
        load_console_settings(app_env="local")
    with pytest.raises(SettingsError, match="GATEWAY_URL"):
        load_console_settings(app_env="local", gateway_url="http://gateway/v1/")


def test_claims_name_role_and_store() -> None:
    manager = claims_of(token(staff_role="store_manager", store_id="S001"))
    assert manager.may_see("S001")
    assert not manager.may_see("S002")
    assert not manager.may_see("all")
    headquarters = claims_of(token(sub="HQ-OPS01", staff_role="headquarters"))
    assert headquarters.may_see("all")
    assert headquarters.may_see("S002")


def test_a_session_ends_after_the_idle_timeout_and_with_its_token() -> None:
    clock = Clock()
    store = SessionStore(b"key", idle_timeout=60, clock=clock)
    cookie = store.cookie_value(store.start(token(staff_role="store_manager", store_id="S001"), expires_in=900))
    clock.now += 59
    used = store.find(cookie)
    assert used is not None
    assert used.reseal  # used: its cookie is sealed again with the idle clock restarted
    cookie = store.cookie_value(used)
    clock.now += 59
    assert store.find(cookie) is not None
    clock.now += 61
    assert store.find(cookie) is None  # idle for 120 s since it was last sealed
    assert store.find(store.cookie_value(used)) is None  # re-sealing a stale session does not revive it

    cookie = store.cookie_value(store.start(token(staff_role="store_manager", store_id="S001"), expires_in=100))
    for _ in range(3):
        clock.now += 40
        found = store.find(cookie)
        if found is not None:
            cookie = store.cookie_value(found)
    assert found is None  # the token expired at 100 s, however active the session was


def test_a_session_sealed_by_one_replica_opens_on_another_with_the_same_key_only() -> None:
    clock = Clock()
    first, second = (SessionStore(b"shared key", idle_timeout=60, clock=clock) for _ in range(2))
    session = first.start(token(staff_role="store_manager", store_id="S001"), expires_in=900)
    cookie = first.cookie_value(session)
    opened = second.find(cookie)
    assert opened is not None
    assert (opened.session_id, opened.token, opened.csrf_token) == (
        session.session_id,
        session.token,
        session.csrf_token,
    )
    assert opened.principal == session.principal
    # The token never shows in the cookie, and another key opens nothing.
    assert session.token not in cookie
    assert SessionStore(b"other key", idle_timeout=60, clock=clock).find(cookie) is None


def test_a_tampered_or_truncated_cookie_opens_nothing() -> None:
    store = SessionStore(b"key", idle_timeout=60)
    cookie = store.cookie_value(store.start(token(staff_role="headquarters"), expires_in=900))
    assert store.find(cookie) is not None
    flipped = [cookie[:i] + ("A" if cookie[i] != "A" else "B") + cookie[i + 1 :] for i in (0, 5, 20, len(cookie) - 2)]
    for forged in (*flipped, cookie[:-4], cookie + "AAAA", "", "garbage", "x" * 5000, None):
        assert store.find(forged) is None, forged


def test_the_sign_in_forms_token_is_bound_to_its_cookie() -> None:
    store = SessionStore(b"key", idle_timeout=60)
    form_token = store.pre_session_token("nonce-a")
    assert store.pre_session_token_ok("nonce-a", form_token)
    assert not store.pre_session_token_ok("nonce-b", form_token)
    assert not store.pre_session_token_ok("nonce-a", None)
    assert not store.pre_session_token_ok(None, form_token)


@pytest.mark.parametrize("status", [404, 502, 503])
def test_a_backend_that_is_not_deployed_is_said_to_be_so(status: int) -> None:
    block = unavailable("scorecards", "供应商评分", Answer(status, {"detail": "no backend"}), "zh-CN")
    assert block == {"kind": "notice", "id": "scorecards", "title": "供应商评分", "text": "该服务尚未部署，暂无数据。"}
    english = unavailable("scorecards", "Scorecards", Answer(status, None), "en")
    assert english["text"] == "This service is not deployed yet; there is nothing to show."


def test_a_refusal_or_a_failure_is_not_called_undeployed() -> None:
    assert (
        unavailable("x", "X", Answer(403, {"detail": "no"}), "en")["text"] == "Your account may not read these figures."
    )
    failed = unavailable("x", "X", Answer(500, {"detail": "boom"}), "en")["text"]
    assert "500: boom" in failed
    assert "not deployed" not in failed
