"""Contract: the gateway hashes phone and card numbers into the sales journal exactly as the
member service hashes the identities it stores, so a sale finds its member by the hash alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.settings import GatewaySettings
from servicekit.identity_lookup import member_identity_hash
from servicekit.settings import load_settings
from services.member.domain.identities import identity_hash, parse_identity
from services.member.settings import MemberSettings

REQUIRED = {"app_env": "test", "database_url": "postgresql://db/x", "nats_url": "nats://n:4222"}


def test_both_sides_use_the_same_setting_with_the_same_development_default() -> None:
    gateway, member = load_settings(GatewaySettings, **REQUIRED), load_settings(MemberSettings, **REQUIRED)
    assert "member_lookup_key" in GatewaySettings.model_fields
    assert gateway.member_lookup_key == member.member_lookup_key
    assert member.lookup_key == gateway.member_lookup_key.get_secret_value().encode()


@pytest.mark.parametrize("spelling", ["13800138000", "+86 138-0013-8000", "008613800138000", "(138)00138000"])
def test_a_phone_hashes_the_same_on_both_sides(spelling: str) -> None:
    key = load_settings(MemberSettings, **REQUIRED).lookup_key
    assert member_identity_hash(key, "phone", spelling) == identity_hash(key, parse_identity("phone", spelling))


@pytest.mark.parametrize("spelling", ["8860000000001234", "8860 0000 0000 1234", " vip 00042 "])
def test_a_member_card_hashes_the_same_on_both_sides(spelling: str) -> None:
    key = load_settings(MemberSettings, **REQUIRED).lookup_key
    assert member_identity_hash(key, "pos_card", spelling) == identity_hash(key, parse_identity("pos_card", spelling))


@given(
    key=st.binary(min_size=16, max_size=64),
    prefix=st.sampled_from(["", "+86", "0086", "+86 "]),
    number=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    separator=st.sampled_from(["", " ", "-"]),
)
def test_any_valid_mobile_in_any_accepted_spelling_hashes_the_same_on_both_sides(
    key: bytes, prefix: str, number: str, separator: str
) -> None:
    spelling = prefix + separator.join((number[:3], number[3:7], number[7:]))
    assert member_identity_hash(key, "phone", spelling) == identity_hash(key, parse_identity("phone", spelling))


@given(key=st.binary(min_size=16, max_size=64), card=st.from_regex(r"[0-9A-Za-z]{6,32}", fullmatch=True))
def test_any_valid_card_hashes_the_same_on_both_sides(key: bytes, card: str) -> None:
    assert member_identity_hash(key, "pos_card", card) == identity_hash(key, parse_identity("pos_card", card))
