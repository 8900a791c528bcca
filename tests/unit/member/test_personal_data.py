"""Personal data at rest: sealed under the current key, opened with any configured key, bound to its place."""

from __future__ import annotations

import base64
from datetime import date

import pytest

from servicekit.settings import SettingsError, load_settings
from services.member.adapters.personal_data import (
    DataKeyring,
    PersonalDataCodec,
    UnreadablePersonalData,
    profile_context,
)
from services.member.domain.model import Address, Gender, Profile
from services.member.settings import MemberSettings, parse_data_keys

OLD = ("k2025", bytes(range(32)))
NEW = ("k2026", bytes(range(32, 64)))
REQUIRED = {"database_url": "postgresql://db/x", "nats_url": "nats://n:4222"}


def test_a_sealed_value_opens_only_in_its_place() -> None:
    keyring = DataKeyring([NEW])
    sealed = keyring.seal("王小明", profile_context("M0000001", "name"))
    assert "王小明".encode() not in sealed
    assert keyring.open(sealed, profile_context("M0000001", "name")) == "王小明"
    with pytest.raises(UnreadablePersonalData):
        keyring.open(sealed, profile_context("M0000002", "name"))  # copied to another member's row
    assert keyring.seal("王小明", "x") != keyring.seal("王小明", "x")  # fresh nonce each time


def test_after_a_rotation_old_values_still_open_and_new_ones_use_the_new_key() -> None:
    old_value = DataKeyring([OLD]).seal("13800138000", "identity/ab")
    rotated = DataKeyring([NEW, OLD])
    assert rotated.open(old_value, "identity/ab") == "13800138000"
    assert not rotated.is_current(old_value)
    assert rotated.is_current(rotated.seal("13800138000", "identity/ab"))
    with pytest.raises(UnreadablePersonalData, match="not configured"):
        DataKeyring([NEW]).open(old_value, "identity/ab")  # the old key removed too early


def test_a_profile_round_trips_through_the_codec() -> None:
    codec = PersonalDataCodec(DataKeyring([NEW]))
    address = Address("上海市", "上海市", "徐汇区", "漕溪北路 88 号", "200030")
    profile = Profile(name="李静", birthday=date(1990, 6, 15), address=address, gender=Gender.FEMALE)
    sealed = codec.seal_profile("M0000007", profile)
    assert codec.open_profile("M0000007", sealed, "female") == profile
    assert codec.seal_profile("M0000007", Profile()) == {"name": None, "birthday": None, "address": None}


def test_data_keys_are_kid_and_a_base64_aes_256_key_and_never_shown_when_wrong() -> None:
    encoded = base64.b64encode(bytes(32)).decode()
    assert parse_data_keys(f"a:{encoded}, b:{encoded}") == [("a", bytes(32)), ("b", bytes(32))]
    for bad in (f"a:{base64.b64encode(bytes(16)).decode()}", "a:not base64!", f"{encoded}", f"a:{encoded},a:{encoded}"):
        with pytest.raises(ValueError, match="entry") as refusal:
            parse_data_keys(bad)
        assert encoded not in str(refusal.value)


def test_outside_development_the_default_keys_are_refused() -> None:
    with pytest.raises(SettingsError, match="MEMBER_LOOKUP_KEY, MEMBER_DATA_KEYS still hold"):
        load_settings(MemberSettings, app_env="production", **REQUIRED)
    real = {
        "member_lookup_key": "a-real-secret-from-a-kubernetes-secret",
        "member_data_keys": f"k1:{base64.b64encode(bytes(range(32))).decode()}",
    }
    settings = load_settings(MemberSettings, app_env="production", **REQUIRED, **real)
    assert settings.data_keys[0][0] == "k1"
    assert "a-real-secret" not in repr(settings)
