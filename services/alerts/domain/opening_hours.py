"""Opening hours of the chain's stores, in the chain's business time zone.

Every store opens at the same hours (``08:00-22:00`` by default) unless a per-store override
says otherwise. A store's silence only counts while it is open: a terminal that sent nothing
overnight is not silent. Times handed in and out are timezone-aware; days are business days in
the chain's zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from servicekit.errors import InvalidArgument

_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)$")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class InvalidOpeningHours(InvalidArgument):
    reason = "invalid-opening-hours"


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Opens at ``opens`` and closes at ``closes`` on the same business day (``24:00`` is midnight)."""

    opens: time
    closes_minutes: int  # minutes after midnight, up to 24 * 60

    @classmethod
    def parse(cls, text: str) -> OpeningHours:
        match = _HOURS.match(text.strip())
        if not match:
            raise InvalidOpeningHours(f"opening hours are HH:MM-HH:MM, not {text!r}")
        opens_h, opens_m, closes_h, closes_m = (int(part) for part in match.groups())
        closes = closes_h * 60 + closes_m
        if closes > 24 * 60 or closes <= opens_h * 60 + opens_m:
            raise InvalidOpeningHours(f"a store closes after it opens, on the same day: {text!r}")
        return cls(time(opens_h, opens_m), closes)

    @property
    def open_minutes(self) -> int:
        return self.closes_minutes - (self.opens.hour * 60 + self.opens.minute)


def parse_zone(text: str) -> tzinfo:
    """A fixed offset (``+08:00``) or an IANA zone name (``Asia/Shanghai``)."""
    if match := _OFFSET.match(text.strip()):
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidOpeningHours(f"{text!r} is neither an offset like +08:00 nor a time zone name") from None


def overlap_seconds(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> float:
    """How long two intervals overlap (0 when they do not)."""
    return max(0.0, (min(a_end, b_end) - max(a_start, b_start)).total_seconds())


@dataclass(frozen=True)
class StoreHours:
    """The chain's time zone, its default opening hours and the stores that differ."""

    zone: tzinfo
    default: OpeningHours
    per_store: Mapping[str, OpeningHours] = field(default_factory=dict)

    @classmethod
    def parse(cls, zone: str, default: str, per_store: Mapping[str, str] | None = None) -> StoreHours:
        return cls(
            parse_zone(zone),
            OpeningHours.parse(default),
            {store: OpeningHours.parse(hours) for store, hours in (per_store or {}).items()},
        )

    def hours_of(self, store_id: str) -> OpeningHours:
        return self.per_store.get(store_id, self.default)

    def business_day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """The business day from its midnight to the next, in the chain's zone."""
        start = datetime.combine(day, time(0), self.zone)
        return start, datetime.combine(day + timedelta(days=1), time(0), self.zone)

    def open_window(self, store_id: str, day: date) -> tuple[datetime, datetime]:
        hours = self.hours_of(store_id)
        start = datetime.combine(day, hours.opens, self.zone)
        return start, datetime.combine(day, time(0), self.zone) + timedelta(minutes=hours.closes_minutes)

    def open_seconds_between(self, store_id: str, start: datetime, end: datetime) -> float:
        """Seconds of ``store_id``'s opening hours between ``start`` and ``end``."""
        if end <= start:
            return 0.0
        total = 0.0
        day = self.business_day(start)
        while True:
            opens, closes = self.open_window(store_id, day)
            if opens >= end:
                return total
            total += overlap_seconds(start, end, opens, closes)
            day += timedelta(days=1)

    def open_seconds_within(self, store_id: str, day: date, intervals: Iterable[tuple[datetime, datetime]]) -> float:
        """Seconds of ``store_id``'s opening hours on ``day`` covered by ``intervals`` (assumed disjoint)."""
        opens, closes = self.open_window(store_id, day)
        return sum(overlap_seconds(start, end, opens, closes) for start, end in intervals)
