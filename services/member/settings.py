"""Settings of the member service (environment variables, see servicekit.settings).

Secrets, declared with :func:`servicekit.settings.dev_secret` (refused outside local
development and tests while they hold their default):

- ``MEMBER_LOOKUP_KEY`` — HMAC-SHA256 key of identity lookup hashes. The same value as the
  gateway's: it hashes phone and card numbers into the sales journal the same way.
- ``MEMBER_DATA_KEYS`` — AES-256 keys of personal data at rest, ``kid:base64key,...``;
  the first encrypts, every one decrypts. Rotate by putting a new key first, running
  ``python -m services.member.reencrypt``, then removing the old key.
"""

from __future__ import annotations

import base64
import binascii
import re
from decimal import Decimal, InvalidOperation

from pydantic import Field, SecretStr, field_validator

from servicekit.settings import GrpcServiceSettings, dev_secret

_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DATA_KEY_BYTES = 32  # AES-256


class MemberSettings(GrpcServiceSettings):
    member_lookup_key: SecretStr = dev_secret(
        "local-development-member-lookup-key-not-a-secret",
        "HMAC-SHA256 key of identity lookup hashes; the gateway's MEMBER_LOOKUP_KEY (MEMBER_LOOKUP_KEY)",
    )
    member_data_keys: SecretStr = dev_secret(
        "local-2026:bG9jYWwtZGV2ZWxvcG1lbnQtbWVtYmVyLWRhdGEtazE=",
        "AES-256-GCM keys of personal data as kid:base64key,...; the first encrypts, all decrypt (MEMBER_DATA_KEYS)",
    )
    sales_consumer_durable: str = Field(
        default="member-sales", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="durable consumer name on SALES"
    )
    points_expiry_sweep_seconds: float = Field(
        default=60.0, gt=0, le=86_400, description="how often points past their expiry are expired"
    )
    member_review_seconds: float = Field(
        default=3600.0,
        ge=0,
        le=86_400,
        description="how often tiers are reviewed and lifecycle stages recomputed as time passes; 0 is off",
    )

    points_per_yuan: Decimal = Field(default=Decimal(1), ge=0, le=100, description="points per yuan of eligible spend")
    points_expiry_days: int = Field(default=365, ge=1, le=3650, description="days until earned points expire")
    points_category_multipliers: str = Field(
        default="",
        description="earn multipliers by category or department, e.g. 'C0901=0,C05=2' (0 excludes a category)",
    )
    tier_window_days: int = Field(default=365, ge=1, le=3650, description="rolling spend window of tier qualification")
    tier_grace_days: int = Field(default=90, ge=0, le=3650, description="days a tier is kept before a downgrade")
    lifecycle_new_days: int = Field(default=30, ge=0, le=3650, description="a member is new this long")
    lifecycle_dormant_after_days: int = Field(default=90, ge=1, le=3650, description="idle this long: dormant")
    lifecycle_churned_after_days: int = Field(default=180, ge=2, le=3650, description="idle this long: churned")
    lifecycle_repeat_min_purchases: int = Field(default=2, ge=2, le=100, description="purchases of a repeat buyer")

    @field_validator("points_category_multipliers")
    @classmethod
    def _check_multipliers(cls, value: str) -> str:
        parse_multipliers(value)
        return value

    @property
    def category_multipliers(self) -> dict[str, Decimal]:
        return parse_multipliers(self.points_category_multipliers)

    @field_validator("member_data_keys")
    @classmethod
    def _check_data_keys(cls, value: SecretStr) -> SecretStr:
        parse_data_keys(value.get_secret_value())
        return value

    @property
    def data_keys(self) -> list[tuple[str, bytes]]:
        """(key id, 32-byte key) pairs; the first encrypts new data."""
        return parse_data_keys(self.member_data_keys.get_secret_value())

    @property
    def lookup_key(self) -> bytes:
        """The HMAC key exactly as the gateway uses it (the setting's UTF-8 bytes)."""
        return self.member_lookup_key.get_secret_value().encode()


def parse_data_keys(spec: str) -> list[tuple[str, bytes]]:
    """Parse ``kid:base64key,...`` (at least one; 32-byte keys; unique ids), never showing a key."""
    keys: list[tuple[str, bytes]] = []
    for position, raw_entry in enumerate(spec.split(","), start=1):
        kid, separator, encoded = raw_entry.strip().partition(":")
        if not separator or not _KEY_ID.fullmatch(kid):
            raise ValueError(f"entry {position} must be kid:base64key with a key id of letters, digits, '.', '_', '-'")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"entry {position} ({kid}): the key is not base64") from None
        if len(key) != DATA_KEY_BYTES:
            raise ValueError(f"entry {position} ({kid}): the key must be {DATA_KEY_BYTES} bytes (AES-256)")
        if any(kid == known for known, _ in keys):
            raise ValueError(f"entry {position}: key id {kid!r} appears twice")
        keys.append((kid, key))
    return keys


def parse_multipliers(spec: str) -> dict[str, Decimal]:
    """Parse ``category=multiplier,...`` (an empty string is none)."""
    multipliers: dict[str, Decimal] = {}
    for position, raw_entry in enumerate(filter(None, (entry.strip() for entry in spec.split(","))), start=1):
        category, separator, text = raw_entry.partition("=")
        try:
            multiplier = Decimal(text.strip())
        except InvalidOperation:
            multiplier = Decimal(-1)
        if not separator or not category.strip() or not multiplier.is_finite() or not 0 <= multiplier <= 100:
            raise ValueError(
                f"entry {position} ({raw_entry!r}) must be category=multiplier with 0 <= multiplier <= 100"
            )
        multipliers[category.strip()] = multiplier
    return multipliers
