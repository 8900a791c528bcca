"""Sessions sealed into their cookie, so that any replica of the console serves any session.

The cookie carries the whole session — the gateway token, the CSRF token, when the session
was last used and when it must end — encrypted and authenticated with AES-256-GCM under a
key derived from ``CONSOLE_SESSION_KEY``. Every replica holding that key opens it; no
replica keeps anything in memory, so a restart or a load balancer signs nobody out. A
cookie that was altered, sealed under another key, or cut short does not open.

A session ends at sign-out (the browser's cookie is deleted), after ``idle_timeout``
seconds without a request (the last use is sealed in the cookie and the console re-seals
it as requests come), or when its gateway token expires (the absolute expiry, sealed too;
the console keeps no client secret to fetch another), whichever comes first. The gateway
checks the token on every call, so a revoked client's session ends at its next request;
sign-out revokes the session's token at the gateway (``POST /v1/auth/revoke``), so a copy
of the cookie taken before sign-out opens nothing afterwards either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

Clock = Callable[[], float]
COOKIE = "console_session"
PRE_SESSION_COOKIE = "console_pre"
_SEAL_PURPOSE = b"retail-console/session-seal/v2"
_SIGN_PURPOSE = b"retail-console/form-token/v2"
_NONCE_BYTES = 12
_VERSION = 2
# Re-seal the cookie (restarting its idle clock) at most this often: a page's parallel
# requests do not each write a cookie.
MAX_RESEAL_INTERVAL = 30.0


@dataclass(frozen=True)
class Principal:
    """Who the gateway says the signed-in client is (the claims of the token it issued us)."""

    client_id: str
    staff_role: str | None
    store_id: str | None
    scopes: frozenset[str]

    @property
    def is_headquarters(self) -> bool:
        return self.staff_role == "headquarters"

    def may_see(self, store: str) -> bool:
        """``store`` is a store id, or ``all`` for the whole chain (headquarters only)."""
        return self.is_headquarters or (self.store_id is not None and store == self.store_id)


@dataclass
class Session:
    session_id: str
    token: str
    principal: Principal
    expires_at: float
    last_seen: float
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # Whether the cookie must be sealed again (its idle clock restarted) with this answer.
    reseal: bool = False


def claims_of(token: str) -> Principal:
    """The claims of a token the gateway has just issued to us (read, not verified: it came from the gateway)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return Principal(
        client_id=str(claims["sub"]),
        staff_role=claims.get("staff_role"),
        store_id=claims.get("store_id"),
        scopes=frozenset(str(claims.get("scope", "")).split()),
    )


class SessionStore:
    """Seals sessions into cookie values and opens them again; holds no session itself."""

    def __init__(self, key: bytes, idle_timeout: float, clock: Clock = time.time) -> None:
        self._seal = AESGCM(hmac.new(key, _SEAL_PURPOSE, hashlib.sha256).digest())
        self._sign_key = hmac.new(key, _SIGN_PURPOSE, hashlib.sha256).digest()
        self._idle_timeout = idle_timeout
        self._reseal_after = min(MAX_RESEAL_INTERVAL, idle_timeout / 10)
        self._clock = clock

    def start(self, token: str, expires_in: int) -> Session:
        now = self._clock()
        return Session(secrets.token_urlsafe(16), token, claims_of(token), now + expires_in, now)

    def cookie_value(self, session: Session) -> str:
        """The session sealed: nonce ‖ AES-GCM(JSON), base64url."""
        payload = {
            "v": _VERSION,
            "sid": session.session_id,
            "tok": session.token,
            "csrf": session.csrf_token,
            "exp": session.expires_at,
            "seen": session.last_seen,
        }
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._seal.encrypt(nonce, json.dumps(payload, separators=(",", ":")).encode(), COOKIE.encode())
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def find(self, cookie: str | None) -> Session | None:
        """The live session a cookie seals (marked for re-sealing when its idle clock should restart), or None."""
        payload = self._open(cookie)
        if payload is None:
            return None
        now = self._clock()
        try:
            token, expires_at, last_seen = str(payload["tok"]), float(payload["exp"]), float(payload["seen"])
            session = Session(str(payload["sid"]), token, claims_of(token), expires_at, last_seen, str(payload["csrf"]))
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        if now - last_seen > self._idle_timeout or now >= expires_at:
            return None
        if now - last_seen >= self._reseal_after:
            session.last_seen = now
            session.reseal = True
        return session

    def _open(self, cookie: str | None) -> dict[str, Any] | None:
        if not cookie or len(cookie) > 4096:
            return None
        try:
            raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            opened = self._seal.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], COOKIE.encode())
            payload = json.loads(opened)
        except (binascii.Error, ValueError, InvalidTag):
            return None
        if not isinstance(payload, dict) or payload.get("v") != _VERSION:
            return None
        return payload

    # -- a form shown before sign-in (the sign-in form) carries a token bound to a random cookie --
    def pre_session_token(self, nonce: str) -> str:
        return self._sign("pre:" + nonce)

    def pre_session_token_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(str(token), self._sign("pre:" + str(nonce)))

    def _sign(self, value: str) -> str:
        mac = hmac.new(self._sign_key, value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
