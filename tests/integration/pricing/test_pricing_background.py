"""The service on its own: with a real clock and its background rounds running, a change
scheduled a moment ahead reaches the POS book, the PRICING stream and every shelf label
without anyone driving it; and a service stopped mid-sync leaves nothing for its successor
to lose.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
from retail.pricing.v1 import events_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from services.pricing.adapters.integration_events import PRICING_STREAM
from services.pricing.bootstrap import PricingApp
from services.pricing.settings import PricingSettings
from tests.integration.pricing.conftest import (
    HQ,
    cny,
    put_item,
    put_store,
    request_id,
    set_prices,
    stamp,
    start_pricing_app,
)
from tests.support.messaging import jetstream, read_all
from tools.esl_simulators import running
from tools.esl_simulators.batch import BatchSimulator

DEADLINE_SECONDS = 30
T = TypeVar("T")


def real_clock() -> datetime:
    return datetime.now(UTC)


def fast_rounds(pricing_settings: Callable[..., PricingSettings]) -> PricingSettings:
    return pricing_settings(schedule_poll_seconds=0.2, label_poll_seconds=0.2, label_status_seconds=1)


@asynccontextmanager
async def serving(settings: PricingSettings) -> AsyncIterator[tuple[PricingApp, pb_grpc.PricingServiceAsyncStub]]:
    """A pricing service with its background rounds on a real clock, and a client of it."""
    app = await start_pricing_app(settings, real_clock)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
            yield app, pb_grpc.PricingServiceStub(channel)
    finally:
        await app.server.stop()
        await app.close()


async def eventually(what: str, probe: Callable[[], Awaitable[T | None]]) -> T:
    """Ask ``probe`` until it answers (not None), for at most the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        answer = await probe()
        if answer is not None:
            return answer
        assert time.monotonic() < deadline, f"not within {DEADLINE_SECONDS} s: {what}"
        await asyncio.sleep(0.1)


async def labels_of(stub: pb_grpc.PricingServiceAsyncStub, store_id: str) -> list[pb.Label]:
    return list((await stub.ListLabels(pb.ListLabelsRequest(store_id=store_id), timeout=10)).labels)


async def book_prices(
    stub: pb_grpc.PricingServiceAsyncStub, store_id: str, since: int = 0
) -> tuple[int, dict[str, int]]:
    answer = await stub.GetPriceBook(pb.GetPriceBookRequest(store_id=store_id, since_version=since), timeout=10)
    assert not answer.page.next_page_token
    return answer.version, {entry.sku: entry.unit_price.minor_units for entry in answer.entries}


def every_label_shows(
    stub: pb_grpc.PricingServiceAsyncStub, store_id: str, vendor: BatchSimulator, prices: dict[str, int]
) -> Callable[[], Awaitable[list[pb.Label] | None]]:
    """A probe: every label of the store acknowledged, showing (on the simulated shelf too) its SKU's price."""

    async def probe() -> list[pb.Label] | None:
        labels = await labels_of(stub, store_id)
        for label in labels:
            shown = vendor.displayed(label.label_id)
            if (
                label.state != pb.LABEL_SYNC_STATE_ACKNOWLEDGED
                or label.acknowledged_price.minor_units != prices[label.sku]
                or shown is None
                or shown.price_fen != prices[label.sku]
            ):
                return None
        return labels

    return probe


async def link_labels(stub: pb_grpc.PricingServiceAsyncStub, store_id: str, links: dict[str, str]) -> None:
    for label_id, sku in links.items():
        await stub.PutLabel(
            pb.PutLabelRequest(request_id=request_id(), store_id=store_id, label_id=label_id, sku=sku, actor=HQ),
            timeout=10,
        )


async def test_a_change_scheduled_ahead_reaches_the_book_the_stream_and_every_label_by_itself(
    pricing_settings: Callable[..., PricingSettings], nats_url: str, unique: str
) -> None:
    store = f"B{unique}"  # the PRICING stream is shared by the test run: this store's subject is ours
    links = {"E-1": "SKU-A", "E-2": "SKU-A", "E-3": "SKU-B", "E-4": "SKU-C"}
    vendor = BatchSimulator(links, checkin_interval=0.2)
    async with running(vendor) as url, serving(fast_rounds(pricing_settings)) as (app, stub):
        await put_store(app, store, station_kind="batch", station_url=url)
        for sku in ("SKU-A", "SKU-B", "SKU-C"):
            await put_item(app, sku, cost_fen=300)
            await set_prices(app, sku, 1000)
        await link_labels(stub, store, links)
        first_prices = {"SKU-A": 1000, "SKU-B": 1000, "SKU-C": 1000}
        await eventually("the labels show the first prices", every_label_shows(stub, store, vendor, first_prices))
        held, _ = await book_prices(stub, store)

        moment = datetime.now(UTC) + timedelta(seconds=2)
        change = (
            await stub.SchedulePriceChange(
                pb.SchedulePriceChangeRequest(
                    request_id=request_id(), sku="SKU-A", price=cny(880), effective_at=stamp(moment), actor=HQ
                ),
                timeout=10,
            )
        ).change
        now_prices = {"SKU-A": 880, "SKU-B": 1000, "SKU-C": 1000}
        labels = await eventually("every label shows the new price", every_label_shows(stub, store, vendor, now_prices))
        assert datetime.now(UTC) >= moment  # not a moment early
        assert all(label.acknowledged_at.ToDatetime(tzinfo=UTC) >= moment for label in labels if label.sku == "SKU-A")

        version, delta = await book_prices(stub, store, since=held)
        assert (version, delta) == (held + 1, {"SKU-A": 880})
        assert (await book_prices(stub, store))[1] == now_prices
        listed = await stub.ListPriceChanges(pb.ListPriceChangesRequest(sku="SKU-A"), timeout=10)
        assert [(c.change_id, c.state) for c in listed.changes] == [(change.change_id, pb.PRICE_CHANGE_STATE_APPLIED)]

        async with jetstream(nats_url) as (_, js):

            async def published() -> list[events_pb2.PriceChanged] | None:
                messages = await read_all(js, PRICING_STREAM.name, f"retail.pricing.v1.price_changed.{store}")
                events = [events_pb2.PriceChanged.FromString(payload) for _, _, payload in messages]
                return events if any(event.change_id == change.change_id for event in events) else None

            events = await eventually("the PriceChanged reached the PRICING stream", published)
        [caused] = [event for event in events if event.change_id == change.change_id]
        assert (caused.store_id, caused.sku, caused.price_book_version) == (store, "SKU-A", held + 1)
        assert (caused.old_unit_price.minor_units, caused.new_unit_price.minor_units) == (1000, 880)
        assert caused.effective_at.ToDatetime(tzinfo=UTC) == moment
        # In version order on the stream, one event per version step of this store.
        versions = [event.price_book_version for event in events]
        assert versions == sorted(versions)
        assert versions[-1] == held + 1


async def test_a_service_stopped_with_labels_sent_leaves_its_successor_to_finish_the_sync(
    pricing_settings: Callable[..., PricingSettings], unique: str
) -> None:
    store = f"R{unique}"
    links = {"F-1": "SKU-A", "F-2": "SKU-A", "F-3": "SKU-B"}
    vendor = BatchSimulator(links)  # no check-ins until the test says so: pushes stay pending at the station
    settings = fast_rounds(pricing_settings)
    async with running(vendor) as url:
        async with serving(settings) as (app, stub):
            await put_store(app, store, station_kind="batch", station_url=url)
            for sku in ("SKU-A", "SKU-B"):
                await put_item(app, sku, cost_fen=300)
                await set_prices(app, sku, 1000)
            await link_labels(stub, store, links)

            async def all_sent() -> list[pb.Label] | None:
                # Claimed as sent in the database, and held by the station (the push follows the claim).
                labels = await labels_of(stub, store)
                sent = {label.state for label in labels} == {pb.LABEL_SYNC_STATE_SENT}
                return labels if sent and all(vendor.pending(label_id) for label_id in links) else None

            await eventually("every label is sent and held by the station", all_sent)
            # A change that falls due while no service runs.
            moment = datetime.now(UTC) + timedelta(seconds=1)
            await stub.SchedulePriceChange(
                pb.SchedulePriceChangeRequest(
                    request_id=request_id(), sku="SKU-B", price=cny(770), effective_at=stamp(moment), actor=HQ
                ),
                timeout=10,
            )
        # Stopped. The labels take their updates meanwhile, unseen by any service.
        vendor.tick()
        assert all(vendor.displayed(label_id) is not None for label_id in links)

        async with serving(settings) as (_, stub):
            prices = {"SKU-A": 1000, "SKU-B": 770}
            labels = await eventually(
                "the successor applies the change and confirms every label",
                every_label_shows_after_ticks(stub, store, vendor, prices),
            )
            assert {label.label_id: label.acknowledged_price.minor_units for label in labels} == {
                "F-1": 1000,
                "F-2": 1000,
                "F-3": 770,
            }
            assert (await book_prices(stub, store))[1] == prices
        # Each label got its first content once, and F-3 its new price once more: nothing pushed twice.
        assert vendor.updates_received == len(links) + 1


def every_label_shows_after_ticks(
    stub: pb_grpc.PricingServiceAsyncStub, store_id: str, vendor: BatchSimulator, prices: dict[str, int]
) -> Callable[[], Awaitable[list[pb.Label] | None]]:
    """Like every_label_shows, with a radio check-in of the simulated labels before each look."""
    shows = every_label_shows(stub, store_id, vendor, prices)

    async def probe() -> list[pb.Label] | None:
        vendor.tick()
        return await shows()

    return probe
