"""Authentication: client credentials → access token, and bearer token → :class:`Principal`.

Revocation: a token is only accepted while its client's registration is active. Each pod
caches registrations for ``CLIENT_CACHE_SECONDS`` (default 5 s), so a revoked client's
tokens stop working on every pod within that bound (at once on the pod that revoked).

A single token can be revoked before it expires (:meth:`Authenticator.revoke`, a client
signing out): it is refused at once on the pod that revoked it and, as each pod caches a
client's revoked token ids for the same ``CLIENT_CACHE_SECONDS``, on every pod within that
bound.

Both caches read the registry once per client when they run out: the requests that find a
client's entry expired together (every connection of a busy client, every few seconds)
share one read instead of each opening a database connection for the same row.

Verification: a token whose signature checked out is remembered (the whole token, its
signature included, up to :data:`VERIFIED_TOKENS_KEPT` of them, least recently used
forgotten first), so the next request with it skips the HMAC, the base64 and the JSON
parsing. What is remembered is only that the token is genuine: its ``exp`` is compared
with the clock on every request, and its client's registration is checked on every
request exactly as for a token seen the first time, so expiry and revocation are as
without the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Generic, TypeVar

from gateway.adapters.client_registry import ClientRegistry
from gateway.domain.clients import ClientKind, ClientRegistration, StaffRole, hash_client_secret, verify_client_secret
from gateway.domain.scopes import effective_scopes
from gateway.domain.tokens import InvalidToken, TokenClaims, TokenSigner, new_token_id
from gateway.http import problems

MAX_CONCURRENT_SECRET_CHECKS = 8
# Verified tokens remembered per pod; a token is a few hundred bytes.
VERIFIED_TOKENS_KEPT = 10_000
# Clients whose registration (and revoked token ids) a pod keeps at most; past it, it starts over.
CLIENTS_CACHED = 50_000

ValueT = TypeVar("ValueT")


class _ClientCache(Generic[ValueT]):
    """A value per client read from the registry, kept for ``seconds`` after its read began.

    Concurrent misses of one client share one read (a caller that gives up does not cancel it
    for the others). :meth:`forget` drops the kept value and disowns a read in flight, whose
    answer may predate what made the caller forget, so that it is not kept either.
    """

    def __init__(self, load: Callable[[str], Awaitable[ValueT]], seconds: float) -> None:
        self._load = load
        self._seconds = seconds
        self._values: dict[str, tuple[float, ValueT]] = {}
        self._reads: dict[str, asyncio.Future[ValueT]] = {}

    async def get(self, client_id: str) -> ValueT:
        if self._seconds <= 0:
            return await self._load(client_id)
        started = time.monotonic()
        kept = self._values.get(client_id)
        if kept is not None and kept[0] > started:
            return kept[1]
        read = self._reads.get(client_id)
        if read is None:
            read = asyncio.ensure_future(self._load(client_id))
            self._reads[client_id] = read
            read.add_done_callback(lambda done: self._keep(client_id, done, started))
        return await asyncio.shield(read)

    def forget(self, client_id: str) -> None:
        self._values.pop(client_id, None)
        self._reads.pop(client_id, None)

    def _keep(self, client_id: str, read: asyncio.Future[ValueT], started: float) -> None:
        if self._reads.get(client_id) is not read:
            return  # forgotten while it ran
        del self._reads[client_id]
        if read.cancelled() or read.exception() is not None:
            return
        if len(self._values) >= CLIENTS_CACHED:
            self._values.clear()
        self._values[client_id] = (started + self._seconds, read.result())


@cache
def _unknown_client_hash() -> str:
    """Checked against when the client is unknown, so that an unknown client id costs as
    much time as a wrong secret and client ids cannot be probed by timing."""
    return hash_client_secret("no-such-client-placeholder-secret")


@dataclass(frozen=True)
class Principal:
    """The authenticated client of a request, with its scopes and bindings."""

    client_id: str
    kind: ClientKind
    scopes: frozenset[str]
    store_id: str | None = None
    terminal_id: str | None = None
    supplier_id: str | None = None
    staff_role: StaffRole | None = None

    @property
    def is_headquarters(self) -> bool:
        return self.kind is ClientKind.STAFF and self.staff_role is StaffRole.HEADQUARTERS

    def may_touch_store(self, store_id: str) -> bool:
        """Terminals and store staff only their own store; headquarters and app back ends any."""
        if self.kind is ClientKind.SUPPLIER_USER:
            return False
        return self.store_id is None or self.store_id == store_id

    def ensure_store(self, store_id: str) -> None:
        """403 unless this client may touch ``store_id``."""
        if not self.may_touch_store(store_id):
            raise problems.ProblemError(problems.FORBIDDEN, f"this client may not touch store {store_id}")

    def ensure_supplier(self, supplier_id: str) -> None:
        """A supplier user only sees its own supplier: another supplier's objects are 404, not 403,
        so that their existence does not leak. Staff of headquarters see every supplier."""
        if self.kind is ClientKind.SUPPLIER_USER and self.supplier_id == supplier_id:
            return
        if self.is_headquarters:
            return
        if self.kind is ClientKind.SUPPLIER_USER:
            raise problems.ProblemError(problems.NOT_FOUND, f"no supplier {supplier_id}")
        raise problems.ProblemError(problems.FORBIDDEN, "only the supplier's own users and headquarters")

    def ensure_headquarters(self) -> None:
        if not self.is_headquarters:
            raise problems.ProblemError(problems.FORBIDDEN, "only headquarters staff may do this")

    @classmethod
    def from_claims(cls, claims: TokenClaims) -> Principal:
        return cls(
            client_id=claims.client_id,
            kind=ClientKind(claims.kind),
            scopes=claims.scopes,
            store_id=claims.store_id,
            terminal_id=claims.terminal_id,
            supplier_id=claims.supplier_id,
            staff_role=StaffRole(claims.staff_role) if claims.staff_role else None,
        )


class Authenticator:
    """Issues tokens for valid client credentials and turns bearer tokens into principals."""

    def __init__(
        self,
        registry: ClientRegistry,
        signer: TokenSigner,
        *,
        token_ttl_seconds: int,
        cache_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._signer = signer
        self._ttl = token_ttl_seconds
        self._clock = clock
        self._registrations = _ClientCache(registry.get, cache_seconds)
        self._revoked = _ClientCache(registry.revoked_token_ids, cache_seconds)
        # token → (its claims, its principal), for tokens whose signature was verified.
        self._verified: OrderedDict[str, tuple[TokenClaims, Principal]] = OrderedDict()
        # scrypt checks run in threads; a bound keeps a flood of token requests from taking
        # every worker thread (and memory: about 16 MiB per check) from the rest of the gateway.
        self._secret_checks = asyncio.Semaphore(MAX_CONCURRENT_SECRET_CHECKS)

    @property
    def token_ttl_seconds(self) -> int:
        return self._ttl

    async def issue(self, client_id: str, secret: str, requested_scopes: frozenset[str] | None) -> TokenClaims | str:
        """A token for valid credentials, or the OAuth2 error code (``invalid_client``, ``invalid_scope``)."""
        registration = await self._registry.get(client_id) if len(client_id) <= 128 else None
        # scrypt is deliberately slow: keep the event loop free while checking.
        secret_hash = registration.secret_hash if registration is not None else _unknown_client_hash()
        async with self._secret_checks:
            matches = await asyncio.to_thread(verify_client_secret, secret, secret_hash)
        if registration is None or not matches or not registration.is_active:
            return "invalid_client"
        allowed = effective_scopes(registration)
        scopes = allowed if requested_scopes is None else requested_scopes
        if not scopes <= allowed:
            return "invalid_scope"
        now = int(self._clock())
        return self._claims(registration, scopes, now)

    def _claims(self, registration: ClientRegistration, scopes: frozenset[str], now: int) -> TokenClaims:
        return TokenClaims(
            client_id=registration.client_id,
            kind=registration.kind.value,
            scopes=scopes,
            issued_at=now,
            expires_at=now + self._ttl,
            token_id=new_token_id(),
            store_id=registration.store_id,
            terminal_id=registration.terminal_id,
            supplier_id=registration.supplier_id,
            staff_role=registration.staff_role.value if registration.staff_role else None,
        )

    def sign(self, claims: TokenClaims) -> str:
        return self._signer.issue(claims)

    async def authenticate(self, token: str) -> Principal:
        """The principal of a valid token of an active client; InvalidToken otherwise."""
        now = int(self._clock())
        verified = self._verified.get(token)
        principal: Principal | None
        if verified is not None and verified[0].expires_at > now:
            self._verified.move_to_end(token)
            claims, principal = verified
        else:
            if verified is not None:
                del self._verified[token]  # expired: verify() below says so
            claims = self._signer.verify(token, now=now)
            principal = None
        registration = await self._registrations.get(claims.client_id)
        if registration is None or not registration.is_active:
            raise InvalidToken("the client is revoked or unknown")
        if registration.kind.value != claims.kind:
            raise InvalidToken("the token does not match its client")
        if claims.token_id in await self._revoked.get(claims.client_id):
            raise InvalidToken("the token was revoked")
        if principal is None:
            principal = Principal.from_claims(claims)
            self._verified[token] = (claims, principal)
            if len(self._verified) > VERIFIED_TOKENS_KEPT:
                self._verified.popitem(last=False)
        return principal

    def forget(self, client_id: str) -> None:
        """Drop a cached registration (after a revocation on this pod)."""
        self._registrations.forget(client_id)
        self._revoked.forget(client_id)

    async def revoke(self, token: str) -> Principal:
        """Refuse ``token`` from now on (it must still be valid); its principal."""
        principal = await self.authenticate(token)
        claims = self._verified[token][0]
        await self._registry.revoke_token(
            claims.token_id, claims.client_id, datetime.fromtimestamp(claims.expires_at, UTC)
        )
        self._verified.pop(token, None)
        self._revoked.forget(claims.client_id)
        return principal
