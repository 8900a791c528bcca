"""Who survives a merge, how consent of two records combines, what each view shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.member.domain.identities import parse_identity
from services.member.domain.model import (
    Address,
    Consent,
    ConsentChannel,
    InvalidSurvivor,
    LinkedIdentity,
    MergeCandidate,
    PersonalData,
    PersonalDataView,
    Profile,
    SurvivorRule,
    choose_survivor,
    merged_consents,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def candidate(member_id: str, days: int = 0, fields: int = 0, identities: int = 1) -> MergeCandidate:
    return MergeCandidate(member_id, T0 + timedelta(days=days), fields, identities, 0)


def test_the_older_member_survives_unless_one_is_chosen() -> None:
    older, newer = candidate("M0000001"), candidate("M0000002", days=3, fields=4, identities=5)
    survivor, absorbed, rule = choose_survivor(newer, older)
    assert (survivor.member_id, absorbed.member_id, rule) == ("M0000001", "M0000002", SurvivorRule.OLDER)
    survivor, _, rule = choose_survivor(newer, older, chosen="M0000002")
    assert (survivor.member_id, rule) == ("M0000002", SurvivorRule.CHOSEN)
    with pytest.raises(InvalidSurvivor):
        choose_survivor(newer, older, chosen="M0000003")


def test_between_members_of_the_same_age_the_more_complete_one_survives() -> None:
    sparse, full = candidate("M0000001", identities=1), candidate("M0000002", fields=3, identities=2)
    assert choose_survivor(sparse, full)[0].member_id == "M0000002"
    assert choose_survivor(full, sparse)[0].member_id == "M0000002"
    assert choose_survivor(sparse, candidate("M0000003"))[0].member_id == "M0000001"  # a tie keeps the linking one


def test_the_most_recent_consent_decision_per_channel_wins() -> None:
    survivor = [Consent(ConsentChannel.SMS, True, T0, "store"), Consent(ConsentChannel.WECHAT, False, T0, "app")]
    absorbed = [
        Consent(ConsentChannel.SMS, False, T0 + timedelta(days=1), "app"),
        Consent(ConsentChannel.APP_PUSH, True, T0, "app"),
    ]
    combined = merged_consents(survivor, absorbed)
    assert [(c.channel, c.granted) for c in combined] == [
        (ConsentChannel.SMS, False),
        (ConsentChannel.WECHAT, False),
        (ConsentChannel.APP_PUSH, True),
    ]


def test_each_view_shows_what_its_reader_may_see() -> None:
    address = Address("上海市", "上海市", "静安区", "南京西路 1 号")
    personal = PersonalData(
        Profile(name="欧阳娜娜", birthday=date(1988, 12, 24), address=address),
        [LinkedIdentity(parse_identity("phone", "13912345678"), T0)],
    )
    clear, masked = personal.contact(PersonalDataView.CLEAR), personal.contact(PersonalDataView.MASKED)
    assert clear is not None
    assert masked is not None
    assert (clear.name, clear.phone, clear.birthday) == ("欧阳娜娜", "13912345678", "1988-12-24")
    assert (masked.name, masked.phone, masked.birthday) == ("欧***", "139****5678", "****-12-24")
    assert masked.address == Address("上海市", "上海市")
    assert personal.contact(PersonalDataView.NONE) is None
    assert [i.value for i in personal.shown_identities(PersonalDataView.NONE)] == [""]
