"""Client registrations: who may call the gateway, with which scopes, bound to what.

Four kinds of client (the security rules of docs/architecture.md), each bound to what it may
touch: a POS terminal to one store and terminal, a supplier user to one supplier, store staff
to one store (headquarters staff to none), app back ends to nothing in particular. The same rules are enforced by the
``client_registration`` table's check constraints, so neither side can drift alone.

A client's secret is never stored: only an scrypt hash, ``scrypt$n$r$p$salt$hash``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ClientKind(StrEnum):
    APP = "app"
    POS_TERMINAL = "pos_terminal"
    SUPPLIER_USER = "supplier_user"
    STAFF = "staff"


class StaffRole(StrEnum):
    STORE_GUIDE = "store_guide"
    STORE_MANAGER = "store_manager"
    HEADQUARTERS = "headquarters"

    @property
    def works_in_one_store(self) -> bool:
        return self is not StaffRole.HEADQUARTERS


class InvalidClientRegistration(ValueError):
    """A registration that breaks the rules; the message says which."""


_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{2,127}")
_BINDING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_SCOPE = re.compile(r"[a-z][a-z0-9_.:/-]{0,99}")
MAX_SCOPES = 64
MAX_DISPLAY_NAME = 200


@dataclass(frozen=True)
class ClientRegistration:
    """One registered client. Invalid combinations cannot be constructed."""

    client_id: str
    kind: ClientKind
    display_name: str
    secret_hash: str = field(repr=False)
    scopes: frozenset[str] = frozenset()
    store_id: str | None = None
    terminal_id: str | None = None
    supplier_id: str | None = None
    staff_role: StaffRole | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        # Accept the plain strings a caller or a database row provides.
        object.__setattr__(self, "kind", ClientKind(self.kind))
        if self.staff_role is not None:
            object.__setattr__(self, "staff_role", StaffRole(self.staff_role))
        object.__setattr__(self, "scopes", frozenset(self.scopes))
        problems = [*self._identity_problems(), *self._binding_problems()]
        if problems:
            raise InvalidClientRegistration(f"client {self.client_id!r}: " + "; ".join(problems))

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def verify_secret(self, secret: str) -> bool:
        return verify_client_secret(secret, self.secret_hash)

    def _identity_problems(self) -> Iterable[str]:
        if not _CLIENT_ID.fullmatch(self.client_id):
            yield "client_id must be 3-128 letters, digits or . _ : - and start with a letter or digit"
        if not self.display_name.strip() or len(self.display_name) > MAX_DISPLAY_NAME:
            yield f"display_name must be 1-{MAX_DISPLAY_NAME} characters"
        if not is_scrypt_hash(self.secret_hash):
            yield "secret_hash must be an scrypt hash from hash_client_secret, never the secret itself"
        if len(self.scopes) > MAX_SCOPES:
            yield f"at most {MAX_SCOPES} scopes"
        bad_scopes = sorted(scope for scope in self.scopes if not _SCOPE.fullmatch(scope))
        if bad_scopes:
            yield f"malformed scopes {bad_scopes} (lower-case, e.g. 'pos.sales:write')"
        for name in ("store_id", "terminal_id", "supplier_id"):
            value = getattr(self, name)
            if value is not None and not _BINDING_ID.fullmatch(value):
                yield f"{name} {value!r} is not a valid identifier"

    def _binding_problems(self) -> Iterable[str]:
        kind, role = self.kind, self.staff_role
        if (kind is ClientKind.POS_TERMINAL) != (self.terminal_id is not None):
            yield "a pos_terminal needs a terminal_id, and only a pos_terminal has one"
        if (kind is ClientKind.SUPPLIER_USER) != (self.supplier_id is not None):
            yield "a supplier_user needs a supplier_id, and only a supplier_user has one"
        if (kind is ClientKind.STAFF) != (role is not None):
            yield "staff need a staff_role, and only staff have one"
        needs_store = kind is ClientKind.POS_TERMINAL or (role is not None and role.works_in_one_store)
        if needs_store and self.store_id is None:
            yield "a pos_terminal, store_guide or store_manager needs a store_id"
        if not needs_store and self.store_id is not None:
            yield "only a pos_terminal, store_guide or store_manager is bound to a store; store_id must be empty"


# ---- secrets ------------------------------------------------------------------------------------

# Client secrets are long random machine credentials, not human passwords; these costs
# (about 16 MiB and tens of milliseconds per check) are ample for them.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
MIN_SECRET_LENGTH = 16


def hash_client_secret(secret: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """An scrypt hash of ``secret`` with a fresh random salt: ``scrypt$n$r$p$salt$hash``."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"a client secret must be at least {MIN_SECRET_LENGTH} characters")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(secret, salt, n, r, p, _HASH_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_client_secret(secret: str, secret_hash: str) -> bool:
    """Whether ``secret`` matches the hash; compares in constant time, False for a malformed hash."""
    parsed = _parse(secret_hash)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    candidate = _scrypt(secret, salt, n, r, p, len(expected))
    return hmac.compare_digest(candidate, expected)


def is_scrypt_hash(value: str) -> bool:
    return _parse(value) is not None


def _parse(value: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = value.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(part.isdigit() for part in parts[1:4]):
        return None
    n, r, p = (int(part) for part in parts[1:4])
    # Bounds keep a tampered row from making one check cost gigabytes or minutes.
    if not (2**10 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        return None
    try:
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except (binascii.Error, ValueError):
        return None
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        return None
    return n, r, p, salt, digest


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    memory = 128 * r * (n + p + 2) + 2**16
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=memory, dklen=length)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
