"""Access tokens: compact JWS (JWT) signed with HMAC-SHA256, implemented on the standard library.

Only ``HS256`` is accepted; a token naming any other algorithm (``none`` included) is
refused before its signature is looked at. The header's ``kid`` selects the verifying key,
so keys rotate by putting a new one first: new tokens are signed with it while tokens of
the old key keep verifying until they expire and the old key is removed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ALGORITHM = "HS256"
ISSUER = "retail-gateway"
AUDIENCE = "retail-platform"
# Clock difference tolerated between gateway pods for iat.
CLOCK_SKEW_SECONDS = 30
MAX_TOKEN_LENGTH = 8192


class InvalidToken(ValueError):
    """The token is malformed, badly signed, of another algorithm, or expired; the message says which."""


@dataclass(frozen=True)
class TokenClaims:
    """What an access token asserts about its client."""

    client_id: str
    kind: str
    scopes: frozenset[str]
    issued_at: int
    expires_at: int
    token_id: str
    store_id: str | None = None
    terminal_id: str | None = None
    supplier_id: str | None = None
    staff_role: str | None = None


class TokenSigner:
    """Signs with the first key and verifies with any of them."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._signing_kid, self._signing_key = keys[0]
        self._keys: dict[str, bytes] = dict(keys)

    def issue(self, claims: TokenClaims) -> str:
        header = {"alg": ALGORITHM, "typ": "JWT", "kid": self._signing_kid}
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": claims.client_id,
            "kind": claims.kind,
            "scope": " ".join(sorted(claims.scopes)),
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "jti": claims.token_id,
        }
        for name in ("store_id", "terminal_id", "supplier_id", "staff_role"):
            value = getattr(claims, name)
            if value is not None:
                payload[name] = value
        signing_input = _b64_json(header) + "." + _b64_json(payload)
        return signing_input + "." + _b64(_sign(self._signing_key, signing_input))

    def verify(self, token: str, *, now: int) -> TokenClaims:
        """The claims of a well-formed, correctly signed, unexpired token; otherwise InvalidToken."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token too long")
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("not a compact JWS")
        header = _json_part(parts[0], "header")
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"algorithm {str(header.get('alg'))[:20]!r} is not accepted; only {ALGORITHM}")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("unknown signing key id")
        try:
            signature = _unb64(parts[2])
        except ValueError:
            raise InvalidToken("signature is not base64url") from None
        if not hmac.compare_digest(signature, _sign(key, parts[0] + "." + parts[1])):
            raise InvalidToken("bad signature")
        return _claims(_json_part(parts[1], "payload"), now)


def new_token_id() -> str:
    return secrets.token_urlsafe(16)


def _claims(payload: Mapping[str, Any], now: int) -> TokenClaims:
    if payload.get("iss") != ISSUER or payload.get("aud") != AUDIENCE:
        raise InvalidToken("wrong issuer or audience")
    issued_at, expires_at = payload.get("iat"), payload.get("exp")
    if not isinstance(issued_at, int) or not isinstance(expires_at, int):
        raise InvalidToken("iat and exp must be integers")
    if expires_at <= now:
        raise InvalidToken("token expired")
    if issued_at > now + CLOCK_SKEW_SECONDS:
        raise InvalidToken("token issued in the future")
    subject, kind, scope, token_id = (payload.get(name) for name in ("sub", "kind", "scope", "jti"))
    if not all(isinstance(value, str) for value in (subject, kind, scope, token_id)):
        raise InvalidToken("sub, kind, scope and jti must be strings")
    bindings = {name: payload.get(name) for name in ("store_id", "terminal_id", "supplier_id", "staff_role")}
    if not all(value is None or isinstance(value, str) for value in bindings.values()):
        raise InvalidToken("bindings must be strings")
    return TokenClaims(
        client_id=str(subject),
        kind=str(kind),
        scopes=frozenset(str(scope).split()),
        issued_at=issued_at,
        expires_at=expires_at,
        token_id=str(token_id),
        **bindings,
    )


def _sign(key: bytes, signing_input: str) -> bytes:
    return hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()


def _json_part(part: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(_unb64(part))
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken(f"{name} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"{name} is not a JSON object")
    return value


def _b64_json(value: Mapping[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(char not in _B64_ALPHABET for char in text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
