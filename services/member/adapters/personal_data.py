"""Personal data at rest: AES-256-GCM under rotatable keys, bound to where each value belongs.

A sealed value is ``0x01 | len(kid) | kid | 12-byte nonce | ciphertext+tag``: it names the
key that sealed it, so every configured key can open old values while only the first key
seals new ones, and a re-encryption pass finds what still uses an old key by its prefix.
The associated data binds a value to its place (``member/<id>/name``, ``identity/<hash>``),
so a ciphertext copied into another row or column does not open.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from datetime import date

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.member.domain.identities import ChannelIdentity, IdentityType
from services.member.domain.model import Address, Gender, Profile

FORMAT_VERSION = 1
NONCE_BYTES = 12


class UnreadablePersonalData(RuntimeError):
    """A sealed value names an unknown key, is damaged, or was moved from where it belongs."""


class DataKeyring:
    """Seals with the current (first) key, opens with any configured key."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one data key is required")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys}
        self.current_key_id = keys[0][0]
        self._current = self._ciphers[self.current_key_id]
        self.current_prefix = self.prefix(self.current_key_id)

    @staticmethod
    def prefix(key_id: str) -> bytes:
        """The first bytes of every value sealed with ``key_id``."""
        encoded = key_id.encode()
        return bytes([FORMAT_VERSION, len(encoded)]) + encoded

    def seal(self, plaintext: str, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return self.current_prefix + nonce + self._current.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        data = bytes(sealed)
        if len(data) < 2 or data[0] != FORMAT_VERSION:
            raise UnreadablePersonalData("not a sealed value of a known format")
        kid_end = 2 + data[1]
        cipher = self._ciphers.get(data[2:kid_end].decode(errors="replace"))
        if cipher is None:
            raise UnreadablePersonalData("sealed with a key that is not configured (MEMBER_DATA_KEYS)")
        nonce, ciphertext = data[kid_end : kid_end + NONCE_BYTES], data[kid_end + NONCE_BYTES :]
        try:
            return cipher.decrypt(nonce, ciphertext, context.encode()).decode()
        except InvalidTag:
            raise UnreadablePersonalData("a sealed value does not open in its place") from None

    def is_current(self, sealed: bytes) -> bool:
        return bytes(sealed).startswith(self.current_prefix)


def profile_context(member_id: str, field_name: str) -> str:
    return f"member/{member_id}/{field_name}"


def identity_context(identity_hash: bytes) -> str:
    return f"identity/{identity_hash.hex()}"


class PersonalDataCodec:
    """Seals and opens a member's profile fields and identity values with the keyring."""

    def __init__(self, keyring: DataKeyring) -> None:
        self.keyring = keyring

    def seal_profile(self, member_id: str, profile: Profile) -> dict[str, bytes | None]:
        """``{"name": ..., "birthday": ..., "address": ...}``, ``None`` where the profile has nothing."""
        address = None
        if profile.address is not None:
            address = json.dumps(dataclasses.asdict(profile.address), ensure_ascii=False, sort_keys=True)
        clear = {
            "name": profile.name,
            "birthday": profile.birthday.isoformat() if profile.birthday else None,
            "address": address,
        }
        return {name: self.seal_field(member_id, name, value) for name, value in clear.items()}

    def seal_field(self, member_id: str, field_name: str, value: str | None) -> bytes | None:
        return None if value is None else self.keyring.seal(value, profile_context(member_id, field_name))

    def open_field(self, member_id: str, field_name: str, sealed: bytes | None) -> str | None:
        return None if sealed is None else self.keyring.open(sealed, profile_context(member_id, field_name))

    def open_profile(self, member_id: str, sealed: dict[str, bytes | None], gender: str | None) -> Profile:
        name = self.open_field(member_id, "name", sealed.get("name"))
        birthday = self.open_field(member_id, "birthday", sealed.get("birthday"))
        address = self.open_field(member_id, "address", sealed.get("address"))
        return Profile(
            name=name,
            birthday=date.fromisoformat(birthday) if birthday else None,
            address=Address(**json.loads(address)) if address else None,
            gender=Gender(gender) if gender else None,
        )

    def reseal_field(self, from_member: str, to_member: str, field_name: str, sealed: bytes | None) -> bytes | None:
        """A field of one member sealed for another (values are bound to their member)."""
        return self.seal_field(to_member, field_name, self.open_field(from_member, field_name, sealed))

    def seal_identity(self, identity_hash: bytes, identity: ChannelIdentity) -> bytes:
        return self.keyring.seal(identity.value, identity_context(identity_hash))

    def open_identity(self, identity_hash: bytes, identity_type: str, sealed: bytes) -> ChannelIdentity:
        return ChannelIdentity(IdentityType(identity_type), self.keyring.open(sealed, identity_context(identity_hash)))
