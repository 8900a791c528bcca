"""HTTP ↔ protobuf for the pos routes: the messages a request becomes and the ``map_*`` answers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from retail.common.v1 import money_pb2
from retail.sales.v1 import events_pb2

from gateway.domain import sales as rules
from gateway.pos.schemas import CURRENCY, SaleIn
from gateway.security.authentication import Principal
from servicekit.protowire import timestamp

_PAYMENT_METHODS = {
    "cash": events_pb2.PAYMENT_METHOD_CASH,
    "wechat_pay": events_pb2.PAYMENT_METHOD_WECHAT_PAY,
    "alipay": events_pb2.PAYMENT_METHOD_ALIPAY,
    "bank_card": events_pb2.PAYMENT_METHOD_BANK_CARD,
    "stored_value": events_pb2.PAYMENT_METHOD_STORED_VALUE,
    "points": events_pb2.PAYMENT_METHOD_POINTS,
}


def map_sale_recorded(sale: SaleIn, principal: Principal, recorded_at: datetime, member_key: bytes) -> bytes:
    """The journal's SaleRecorded for a checked sale, serialised."""

    def money(minor_units: int) -> money_pb2.Money:
        return money_pb2.Money(currency_code=CURRENCY, minor_units=minor_units)

    lines = []
    for number, line in enumerate(sale.lines, start=1):
        quantity, unit_price, discount = Decimal(line.quantity), Decimal(line.unit_price), Decimal(line.discount)
        lines.append(
            events_pb2.SaleLine(
                line_number=number,
                sku=line.sku,
                quantity=money_pb2.Decimal(value=format(quantity.normalize(), "f")),
                unit_price=money(rules.to_minor_units(unit_price)),
                discount=money(rules.to_minor_units(discount)),
                line_total=money(rules.line_total_minor(quantity, unit_price, discount)),
            )
        )
    event = events_pb2.SaleRecorded(
        sale_id=sale.sale_id,
        kind=events_pb2.SALE_KIND_RETURN if sale.kind == "return" else events_pb2.SALE_KIND_SALE,
        location_id=sale.store_id,
        terminal_id=principal.terminal_id or "",
        channel=events_pb2.SALES_CHANNEL_STORE,
        occurred_at=timestamp(sale.occurred_at),
        recorded_at=timestamp(recorded_at),
        lines=lines,
        coupon_codes=sale.coupon_codes,
        payments=[
            events_pb2.Payment(
                method=_PAYMENT_METHODS[payment.method],
                amount=money(rules.to_minor_units(Decimal(payment.amount))),
                reference=payment.reference or "",
            )
            for payment in sale.payments
        ],
        original_sale_id=sale.original_sale_id or "",
        total=money(sale_total_minor(sale)),
        submitted_by=principal.client_id,
    )
    if sale.member is not None:
        if sale.member.type == "member_id":
            event.member.CopyFrom(
                events_pb2.MemberReference(
                    type=events_pb2.MEMBER_IDENTIFIER_TYPE_MEMBER_ID, member_id=sale.member.value
                )
            )
        else:
            kind = (
                events_pb2.MEMBER_IDENTIFIER_TYPE_PHONE
                if sale.member.type == "phone"
                else events_pb2.MEMBER_IDENTIFIER_TYPE_POS_CARD
            )
            event.member.CopyFrom(
                events_pb2.MemberReference(
                    type=kind, identity_hash=rules.member_identity_hash(member_key, sale.member.type, sale.member.value)
                )
            )
    return event.SerializeToString()


def sale_total_minor(sale: SaleIn) -> int:
    return sum(
        rules.line_total_minor(Decimal(line.quantity), Decimal(line.unit_price), Decimal(line.discount))
        for line in sale.lines
    )
