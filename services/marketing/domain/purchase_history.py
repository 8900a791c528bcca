"""Members' purchase histories, and the compact per-member summary the repurchase models read.

A member's history is their purchases: the day and the amount in integer fen. The models
count *purchase days*, not receipts: two receipts on one day (a forgotten item bought
at the next till) are one transaction, as in the customer-base literature (Fader, Hardie
& Lee 2005), so a member's count is not inflated by how a store splits its baskets.

For a whole population the histories are held as one :class:`PurchaseLog` — three flat
arrays, one row per member and purchase day, sorted by member then day — so a million
members with tens of millions of purchases fit in a few hundred megabytes and every
summary is a handful of vectorised numpy passes, never a Python loop over members.

:meth:`PurchaseLog.summary` condenses the log at a cut-off day into what BG/NBD reads
(frequency ``x`` = repeat purchase days, recency ``t_x`` = days from the first to the
last purchase day, age ``T`` = days from the first purchase day to the cut-off) and what
the production model reads beside it (purchase days in recent windows, the gaps between
purchases, the monetary value). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
DayArray = npt.NDArray[np.int32]

# Windows (days, ending on the cut-off day) over which recent purchase days are counted.
RECENT_WINDOWS = (30, 90, 365)


@dataclass(frozen=True, slots=True)
class PurchaseHistory:
    """One member's purchases: the day each was made and its amount in integer fen (returns already netted)."""

    member_id: str
    purchased_on: tuple[date, ...]
    amounts_fen: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.purchased_on) != len(self.amounts_fen):
            raise ValueError(
                f"member {self.member_id}: {len(self.purchased_on)} purchase days but {len(self.amounts_fen)} amounts"
            )
        if any(not isinstance(amount, int) or amount < 0 for amount in self.amounts_fen):
            raise ValueError(f"member {self.member_id}: amounts must be whole, non-negative fen")


@dataclass(frozen=True, slots=True)
class PurchaseSummary:
    """Every member who had bought by ``as_of``, summarised on that day (arrays aligned with ``members``).

    Days are whole days; ``as_of`` itself is inside the calibration period. ``members``
    are positions in the log's ``member_ids``; members whose first purchase came later
    are not in the summary at all (they were not customers yet).
    """

    as_of: date
    members: IntArray
    frequency: FloatArray  # x: purchase days after the first one
    recency: FloatArray  # t_x: days from the first purchase day to the last one
    age: FloatArray  # T: days from the first purchase day to as_of
    recent_purchase_days: dict[int, FloatArray]  # window (days) → purchase days in (as_of − window, as_of]
    mean_gap: FloatArray  # mean days between consecutive purchase days (0 with none)
    gap_std: FloatArray  # their standard deviation (0 with fewer than two gaps)
    last_gap: FloatArray  # days between the last two purchase days (0 with none)
    mean_amount_fen: FloatArray  # mean spend per purchase day

    @property
    def count(self) -> int:
        return int(self.members.shape[0])

    @property
    def days_since_last_purchase(self) -> FloatArray:
        return np.asarray(self.age - self.recency, dtype=np.float64)


class PurchaseLog:
    """Purchase days of a whole population: one row per (member, day), sorted by member then day.

    Build it with :meth:`of` from :class:`PurchaseHistory` values, or with
    :meth:`from_arrays` from flat arrays (what a loader reading a million members
    should use). Same-day purchases are merged into one row, their amounts summed.
    """

    __slots__ = ("amount_fen", "day", "member", "member_ids")

    def __init__(self, member_ids: tuple[str, ...], member: IntArray, day: DayArray, amount_fen: IntArray) -> None:
        self.member_ids = member_ids
        self.member = member
        self.day = day  # proleptic Gregorian ordinal (date.toordinal)
        self.amount_fen = amount_fen

    @classmethod
    def of(cls, histories: Iterable[PurchaseHistory]) -> PurchaseLog:
        """The log of these members' histories (a member without purchases is kept, with no rows)."""
        histories = list(histories)
        member_ids = tuple(history.member_id for history in histories)
        if len(set(member_ids)) != len(member_ids):
            raise ValueError("a member appears in more than one history")
        sizes = [len(history.purchased_on) for history in histories]
        member = np.repeat(np.arange(len(histories), dtype=np.int64), sizes)
        day = np.fromiter(
            (purchased.toordinal() for history in histories for purchased in history.purchased_on),
            dtype=np.int32,
            count=sum(sizes),
        )
        amount = np.fromiter(
            (amount for history in histories for amount in history.amounts_fen), dtype=np.int64, count=sum(sizes)
        )
        return cls.from_arrays(member_ids, member, day, amount)

    @classmethod
    def from_arrays(
        cls, member_ids: Sequence[str], member: npt.ArrayLike, day: npt.ArrayLike, amount_fen: npt.ArrayLike
    ) -> PurchaseLog:
        """The log of flat purchase rows: member position, day ordinal, amount in fen (any order, repeats merged)."""
        members = np.asarray(member, dtype=np.int64)
        days = np.asarray(day, dtype=np.int32)
        amounts = np.asarray(amount_fen, dtype=np.int64)
        if not members.shape == days.shape == amounts.shape or members.ndim != 1:
            raise ValueError("member, day and amount must be flat arrays of one length")
        if members.size and (members.min() < 0 or members.max() >= len(member_ids)):
            raise ValueError("a purchase names a member position outside member_ids")
        if amounts.size and amounts.min() < 0:
            raise ValueError("amounts must be non-negative fen")
        order = np.lexsort((days, members))
        members, days, amounts = members[order], days[order], amounts[order]
        # Merge same-day purchases of a member: one transaction, amounts summed.
        first_of_day = np.ones(members.shape, dtype=np.bool_)
        first_of_day[1:] = (members[1:] != members[:-1]) | (days[1:] != days[:-1])
        starts = np.flatnonzero(first_of_day)
        merged_amounts = np.add.reduceat(amounts, starts) if starts.size else amounts
        return cls(tuple(member_ids), members[starts], days[starts], np.asarray(merged_amounts, dtype=np.int64))

    @property
    def rows(self) -> int:
        return int(self.day.shape[0])

    def purchase_days_between(self, after: date, through: date) -> IntArray:
        """Purchase days of every member (aligned with ``member_ids``) in ``(after, through]``."""
        inside = (self.day > after.toordinal()) & (self.day <= through.toordinal())
        return np.bincount(self.member[inside], minlength=len(self.member_ids)).astype(np.int64)

    def summary(self, as_of: date) -> PurchaseSummary:
        """Every member who had bought by ``as_of``, summarised on that day."""
        cut = as_of.toordinal()
        known = self.day <= cut
        member, day, amount = self.member[known], self.day[known].astype(np.int64), self.amount_fen[known]
        if member.size == 0:
            empty = np.zeros(0, dtype=np.float64)
            return PurchaseSummary(
                as_of,
                np.zeros(0, dtype=np.int64),
                empty,
                empty,
                empty,
                dict.fromkeys(RECENT_WINDOWS, empty),
                *[empty] * 4,
            )
        new_member = np.ones(member.shape, dtype=np.bool_)
        new_member[1:] = member[1:] != member[:-1]
        starts = np.flatnonzero(new_member)
        ends = np.append(starts[1:], member.size) - 1
        members = member[starts]
        # Position of each row's member in the summary.
        slot = np.cumsum(new_member) - 1
        count = members.size
        first, last = day[starts], day[ends]
        purchase_days = (ends - starts + 1).astype(np.float64)
        frequency = purchase_days - 1.0
        recency = (last - first).astype(np.float64)
        age = (cut - first).astype(np.float64)
        recent = {
            window: np.bincount(slot[day > cut - window], minlength=count).astype(np.float64)
            for window in RECENT_WINDOWS
        }
        # Gaps between consecutive purchase days of one member.
        same = ~new_member[1:]
        gaps = np.diff(day)[same].astype(np.float64)
        gap_slot = slot[1:][same]
        gap_count = np.bincount(gap_slot, minlength=count).astype(np.float64)
        gap_sum = np.bincount(gap_slot, weights=gaps, minlength=count)
        gap_squares = np.bincount(gap_slot, weights=gaps**2, minlength=count)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_gap = np.where(gap_count > 0, gap_sum / gap_count, 0.0)
            variance = np.where(gap_count > 1, (gap_squares - gap_count * mean_gap**2) / (gap_count - 1), 0.0)
        last_gap = np.where(frequency > 0, (last - day[np.maximum(ends - 1, 0)]).astype(np.float64), 0.0)
        spend = np.bincount(slot, weights=amount.astype(np.float64), minlength=count)
        return PurchaseSummary(
            as_of=as_of,
            members=members,
            frequency=frequency,
            recency=recency,
            age=age,
            recent_purchase_days=recent,
            mean_gap=mean_gap,
            gap_std=np.sqrt(np.maximum(variance, 0.0)),
            last_gap=last_gap,
            mean_amount_fen=spend / purchase_days,
        )
