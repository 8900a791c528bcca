"""The schedule's round starts at a change's effective moment, not up to a poll later, and tells
the label pusher when it gave labels new content (so they need not wait for its next poll either)."""

from __future__ import annotations

from datetime import timedelta

from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from services.pricing.bootstrap import PricingApp
from services.pricing.service_layer.schedule import Scheduler
from tests.integration.pricing.conftest import HQ, Clock, cny, put_item, put_store, request_id, set_prices, stamp


async def test_the_schedule_knows_when_its_next_change_is_due_and_says_when_it_changed_the_book(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    await put_store(app, "S001")
    await put_item(app, "SKU-W", cost_fen=300)
    await set_prices(app, "SKU-W", 1000)
    changed: list[int] = []
    scheduler = Scheduler(app.connected.unit_of_work, batch=500, clock=clock, on_changed=lambda: changed.append(1))
    await scheduler.run_due()  # whatever the setup left due
    changed.clear()
    assert await scheduler.seconds_until_due() is None  # nothing scheduled: the poll interval applies

    await stub.SchedulePriceChange(
        pb.SchedulePriceChangeRequest(
            request_id=request_id(),
            sku="SKU-W",
            price=cny(880),
            effective_at=stamp(clock.now() + timedelta(minutes=10)),
            actor=HQ,
        ),
        timeout=10,
    )
    assert await scheduler.seconds_until_due() == 600

    clock.advance(minutes=9)
    assert await scheduler.run_due() == 0
    assert changed == []  # nothing applied: the label pusher is not woken for nothing
    assert await scheduler.seconds_until_due() == 60

    clock.advance(minutes=1)
    assert await scheduler.run_due() == 1
    assert changed == [1]  # once per committed batch that changed the book
    assert await scheduler.seconds_until_due() is None
