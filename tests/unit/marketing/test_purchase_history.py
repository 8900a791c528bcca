"""A population's purchase log and its summary at a cut-off: what BG/NBD and the trees read."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from services.marketing.domain.purchase_history import PurchaseHistory, PurchaseLog

AS_OF = date(2026, 6, 30)


def days_before(*offsets: int) -> tuple[date, ...]:
    return tuple(AS_OF - timedelta(days=offset) for offset in offsets)


@pytest.fixture
def log() -> PurchaseLog:
    return PurchaseLog.of(
        [
            # Two receipts on one day are one transaction; three purchase days, gaps 100 and 20 days.
            PurchaseHistory("repeat", days_before(120, 20, 20, 0), (10_000, 2_000, 500, 7_000)),
            PurchaseHistory("once", days_before(400), (3_000,)),
            PurchaseHistory("joins later", (AS_OF + timedelta(days=5),), (1_000,)),
            PurchaseHistory("never", (), ()),
        ]
    )


def test_purchases_on_one_day_are_one_transaction_with_the_amounts_summed(log: PurchaseLog) -> None:
    assert log.rows == 5
    repeat = log.member == log.member_ids.index("repeat")
    assert log.amount_fen[repeat].tolist() == [10_000, 2_500, 7_000]


def test_the_summary_holds_frequency_recency_and_age_of_members_who_had_bought(log: PurchaseLog) -> None:
    summary = log.summary(AS_OF)

    assert [log.member_ids[member] for member in summary.members] == ["repeat", "once"]
    assert summary.frequency.tolist() == [2.0, 0.0]
    assert summary.recency.tolist() == [120.0, 0.0]
    assert summary.age.tolist() == [120.0, 400.0]
    assert summary.days_since_last_purchase.tolist() == [0.0, 400.0]


def test_the_summary_counts_recent_purchase_days_and_the_gaps_between_them(log: PurchaseLog) -> None:
    summary = log.summary(AS_OF)

    assert summary.recent_purchase_days[30].tolist() == [2.0, 0.0]
    assert summary.recent_purchase_days[365].tolist() == [3.0, 0.0]
    assert summary.mean_gap.tolist() == [60.0, 0.0]
    assert summary.gap_std[0] == pytest.approx(np.std([100, 20], ddof=1))
    assert summary.last_gap.tolist() == [20.0, 0.0]
    assert summary.mean_amount_fen.tolist() == [pytest.approx(19_500 / 3), 3_000.0]


def test_an_earlier_cut_off_sees_only_what_had_happened_by_then(log: PurchaseLog) -> None:
    summary = log.summary(AS_OF - timedelta(days=21))

    assert [log.member_ids[member] for member in summary.members] == ["repeat", "once"]
    assert summary.frequency.tolist() == [0.0, 0.0]
    assert summary.age.tolist() == [99.0, 379.0]


def test_purchase_days_in_a_window_are_counted_per_member(log: PurchaseLog) -> None:
    counted = log.purchase_days_between(AS_OF - timedelta(days=21), AS_OF + timedelta(days=5))

    assert dict(zip(log.member_ids, counted.tolist(), strict=True)) == {
        "repeat": 2,
        "once": 0,
        "joins later": 1,
        "never": 0,
    }


def test_a_summary_before_anybody_bought_is_empty(log: PurchaseLog) -> None:
    assert log.summary(AS_OF - timedelta(days=1000)).count == 0


def test_a_history_with_unmatched_dates_and_amounts_or_negative_fen_is_refused() -> None:
    with pytest.raises(ValueError, match="2 purchase days but 1 amounts"):
        PurchaseHistory("M", days_before(1, 2), (100,))
    with pytest.raises(ValueError, match="non-negative fen"):
        PurchaseHistory("M", days_before(1), (-100,))


def test_flat_rows_in_any_order_give_the_same_log_as_histories(log: PurchaseLog) -> None:
    order = np.arange(log.rows)[::-1]
    again = PurchaseLog.from_arrays(log.member_ids, log.member[order], log.day[order], log.amount_fen[order])

    assert again.member.tolist() == log.member.tolist()
    assert again.day.tolist() == log.day.tolist()
    assert again.amount_fen.tolist() == log.amount_fen.tolist()
