"""Whether a coupon may be used now, with the refusal a person can act on."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.marketing.domain.coupons import (
    Budget,
    BudgetExhausted,
    CouponAlreadyUsed,
    CouponExpired,
    CouponNotYetValid,
    CouponState,
    CouponUse,
    CouponVoid,
    InvalidHold,
    MemberLimitReached,
    NotInThisChannel,
    NotInThisStore,
    NotYourCoupon,
    UseRequest,
    check_use,
    gives_back_on_return,
    hold_until,
)
from services.marketing.domain.offers import Channel, CouponTerms, InvalidOffer

START = datetime(2026, 12, 1, tzinfo=UTC)
TERMS = CouponTerms(
    valid_from=START,
    valid_until=START + timedelta(days=14),
    stores=frozenset({"S1", "S2"}),
    channels=frozenset({Channel.APP, Channel.STORE}),
)
MINE = CouponUse(member_id="M1", use_limit=1, used=0, held=0)


USUAL = UseRequest(member_id="M1", store_id="S1", channel=Channel.STORE, at=START + timedelta(days=1))


def request(**changes: Any) -> UseRequest:
    return replace(USUAL, **changes)


def test_the_member_it_was_issued_to_may_use_it_in_its_stores_channels_and_window() -> None:
    check_use(MINE, TERMS, request(), member_uses=0)


@pytest.mark.parametrize(
    ("coupon", "changes", "member_uses", "refusal"),
    [
        (CouponUse("M1", 1, 0, 0, CouponState.VOID), {}, 0, CouponVoid),
        (MINE, {"member_id": "M2"}, 0, NotYourCoupon),
        (MINE, {"at": START - timedelta(seconds=1)}, 0, CouponNotYetValid),
        (MINE, {"at": START + timedelta(days=14)}, 0, CouponExpired),
        (MINE, {"store_id": "S9"}, 0, NotInThisStore),
        (MINE, {"store_id": None, "channel": Channel.APP}, 0, NotInThisStore),
        (MINE, {"channel": Channel.MINI_PROGRAM}, 0, NotInThisChannel),
        (CouponUse("M1", 1, 1, 0), {}, 0, CouponAlreadyUsed),
        (CouponUse("M1", 1, 0, 1), {}, 0, CouponAlreadyUsed),
        (CouponUse(None, 100, 3, 0), {}, 1, MemberLimitReached),
    ],
)
def test_each_refusal_names_its_reason(
    coupon: CouponUse, changes: dict[str, object], member_uses: int, refusal: type[Exception]
) -> None:
    with pytest.raises(refusal):
        check_use(coupon, TERMS, request(**changes), member_uses=member_uses)


def test_a_coupon_of_another_member_is_refused_as_not_yours_even_when_also_expired() -> None:
    with pytest.raises(NotYourCoupon):
        check_use(MINE, TERMS, request(member_id="M2", at=START + timedelta(days=30)), member_uses=0)


def test_a_generic_code_serves_many_members_up_to_its_limit() -> None:
    poster = CouponUse(member_id=None, use_limit=3, used=1, held=1)
    check_use(poster, TERMS, request(member_id="M7"), member_uses=0)
    with pytest.raises(CouponAlreadyUsed):
        check_use(CouponUse(None, 3, 2, 1), TERMS, request(member_id="M8"), member_uses=0)


def test_the_budget_counts_what_is_held_as_well_as_what_is_spent() -> None:
    budget = Budget(max_coupons=10, max_discount_fen=10_000, issued=9, spent_fen=6_000, held_fen=3_000)
    budget.check_discount(1_000)
    with pytest.raises(BudgetExhausted) as refused:
        budget.check_discount(1_001)
    assert refused.value.details == {"left_fen": 1_000}
    budget.check_issue(1)
    with pytest.raises(BudgetExhausted):
        budget.check_issue(2)
    Budget(max_coupons=None, max_discount_fen=None, spent_fen=10**12).check_discount(10**9)


def test_a_hold_lasts_fifteen_minutes_unless_asked_for_between_thirty_seconds_and_a_day() -> None:
    assert hold_until(START, None) == START + timedelta(minutes=15)
    assert hold_until(START, timedelta(hours=2)) == START + timedelta(hours=2)
    for duration in (timedelta(seconds=29), timedelta(hours=25)):
        with pytest.raises(InvalidHold):
            hold_until(START, duration)


def test_a_full_return_within_the_window_gives_the_coupon_back_and_nothing_else_does() -> None:
    inside = START + timedelta(days=3)
    assert gives_back_on_return(TERMS, returned_at=inside, full_return=True)
    assert not gives_back_on_return(TERMS, returned_at=inside, full_return=False)
    assert not gives_back_on_return(TERMS, returned_at=START + timedelta(days=20), full_return=True)


def test_terms_refuse_a_window_without_time_zone_or_ending_before_it_starts() -> None:
    with pytest.raises(InvalidOffer):
        CouponTerms(valid_from=datetime(2026, 12, 1), valid_until=datetime(2026, 12, 2))
    with pytest.raises(InvalidOffer):
        CouponTerms(valid_from=START, valid_until=START)
    with pytest.raises(InvalidOffer):
        CouponTerms(valid_from=START, valid_until=START + timedelta(days=1), channels=frozenset())
