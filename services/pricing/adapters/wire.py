"""Conversions between the pricing domain and its protobuf contract (retail.pricing.v1)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb

from servicekit import protowire
from servicekit.errors import InvalidArgument
from servicekit.protowire import timestamp as timestamp  # re-exported: the pricing contract's helpers
from servicekit.protowire import to_wire as to_wire
from services.pricing.domain.promotions import FixedPrice, MultiBuy, PercentOff
from services.pricing.domain.rules import Channel, PriceRule, Scope


def from_wire(enum_type: Any, prefix: str, number: int) -> str:
    """The domain value of a contract enum number (``""`` for the unspecified zero); a number the
    contract does not define is the caller's mistake (INVALID_ARGUMENT)."""
    try:
        return protowire.from_wire(enum_type, prefix, number)
    except ValueError:
        raise InvalidArgument(f"unknown {prefix.lower()} {number}", reason=f"invalid-{prefix.lower()}") from None


def unit(value: str) -> Any:
    return to_wire(pb.Unit, "UNIT", value)


def channel_of(number: int) -> Channel | None:
    value = from_wire(pb.Channel, "CHANNEL", number)
    return Channel(value) if value else None


def channel_number(channel: Channel | None) -> Any:
    return to_wire(pb.Channel, "CHANNEL", channel.value if channel else "")


def money(fen: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, minor_units=fen)


def moment_of(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def scope(rule_scope: Scope) -> pb.RuleScope:
    return pb.RuleScope(
        store_id=rule_scope.store_id or "",
        store_group=rule_scope.store_group or "",
        channel=channel_number(rule_scope.channel),
        member_tier=rule_scope.member_tier or "",
    )


def regular_price(rule: PriceRule) -> pb.RegularPrice:
    message = pb.RegularPrice(
        rule_id=rule.rule_id,
        scope=scope(rule.scope),
        price=money(rule.price_fen or 0, rule.currency),
        priority=rule.priority,
    )
    if rule.valid_from is not None:
        message.valid_from.CopyFrom(timestamp(rule.valid_from))
    if rule.valid_to is not None:
        message.valid_to.CopyFrom(timestamp(rule.valid_to))
    return message


def promotion(rule: PriceRule) -> pb.Promotion:
    message = pb.Promotion(rule_id=rule.rule_id, scope=scope(rule.scope), name=rule.name, priority=rule.priority)
    mechanic = rule.mechanic
    if isinstance(mechanic, FixedPrice):
        message.fixed_price.CopyFrom(money(mechanic.price_fen, rule.currency))
    elif isinstance(mechanic, PercentOff):
        message.percent_off.value = _plain(mechanic.percent)
    elif isinstance(mechanic, MultiBuy):
        message.multi_buy.quantity = mechanic.quantity
        message.multi_buy.bundle_price.CopyFrom(money(mechanic.bundle_price_fen, rule.currency))
    if mechanic is not None:
        message.display_text = mechanic.display_text()
    if rule.valid_from is not None:
        message.valid_from.CopyFrom(timestamp(rule.valid_from))
    if rule.valid_to is not None:
        message.valid_to.CopyFrom(timestamp(rule.valid_to))
    return message


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f")
