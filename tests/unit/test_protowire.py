"""servicekit.protowire: a moment's Timestamp (the same seconds and nanos as protobuf's own FromDatetime),
and an optional value's message field (unset without a value)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from retail.alerts.v1 import alerts_service_pb2 as pb

from servicekit.protowire import moment, optional, optional_moment, timestamp


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


def test_an_optional_value_sets_its_message_field_and_no_value_leaves_it_unset() -> None:
    at = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    resolved = pb.Alert(alert_id="A1", resolved_at=optional(timestamp, at))
    open_ = pb.Alert(alert_id="A2", resolved_at=optional(timestamp, None))

    assert resolved.HasField("resolved_at")
    assert optional_moment(resolved, "resolved_at") == at
    assert not open_.HasField("resolved_at")
    assert optional_moment(open_, "resolved_at") is None
    assert open_.SerializeToString() == pb.Alert(alert_id="A2").SerializeToString()
