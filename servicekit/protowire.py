"""Small conversions between domain values and the protobuf contracts, for every service.

Contract enums are named ``<PREFIX>_<VALUE>`` with an ``<PREFIX>_UNSPECIFIED`` zero (buf
style); domain enums use the lower-case ``<value>``. Nothing here knows any one contract.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

ValueT = TypeVar("ValueT")
MessageT = TypeVar("MessageT", bound=Message)


def to_wire(enum_type: Any, prefix: str, value: str) -> Any:
    """The contract's number of a domain enum value: ``("IDENTITY_TYPE", "pos_card")`` → IDENTITY_TYPE_POS_CARD;
    ``""`` → the unspecified zero."""
    return enum_type.Value(f"{prefix}_{value.upper() or 'UNSPECIFIED'}")


def from_wire(enum_type: Any, prefix: str, number: int) -> str:
    """The domain value of a contract enum number (``""`` for the unspecified zero); ValueError for
    a number the contract does not define."""
    name: str = enum_type.Name(number)
    return "" if name.endswith("_UNSPECIFIED") else name.removeprefix(f"{prefix}_").lower()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(moment: datetime) -> Timestamp:
    """A protobuf Timestamp of an aware moment (a naive one is taken as UTC, as ``FromDatetime`` does).

    Computed from the difference to the epoch rather than through ``Timestamp.FromDatetime``,
    which costs several times more: an outbox event carries one or two, and a chain-wide price
    change writes 50,000 events in a few transactions."""
    delta = (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000)


def optional(convert: Callable[[ValueT], MessageT], value: ValueT | None) -> MessageT | None:
    """``convert(value)``, or None for no value: a message's constructor leaves a message field
    given None unset (``pb.Alert(resolved_at=optional(timestamp, alert.resolved_at))``)."""
    return None if value is None else convert(value)


def moment(stamp: Timestamp) -> datetime:
    """The aware (UTC) moment of a protobuf Timestamp."""
    return stamp.ToDatetime(tzinfo=UTC)


def optional_moment(message: Any, field: str) -> datetime | None:
    """The moment in ``message.field``, or None where the optional field is not set."""
    return moment(getattr(message, field)) if message.HasField(field) else None
