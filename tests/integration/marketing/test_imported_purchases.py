"""A member's legacy purchases (PurchasesImported) become imported purchases of the projection, once each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from google.protobuf.message import Message
from retail.common.v1 import money_pb2
from retail.member.v1 import events_pb2 as member_events

from servicekit.consumer import InboundEvent
from servicekit.db import UnitOfWork
from servicekit.protowire import timestamp
from services.marketing.entrypoints.consumers import member_handlers
from services.marketing.service_layer.projections import Projections
from services.marketing.service_layer.redemptions import CouponRedemptions
from tests.integration.marketing.conftest import fetch
from tests.support.clock import HandClock


def cny(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="CNY", minor_units=fen)


async def test_imported_purchases_are_kept_once_with_their_lines_and_marked_imported(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    projections = Projections(CouponRedemptions(unit_of_work, clock=clock))
    async with unit_of_work() as uow:
        await projections.item_changed(uow, sku="TEA", category="tea", cost_fen=1_000, version=1, at=clock.now)
        await uow.commit()
    message = member_events.PurchasesImported(
        member_id="M0000042",
        purchases=[
            member_events.ImportedPurchaseFact(
                purchase_id="import:crm-7:1",
                occurred_at=timestamp(clock.now - timedelta(days=400)),
                amount=cny(12_000),
                store_id="S1",
                lines=[
                    member_events.ImportedPurchaseFactLine(
                        sku="TEA", quantity=money_pb2.Decimal(value="3"), amount=cny(11_000)
                    )
                ],
            ),
            member_events.ImportedPurchaseFact(
                purchase_id="import:crm-7:2", occurred_at=timestamp(clock.now - timedelta(days=30)), amount=cny(5_000)
            ),
        ],
        occurred_at=timestamp(clock.now),
    )
    route = member_handlers(projections).route(message.DESCRIPTOR.full_name)
    assert route is not None
    for attempt in (1, 2):  # a redelivery keeps nothing twice
        event: InboundEvent[Message] = InboundEvent(
            event_id=f"evt-{attempt}",
            subject="retail.member.v1.purchases_imported",
            event_type=message.DESCRIPTOR.full_name,
            message=message,
            occurred_at=clock.now,
            attempt=attempt,
            headers={},
        )
        async with unit_of_work() as uow:
            await route.handler(event, uow)
            await uow.commit()
    purchases = await fetch(
        marketing_url,
        "SELECT sale_id, member_id, store_id, gross_fen, net_fen, cost_fen, imported FROM purchase ORDER BY sale_id",
    )
    assert [tuple(row) for row in purchases] == [
        ("import:crm-7:1", "M0000042", "S1", 12_000, 12_000, 3_000, True),
        ("import:crm-7:2", "M0000042", "", 5_000, 5_000, 0, True),
    ]
    lines = await fetch(marketing_url, "SELECT sale_id, sku, category, quantity, net_fen, cost_fen FROM purchase_line")
    assert [tuple(row) for row in lines] == [("import:crm-7:1", "TEA", "tea", Decimal("3.000"), 11_000, 3_000)]
    members = await fetch(marketing_url, "SELECT member_id FROM member")
    assert [row["member_id"] for row in members] == ["M0000042"]
