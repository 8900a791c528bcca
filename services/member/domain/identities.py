"""Channel identities: what each type of identifier looks like, its normal form and its lookup hash.

An identity is found through HMAC-SHA256 of ``"<type>:<normalised value>"`` under the
member lookup key and stored only encrypted. For phone numbers and POS cards the normal
form and the hash are :mod:`servicekit.identity_lookup`'s, the very code the gateway hashes
them into the sales journal with, so a sale finds its member by the hash alone. Error messages never repeat the value.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from servicekit.errors import InvalidArgument
from servicekit.identity_lookup import lookup_hash, normalise_card, normalise_phone


class IdentityType(enum.StrEnum):
    PHONE = "phone"
    WECHAT_UNIONID = "wechat_unionid"
    WECHAT_OPENID = "wechat_openid"  # only unique within one WeChat app: the value carries the app id
    APP_USER_ID = "app_user_id"
    POS_CARD = "pos_card"
    EMAIL = "email"


class UnknownIdentityType(InvalidArgument):
    reason = "unknown-identity-type"


class InvalidIdentity(InvalidArgument):
    """The value is not a well-formed identifier of its type."""

    reason = "invalid-identity"


@dataclass(frozen=True)
class ChannelIdentity:
    """One identifier in its normal form; a WeChat openid's value is ``"<app_id>:<openid>"``."""

    type: IdentityType
    value: str

    @property
    def app_id(self) -> str:
        return self.value.split(":", 1)[0] if self.type is IdentityType.WECHAT_OPENID else ""

    @property
    def channel_value(self) -> str:
        """The identifier as its channel knows it (an openid without its app id)."""
        return self.value.split(":", 1)[1] if self.type is IdentityType.WECHAT_OPENID else self.value


_MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")
_PHONE_CHARACTERS = re.compile(r"\+?[0-9(][0-9 ()-]*")
_FOREIGN_PREFIX = re.compile(r"\+(?!86)|00(?!86)")
_WECHAT_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_WECHAT_APP_ID = re.compile(r"wx[0-9a-f]{16}")
_APP_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_POS_CARD = re.compile(r"[0-9A-Z]{6,32}")
_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+"
)


def parse_identity(type_name: str, value: str, app_id: str = "") -> ChannelIdentity:
    """Validate and normalise an identifier strictly; raises a precise InvalidArgument otherwise."""
    try:
        identity_type = IdentityType(type_name)
    except ValueError:
        known = ", ".join(t.value for t in IdentityType)
        raise UnknownIdentityType(f"identity type {type_name[:40]!r} does not exist; one of {known}") from None
    if identity_type is not IdentityType.WECHAT_OPENID and app_id:
        raise InvalidIdentity("app_id goes only with a wechat_openid", reason="unexpected-app-id")
    if len(value) > 254:
        raise InvalidIdentity(f"the {identity_type.value} is too long")
    text = value.strip()
    if identity_type is IdentityType.PHONE:
        if not _PHONE_CHARACTERS.fullmatch(text):
            raise InvalidIdentity(
                "a phone number has digits, optionally +86 and spaces or hyphens", reason="invalid-phone"
            )
        if _FOREIGN_PREFIX.match(re.sub(r"[ ()-]", "", text)):
            raise InvalidIdentity("only mainland China mobile numbers (+86) are accepted", reason="invalid-phone")
        phone = normalise_phone(text)
        if not _MAINLAND_MOBILE.fullmatch(phone):
            raise InvalidIdentity(
                "not a mainland China mobile number (11 digits from 13 to 19)", reason="invalid-phone"
            )
        return ChannelIdentity(identity_type, phone)
    if identity_type is IdentityType.POS_CARD:
        card = normalise_card(text)
        if not _POS_CARD.fullmatch(card):
            raise InvalidIdentity("a member card number has 6 to 32 digits or letters", reason="invalid-pos-card")
        return ChannelIdentity(identity_type, card)
    if identity_type is IdentityType.EMAIL:
        email = text.lower()
        if len(email) > 254 or not _EMAIL.fullmatch(email):
            raise InvalidIdentity("not an e-mail address", reason="invalid-email")
        return ChannelIdentity(identity_type, email)
    if identity_type is IdentityType.APP_USER_ID:
        if not _APP_USER_ID.fullmatch(text):
            raise InvalidIdentity("an app user id has 1 to 64 letters, digits or . _ : -", reason="invalid-app-user-id")
        return ChannelIdentity(identity_type, text)
    if not _WECHAT_ID.fullmatch(text):
        raise InvalidIdentity(f"a {identity_type.value} has 16 to 64 letters, digits, '_' or '-'")
    if identity_type is IdentityType.WECHAT_OPENID:
        if not app_id:
            raise InvalidIdentity("a wechat_openid needs the app_id of its WeChat app", reason="app-id-missing")
        if not _WECHAT_APP_ID.fullmatch(app_id):
            raise InvalidIdentity("app_id must look like wx followed by 16 hexadecimal digits", reason="invalid-app-id")
        return ChannelIdentity(identity_type, f"{app_id}:{text}")
    return ChannelIdentity(identity_type, text)


def identity_hash(key: bytes, identity: ChannelIdentity) -> bytes:
    """HMAC-SHA256 of ``"<type>:<normalised value>"`` under the member lookup key (the journal's hash)."""
    return lookup_hash(key, identity.type.value, identity.value)


def mask_identity(identity: ChannelIdentity) -> str:
    """Enough to recognise one's own identifier, not enough to contact anyone."""
    value = identity.channel_value
    if identity.type is IdentityType.PHONE:
        return mask_phone(value)
    if identity.type is IdentityType.EMAIL:
        return mask_email(value)
    if identity.type is IdentityType.POS_CARD:
        return "*" * (len(value) - 4) + value[-4:]
    if len(value) <= 6:
        return "*" * len(value)
    return f"{value[:2]}****{value[-2:]}"


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) == 11 else "*" * len(phone)


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
