"""The member lookup hash: a contract between the SALES journal and the member service.

Not a domain model. The gateway hashes the phone or member card a till sends into the
journal; the member service stores the same hash for each identity it knows. A sale
finds its member only while both sides produce the same bytes, so the normal forms and
the keyed hash live here, once, and both sides call them.

The hash is HMAC-SHA256 of ``"<type>:<normalised value>"`` under the member lookup key
(``MEMBER_LOOKUP_KEY``), type being ``phone`` or ``pos_card`` for what a till sends. What a
well-formed identifier is stays each side's own rule (the member service validates, the
gateway only hashes); the normal form and the hash do not.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PHONE = "phone"
POS_CARD = "pos_card"


def normalise_phone(phone: str) -> str:
    """Digits only, without the +86 / 0086 country prefix of mainland numbers."""
    digits = re.sub(r"\D", "", phone)
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix) :]
    return digits


def normalise_card(card: str) -> str:
    """Without whitespace, in upper case."""
    return re.sub(r"\s", "", card).upper()


def lookup_hash(key: bytes, identifier_type: str, normalised_value: str) -> bytes:
    """HMAC-SHA256 of ``"<type>:<normalised value>"`` under the member lookup key."""
    return hmac.new(key, f"{identifier_type}:{normalised_value}".encode(), hashlib.sha256).digest()


def member_identity_hash(key: bytes, identifier_type: str, value: str) -> bytes:
    """The lookup hash of a phone or member card as a till spells it (type ``phone`` or ``pos_card``)."""
    normalised = normalise_phone(value) if identifier_type == PHONE else normalise_card(value)
    return lookup_hash(key, identifier_type, normalised)
