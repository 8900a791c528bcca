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
    session = store.start(token(staff_role="store_manager", store_id="S001"), expires_in=900)
    cookie = store.cookie_value(session)
    clock.now += 59
    assert store.find(cookie) is session  # used: the idle clock restarts
    clock.now += 59
    assert store.find(cookie) is session
    clock.now += 61
    assert store.find(cookie) is None
    assert store.find(cookie) is None  # gone for good

    session = store.start(token(staff_role="store_manager", store_id="S001"), expires_in=100)
    cookie = store.cookie_value(session)
    for _ in range(3):
        clock.now += 40
        found = store.find(cookie)
    assert found is None  # the token expired at 100 s, however active the session was


def test_a_cookie_opens_only_the_session_it_was_signed_for() -> None:
    store = SessionStore(b"key", idle_timeout=60)
    session = store.start(token(staff_role="headquarters"), expires_in=900)
    session_id, _, signature = store.cookie_value(session).rpartition(".")
    assert store.find(f"{session_id}.{signature}") is session
    assert store.find(f"{session_id}.forged") is None
    assert store.find(session_id) is None
    assert store.find(None) is None
    assert SessionStore(b"other key", idle_timeout=60).find(f"{session_id}.{signature}") is None
    store.end(session)
    assert store.find(f"{session_id}.{signature}") is None


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
