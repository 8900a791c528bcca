"""Overstock found by inventory becomes a markdown suggestion, then (approved by the store) a
scheduled price change of that store alone.

The alerts are real ``retail.inventory.v1.StockAlertRaised`` messages on the INVENTORY
stream, consumed by the running service's durable consumer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from decimal import Decimal

import grpc
from nats.js import JetStreamContext
from nats.js.api import PubAck
from retail.common.v1 import identifiers_pb2, money_pb2
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from servicekit.messaging import ensure_consumer, ensure_stream
from services.inventory.entrypoints.sales_consumer import INVENTORY_STREAM
from services.pricing.bootstrap import PricingApp
from services.pricing.domain.guard_rails import min_margin_floor_fen
from services.pricing.entrypoints.inventory_consumer import inventory_consumer
from services.pricing.settings import PricingSettings
from tests.integration.pricing.conftest import (
    HQ,
    Clock,
    put_item,
    put_store,
    request_id,
    set_prices,
    store_manager,
)
from tests.support.grpc_status import refused
from tests.support.messaging import consumer_settled, jetstream

DEADLINE_SECONDS = 30
MIN_MARGIN = Decimal("0.05")  # the settings' default


async def raise_overstock(
    js: JetStreamContext, store_id: str, sku: str, *, alert_id: str, days_of_cover: str, overstock_cover_days: str
) -> PubAck:
    """Publish an overstock alert the way inventory's outbox relay does (subject, headers)."""
    alert = inventory_events.StockAlertRaised(
        alert_id=alert_id,
        location_id=store_id,
        as_of_date="2024-06-11",
        alert=inventory_pb.StockAlert(
            sku=sku,
            kind=inventory_pb.STOCK_ALERT_KIND_OVERSTOCK,
            available_to_promise=money_pb2.Decimal(value="950"),
            reorder_point=money_pb2.Decimal(value="40"),
            days_of_cover=money_pb2.Decimal(value=days_of_cover),
            overstock_cover_days=money_pb2.Decimal(value=overstock_cover_days),
        ),
    )
    ack: PubAck = await js.publish(
        f"retail.inventory.v1.stock_alert_raised.{store_id}",
        alert.SerializeToString(),
        headers={"Nats-Msg-Id": alert_id, "Retail-Event-Type": inventory_events.StockAlertRaised.DESCRIPTOR.full_name},
    )
    return ack


async def suggestions(
    stub: pb_grpc.PricingServiceAsyncStub, store_id: str, state: pb.MarkdownState.ValueType = pb.MARKDOWN_STATE_OPEN
) -> dict[str, pb.MarkdownSuggestion]:
    answer = await stub.ListMarkdownSuggestions(
        pb.ListMarkdownSuggestionsRequest(store_id=store_id, state=state), timeout=10
    )
    return {suggestion.sku: suggestion for suggestion in answer.suggestions}


async def effective(stub: pb_grpc.PricingServiceAsyncStub, sku: str, store_id: str) -> int:
    answer = await stub.GetEffectivePrice(
        pb.GetEffectivePriceRequest(sku=sku, question=pb.PriceQuestion(store_id=store_id)), timeout=10
    )
    return answer.price.unit_price.minor_units


async def book_prices(stub: pb_grpc.PricingServiceAsyncStub, store_id: str) -> tuple[int, dict[str, int]]:
    answer = await stub.GetPriceBook(pb.GetPriceBookRequest(store_id=store_id), timeout=10)
    assert not answer.page.next_page_token
    return answer.version, {entry.sku: entry.unit_price.minor_units for entry in answer.entries}


def decide(markdown_id: str, approve: bool, actor: identifiers_pb2.Actor) -> pb.DecideMarkdownRequest:
    return pb.DecideMarkdownRequest(request_id=request_id(), markdown_id=markdown_id, approve=approve, actor=actor)


async def test_an_overstock_alert_becomes_a_suggestion_the_store_approves_into_its_own_price_change(
    app: PricingApp,
    stub: pb_grpc.PricingServiceAsyncStub,
    clock: Clock,
    nats_url: str,
    unique: str,
    pricing_settings: Callable[..., PricingSettings],
) -> None:
    # The INVENTORY stream is shared by the whole test run: this test's stores and SKUs are its own.
    store, other = f"M{unique}", f"N{unique}"
    roomy, tight, no_room = f"MD-A-{unique}", f"MD-B-{unique}", f"MD-C-{unique}"
    durable = pricing_settings().inventory_consumer_durable
    for store_id in (store, other):
        await put_store(app, store_id)
    for sku, cost in ((roomy, 500), (tight, 800), (no_room, 950)):
        await put_item(app, sku, cost_fen=cost)
        await set_prices(app, sku, 1000)

    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, INVENTORY_STREAM)
        # The alert that leaves no room comes first: once the later ones are handled, so is it.
        await raise_overstock(
            js, store, no_room, alert_id=f"A-{unique}-C", days_of_cover="200", overstock_cover_days="30"
        )
        # 95 days against 30: ratio 3.17, the table's top step, 30 % off → 7.00, above the floor 5.00 / 0.95 = 5.27.
        first = await raise_overstock(
            js, store, roomy, alert_id=f"A-{unique}-A", days_of_cover="95", overstock_cover_days="30"
        )
        # 65 days against 30: ratio 2.17, 20 % off → 8.00, under the floor 8.00 / 0.95 = 8.43: held at 8.50.
        last = await raise_overstock(
            js, store, tight, alert_id=f"A-{unique}-B", days_of_cover="65", overstock_cover_days="30"
        )
        # The same alert again (a relay retrying after a lost ack): JetStream keeps one copy.
        again = await raise_overstock(
            js, store, roomy, alert_id=f"A-{unique}-A", days_of_cover="95", overstock_cover_days="30"
        )
        assert (again.duplicate, again.seq) == (True, first.seq)
        await consumer_settled(
            js, INVENTORY_STREAM.name, durable, DEADLINE_SECONDS, declared_later=True, past_sequence=last.seq
        )

        found = await suggestions(stub, store)
        assert sorted(found) == [roomy, tight]  # the SKU whose floor leaves no markdown got no suggestion
        assert await suggestions(stub, other) == {}
        for sku, cost, suggested, percent in ((roomy, 500, 700, "30"), (tight, 800, 850, "15")):
            suggestion = found[sku]
            assert (
                suggestion.current_price.minor_units,
                suggestion.suggested_price.minor_units,
                suggestion.floor_price.minor_units,
                suggestion.percent_off.value,
            ) == (1000, suggested, min_margin_floor_fen(cost, MIN_MARGIN), percent)
            # Never below the minimum margin over cost.
            assert (Decimal(suggested) - cost) / suggested >= MIN_MARGIN
            assert suggestion.state == pb.MARKDOWN_STATE_OPEN
        assert "30 % off" in found[roomy].reason
        assert "minimum-margin floor" in found[tight].reason

        # Only headquarters or the store's own staff decide.
        await refused(
            stub.DecideMarkdown(decide(found[roomy].markdown_id, True, store_manager(other)), timeout=10),
            grpc.StatusCode.PERMISSION_DENIED,
            "permission-denied",
        )
        other_version, other_before = await book_prices(stub, other)
        store_version, _ = await book_prices(stub, store)

        approved = await stub.DecideMarkdown(decide(found[roomy].markdown_id, True, store_manager(store)), timeout=10)
        assert approved.suggestion.state == pb.MARKDOWN_STATE_APPROVED
        change = approved.change
        assert (change.sku, list(change.store_ids), change.price.minor_units, change.state) == (
            roomy,
            [store],
            700,
            pb.PRICE_CHANGE_STATE_SCHEDULED,
        )
        assert approved.suggestion.change_id == change.change_id
        moment = change.effective_at.ToDatetime(tzinfo=UTC)
        assert moment > clock.now()
        rejected = await stub.DecideMarkdown(decide(found[tight].markdown_id, False, HQ), timeout=10)
        assert (rejected.suggestion.state, rejected.HasField("change")) == (pb.MARKDOWN_STATE_REJECTED, False)
        # Deciding twice: the first decision stands.
        for markdown_id in (found[roomy].markdown_id, found[tight].markdown_id):
            await refused(
                stub.DecideMarkdown(decide(markdown_id, False, HQ), timeout=10),
                grpc.StatusCode.FAILED_PRECONDITION,
                "markdown-not-open",
            )

        # Nothing moves before the moment; then the store's book and price do, and only that store's.
        assert await app.services.scheduler.run_due() == 0
        assert await effective(stub, roomy, store) == 1000
        clock.advance(moment - clock.now())
        assert await app.services.scheduler.run_due() == 1
        version, prices = await book_prices(stub, store)
        assert (version, prices[roomy], prices[tight]) == (store_version + 1, 700, 1000)
        assert await effective(stub, roomy, store) == 700
        assert await effective(stub, roomy, other) == 1000
        assert await book_prices(stub, other) == (other_version, other_before)
        listed = await stub.ListPriceChanges(pb.ListPriceChangesRequest(sku=roomy), timeout=10)
        assert [(c.change_id, c.state) for c in listed.changes] == [(change.change_id, pb.PRICE_CHANGE_STATE_APPLIED)]

        # The consumer is reset and reads the whole stream again (an operator recreating it):
        # every alert comes back with its Nats-Msg-Id, and none makes a second suggestion.
        await js.delete_consumer(INVENTORY_STREAM.name, durable)
        await ensure_consumer(js, inventory_consumer(durable))
        await consumer_settled(
            js, INVENTORY_STREAM.name, durable, DEADLINE_SECONDS, declared_later=True, past_sequence=last.seq
        )
        assert await suggestions(stub, store) == {}
        assert await suggestions(stub, store, pb.MARKDOWN_STATE_WITHDRAWN) == {}
        assert sorted(await suggestions(stub, store, pb.MARKDOWN_STATE_APPROVED)) == [roomy]
