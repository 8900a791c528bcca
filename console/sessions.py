"""Server-side sessions: the cookie carries only a signed random id; the gateway token stays here.

A session ends at sign-out, after ``idle_timeout`` seconds without a request, or when its
gateway token expires (the console keeps no client secret to fetch another), whichever
comes first. The store is the process's memory: a restart signs everyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
COOKIE = "console_session"
PRE_SESSION_COOKIE = "console_pre"


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
    def __init__(self, key: bytes, idle_timeout: float, clock: Clock = time.time) -> None:
        self._key = hashlib.sha256(b"retail-console/session/v1" + key).digest()
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def start(self, token: str, expires_in: int) -> Session:
        now = self._clock()
        self._forget_ended(now)
        session = Session(secrets.token_urlsafe(32), token, claims_of(token), now + expires_in, now)
        self._sessions[session.session_id] = session
        return session

    def cookie_value(self, session: Session) -> str:
        return f"{session.session_id}.{self._sign(session.session_id)}"

    def find(self, cookie: str | None) -> Session | None:
        """The live session a cookie names (its idle clock restarted), or None."""
        if not cookie or "." not in cookie:
            return None
        session_id, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(session_id)):
            return None
        session = self._sessions.get(session_id)
        now = self._clock()
        if session is None:
            return None
        if now - session.last_seen > self._idle_timeout or now >= session.expires_at:
            self.end(session)
            return None
        session.last_seen = now
        return session

    def end(self, session: Session) -> None:
        self._sessions.pop(session.session_id, None)

    # -- a form shown before sign-in (the sign-in form) carries a token bound to a random cookie --
    def pre_session_token(self, nonce: str) -> str:
        return self._sign("pre:" + nonce)

    def pre_session_token_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(str(token), self._sign("pre:" + str(nonce)))

    def _sign(self, value: str) -> str:
        mac = hmac.new(self._key, value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def _forget_ended(self, now: float) -> None:
        for session in list(self._sessions.values()):
            if now - session.last_seen > self._idle_timeout or now >= session.expires_at:
                self.end(session)
