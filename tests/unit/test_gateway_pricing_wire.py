"""The gateway's basket answer is written as JSON straight from the pricing service's message; it
must be, byte for byte, what the documented BasketOut model serialises to (as FastAPI did)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from retail.common.v1 import money_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb

from gateway.http.money import yuan_text
from gateway.pricing.schemas import BasketOut
from gateway.pricing.wire import amount, basket_json, map_effective_price
from servicekit.protowire import timestamp


def cny(fen: int, currency: str = "CNY") -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, minor_units=fen)


def line(
    sku: str, fen: int, quantity: str, promotion: pb.Promotion | None = None, **fields: object
) -> pb.EffectivePrice:
    message = pb.EffectivePrice(
        sku=sku,
        unit_price=cny(fen),
        regular_price=cny(fen + 100),
        regular_rule_id="R1",
        quantity=money_pb2.Decimal(value=quantity),
        line_total=cny(fen * 2),
        explanation=f"regular price from R1 (chain-wide, priority 0) for {sku}",
        **fields,  # type: ignore[arg-type]  # a test's own extra fields of the message
    )
    if promotion is not None:
        message.promotion.CopyFrom(promotion)
    return message


def promotion(name: str, **mechanic: object) -> pb.Promotion:
    message = pb.Promotion(
        rule_id="P7",
        scope=pb.RuleScope(store_id="S001", channel=pb.CHANNEL_ONLINE, member_tier="gold"),
        name=name,
        priority=-3,
        display_text="8.5折",
        valid_from=timestamp(datetime(2026, 3, 1, 8, 30, tzinfo=UTC)),
        **mechanic,  # type: ignore[arg-type]  # one mechanic per case
    )
    message.valid_to.CopyFrom(timestamp(datetime(2026, 3, 9, 23, 59, 59, 123456, tzinfo=UTC)))
    return message


ANSWERS = {
    "plain": pb.PriceBasketResponse(
        lines=[line("SKU00001", 1250, "2"), line("SKU00002", 5, "0.375")], total=cny(2510), regular_total=cny(2700)
    ),
    "promotions": pb.PriceBasketResponse(
        lines=[
            line(
                "SKU1",
                800,
                "3",
                promotion("周末特惠", percent_off=money_pb2.Decimal(value="15")),
                promotion_applied=True,
            ),
            line("SKU2", 900, "1", promotion('"quoted" \\ back\nslash\t\x01', fixed_price=cny(850))),
            line("SKU3", 0, "4", promotion("2件", multi_buy=pb.MultiBuy(quantity=2, bundle_price=cny(1000)))),
        ],
        total=cny(0),
        regular_total=cny(123456789012),
    ),
    "other currency, none set": pb.PriceBasketResponse(
        lines=[pb.EffectivePrice(sku="SKU9", unit_price=cny(100, "HKD")), pb.EffectivePrice(sku="SKU8")],
        total=cny(100, "HKD"),
    ),
}


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
def test_the_basket_json_is_byte_for_byte_the_models(answer: pb.PriceBasketResponse) -> None:
    model = BasketOut(
        lines=[map_effective_price(price) for price in answer.lines],
        total=amount(answer.total),
        regular_total=amount(answer.regular_total),
        currency=answer.total.currency_code or "CNY",
    )
    assert basket_json(answer) == model.model_dump_json().encode()


def test_yuan_text_is_the_exact_decimal_amount() -> None:
    for fen in [*range(-1_000, 1_000), 10**12, -(10**15) - 7, 123456789012345678901]:
        assert yuan_text(fen) == str(Decimal(fen).scaleb(-2)), fen
