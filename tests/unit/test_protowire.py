"""servicekit.protowire's Timestamp of a moment: the same seconds and nanos as protobuf's own FromDatetime."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from servicekit.protowire import moment, timestamp


def from_datetime(at: datetime) -> tuple[int, int]:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp.seconds, stamp.nanos


def test_a_timestamp_has_the_seconds_and_nanos_protobuf_gives_any_moment_and_reads_back_the_same() -> None:
    chosen = random.Random(17)
    moments = [
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # just before the epoch: negative seconds
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1960, 5, 1, tzinfo=timezone(timedelta(hours=8))),
        datetime(2026, 12, 6, 10, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 1, 1, 8, 30),  # naive: taken as UTC
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ]
    start = datetime(1900, 1, 1, tzinfo=UTC)
    moments += [start + timedelta(microseconds=chosen.randrange(200 * 365 * 86_400 * 10**6)) for _ in range(2000)]
    for at in moments:
        stamp = timestamp(at)
        assert (stamp.seconds, stamp.nanos) == from_datetime(at), at
        assert moment(stamp) == (at if at.tzinfo else at.replace(tzinfo=UTC)), at
