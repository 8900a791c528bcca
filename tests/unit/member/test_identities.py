"""Channel identities: strict validation, one normal form per identifier, masks that reveal little."""

from __future__ import annotations

import pytest

from services.member.domain.identities import (
    ChannelIdentity,
    IdentityType,
    InvalidIdentity,
    UnknownIdentityType,
    mask_identity,
    parse_identity,
)

APP_ID = "wx0123456789abcdef"


@pytest.mark.parametrize(
    "spelling", ["13800138000", "+8613800138000", "+86 138 0013 8000", "0086-138-0013-8000", "(138) 0013-8000"]
)
def test_every_spelling_of_a_mainland_mobile_has_one_normal_form(spelling: str) -> None:
    assert parse_identity("phone", spelling) == ChannelIdentity(IdentityType.PHONE, "13800138000")


@pytest.mark.parametrize(
    "malformed",
    [
        "1380013800",
        "138001380001",
        "23800138000",
        "12800138000",
        "138OO138000",
        "tel:13800138000",
        "+1 415 555 0100",
        "",
        "  ",
    ],
)
def test_malformed_phone_numbers_are_refused_without_echoing_them(malformed: str) -> None:
    with pytest.raises(InvalidIdentity) as refusal:
        parse_identity("phone", malformed)
    assert refusal.value.reason == "invalid-phone"
    assert malformed.strip() == "" or malformed not in refusal.value.message


def test_an_unknown_identity_type_is_named_as_such() -> None:
    with pytest.raises(UnknownIdentityType, match="'fax' does not exist"):
        parse_identity("fax", "0211234567")


def test_an_openid_is_only_unique_within_its_wechat_app() -> None:
    openid = "oAbCdEfGhIjKlMnOpQrStUvWx"
    one, other = (
        parse_identity("wechat_openid", openid, APP_ID),
        parse_identity("wechat_openid", openid, "wx" + "f" * 16),
    )
    assert one != other
    assert (one.value, one.app_id, one.channel_value) == (f"{APP_ID}:{openid}", APP_ID, openid)
    with pytest.raises(InvalidIdentity) as missing:
        parse_identity("wechat_openid", openid)
    assert missing.value.reason == "app-id-missing"
    with pytest.raises(InvalidIdentity) as misplaced:
        parse_identity("wechat_unionid", openid, APP_ID)
    assert misplaced.value.reason == "unexpected-app-id"


def test_cards_and_emails_normalise_the_way_their_channels_compare_them() -> None:
    assert parse_identity("pos_card", " 8860 0000 0000 1234 ").value == "8860000000001234"
    assert parse_identity("pos_card", "vip12ab").value == "VIP12AB"
    assert parse_identity("email", " Li.Jing@Example.COM ").value == "li.jing@example.com"
    assert parse_identity("app_user_id", "1000000042").value == "1000000042"  # case and all, as the app gives it


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("phone", "13800138000", "138****8000"),
        ("pos_card", "8860000000001234", "************1234"),
        ("email", "li.jing@example.com", "l***@example.com"),
        ("wechat_unionid", "oUnion1234567890abcdef", "oU****ef"),
        ("app_user_id", "10042", "*****"),
    ],
)
def test_masks_show_enough_to_recognise_an_identifier_and_no_more(kind: str, value: str, masked: str) -> None:
    assert mask_identity(parse_identity(kind, value)) == masked
