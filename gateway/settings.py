"""The gateway's settings, read from the environment through :func:`servicekit.settings.load_settings`.

Besides what every process needs (``APP_ENV``, ``DATABASE_URL``, ``NATS_URL``, ...):

- ``HTTP_HOST`` / ``HTTP_PORT`` — where the HTTP API listens (``0.0.0.0`` in a container).
- ``FORWARDED_ALLOW_IPS`` — proxies whose ``X-Forwarded-*`` headers are trusted.
- ``MAX_REQUEST_BODY_BYTES`` — larger request bodies are refused with 413.
- ``GATEWAY_BACKENDS`` — the gRPC services behind the gateway, ``name=host:port,...``.
- ``GRPC_DEADLINE_SECONDS`` — the deadline of every call to a backend.
- ``READINESS_TIMEOUT_SECONDS`` — how long ``/readyz`` waits for each dependency.
- ``NATS_STARTUP_WAIT_SECONDS`` — how long start-up waits for NATS before serving anyway.

- ``TOKEN_SIGNING_KEYS`` (secret) — ``kid:key,kid:key``; the first signs access tokens, all
  verify them, so a new key is put first and the old one removed once its tokens expired.
- ``TOKEN_TTL_SECONDS`` — lifetime of an access token.
- ``CLIENT_CACHE_SECONDS`` — how long a client registration is cached per pod: a revoked
  client's tokens stop working within this bound.
- ``MEMBER_LOOKUP_KEY`` (secret) — HMAC key under which phone and card numbers travel in the
  sales journal (the member service looks members up by the same keyed hash).
- ``SALE_FUTURE_TOLERANCE_SECONDS`` — how far a sale's ``occurred_at`` may lie ahead of the
  gateway's clock (till clocks drift); ``MAX_SALES_PER_BATCH`` — the batch-size cap.
- ``SALE_MAX_AGE_SECONDS`` — how far a sale's ``occurred_at`` may lie behind the gateway's
  clock (a till's offline spell); by default, and at most, the SALES journal's retention.
- ``IDEMPOTENCY_WAIT_SECONDS`` — how long a repeated request waits for the first one with
  the same ``Idempotency-Key`` to finish before answering 409.
- ``RATE_LIMIT_PER_SECOND`` / ``RATE_LIMIT_BURST`` — each client's token bucket (per pod).
- ``MAX_PAGE_SIZE`` — the largest page any list route returns (1 to 500, the most a backend serves
  at once); the OpenAPI document states it as the ``maximum`` of every ``page_size``.

Secrets are declared with :func:`servicekit.settings.dev_secret`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from gateway.domain.sales import MAX_SALES_PER_BATCH, SALES_JOURNAL_RETENTION
from servicekit.settings import BaseServiceSettings, dev_secret

_BACKEND_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
_BACKEND_EXAMPLE = "e.g. inventory=inventory:50051"


class GatewaySettings(BaseServiceSettings):
    """Everything the gateway process is configured with."""

    http_host: str = Field(default="127.0.0.1", description="interface the HTTP API listens on (HTTP_HOST)")
    http_port: int = Field(default=8080, ge=1, le=65535, description="port of the HTTP API (HTTP_PORT)")
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description="comma-separated proxy addresses (or *) whose X-Forwarded-For/Proto are trusted",
    )
    max_request_body_bytes: int = Field(
        default=1024 * 1024, ge=1, le=64 * 1024 * 1024, description="largest accepted request body, in bytes"
    )
    gateway_backends: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="gRPC backends as comma-separated name=host:port entries (GATEWAY_BACKENDS)",
    )
    grpc_deadline_seconds: float = Field(default=5.0, gt=0, le=120, description="deadline of each backend call")
    readiness_timeout_seconds: float = Field(
        default=1.0, gt=0, le=30, description="how long /readyz waits for each dependency"
    )
    nats_startup_wait_seconds: float = Field(
        default=2.0, ge=0, le=60, description="how long start-up waits for the first NATS connection"
    )

    token_signing_keys: SecretStr = dev_secret(
        "local-2026:local-development-token-signing-key-not-a-secret",
        "JWT signing keys as kid:key,kid:key; the first signs, every one verifies (TOKEN_SIGNING_KEYS)",
    )
    token_ttl_seconds: int = Field(default=900, ge=60, le=24 * 3600, description="lifetime of an access token")
    client_cache_seconds: float = Field(
        default=5.0, ge=0, le=300, description="per-pod cache of client registrations; bounds revocation delay"
    )
    member_lookup_key: SecretStr = dev_secret(
        "local-development-member-lookup-key-not-a-secret",
        "HMAC-SHA256 key of member phone/card lookup hashes in the sales journal (MEMBER_LOOKUP_KEY)",
    )
    sale_future_tolerance_seconds: float = Field(
        default=300.0, ge=0, le=24 * 3600, description="how far ahead of the gateway's clock a sale may be dated"
    )
    sale_max_age_seconds: float = Field(
        default=SALES_JOURNAL_RETENTION.total_seconds(),
        gt=0,
        le=SALES_JOURNAL_RETENTION.total_seconds(),
        description="how far behind the gateway's clock a sale may be dated (at most the SALES journal's retention)",
    )
    max_sales_per_batch: int = Field(
        default=MAX_SALES_PER_BATCH, ge=1, le=MAX_SALES_PER_BATCH, description="most sales in one POS batch"
    )
    idempotency_wait_seconds: float = Field(
        default=2.0, ge=0, le=30, description="how long a repeated request waits for the first one to finish"
    )
    rate_limit_per_second: float = Field(default=50.0, gt=0, description="requests per second per client (per pod)")
    rate_limit_burst: int = Field(default=100, ge=1, description="requests a client may burst above its rate")
    max_page_size: int = Field(
        default=200, ge=1, le=500, description="largest page any list route returns (the OpenAPI maximum of page_size)"
    )

    @field_validator("token_signing_keys")
    @classmethod
    def _check_signing_keys(cls, value: SecretStr) -> SecretStr:
        parse_signing_keys(value.get_secret_value())
        return value

    @property
    def signing_keys(self) -> list[tuple[str, bytes]]:
        """(key id, key) pairs; the first signs new tokens."""
        return parse_signing_keys(self.token_signing_keys.get_secret_value())

    @field_validator("gateway_backends", mode="before")
    @classmethod
    def _parse_backends(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_backends(value)
        if isinstance(value, Mapping):
            return parse_backends(",".join(f"{name}={target}" for name, target in value.items()))
        return value

    @property
    def backends(self) -> Mapping[str, str]:
        """Backend name → gRPC target (``host:port``), in configuration order."""
        return self.gateway_backends


def parse_backends(spec: str) -> dict[str, str]:
    """Parse ``name=host:port,name=host:port``; an empty string means no backends.

    Raises ``ValueError`` naming the first bad entry and what is wrong with it.
    """
    backends: dict[str, str] = {}
    if not spec.strip():
        return backends
    for position, raw_entry in enumerate(spec.split(","), start=1):
        entry = raw_entry.strip()
        if not entry:
            raise ValueError(f"entry {position} is empty (stray comma?); {_BACKEND_EXAMPLE}")
        name, separator, target = entry.partition("=")
        name, target = name.strip(), target.strip()
        if not separator:
            raise ValueError(f"entry {position} ({entry!r}) must be name=host:port, {_BACKEND_EXAMPLE}")
        if not _BACKEND_NAME.fullmatch(name):
            raise ValueError(
                f"entry {position} ({entry!r}): backend name {name!r} must be lower-case letters, digits, "
                "'-' or '_', starting with a letter"
            )
        if name in backends:
            raise ValueError(f"entry {position} ({entry!r}): backend {name!r} is configured twice")
        host, colon, port_text = target.rpartition(":")
        if not colon or not host:
            raise ValueError(f"entry {position} ({entry!r}): target {target!r} must be host:port, {_BACKEND_EXAMPLE}")
        if not _HOST.fullmatch(host):
            raise ValueError(f"entry {position} ({entry!r}): {host!r} is not a host name or address")
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"entry {position} ({entry!r}): port {port_text!r} must be a number from 1 to 65535")
        backends[name] = f"{host}:{int(port_text)}"
    return backends


_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_SIGNING_KEY_LENGTH = 32


def parse_signing_keys(spec: str) -> list[tuple[str, bytes]]:
    """Parse ``kid:key,kid:key`` (at least one; keys of 32 characters or more, ids unique).

    Raises ``ValueError`` naming the entry by position, never showing a key.
    """
    keys: list[tuple[str, bytes]] = []
    for position, raw_entry in enumerate(spec.split(","), start=1):
        kid, separator, key = raw_entry.strip().partition(":")
        if not separator or not _KEY_ID.fullmatch(kid):
            raise ValueError(f"entry {position} must be kid:key with a key id of letters, digits, '.', '_' or '-'")
        if len(key) < MIN_SIGNING_KEY_LENGTH:
            raise ValueError(f"entry {position} ({kid}): the key must be at least {MIN_SIGNING_KEY_LENGTH} characters")
        if any(kid == known for known, _ in keys):
            raise ValueError(f"entry {position}: key id {kid!r} appears twice")
        keys.append((kid, key.encode()))
    return keys
