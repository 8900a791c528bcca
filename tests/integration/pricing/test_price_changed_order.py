"""PriceChanged events of many concurrent price writers, relayed while some publishes are lost.

A ``PriceChanged`` belongs to the outbox aggregate of its store and SKU
(``integration_events.price_aggregate``): the relay keeps each (store, SKU)'s events in
price-book-version order on the stream, and publishes different SKUs' events side by side
— many more than one per store in flight at once, which is what lets a chain-wide change's
50,000 events drain at the JetStream rate instead of ten publishes at a time.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from retail.pricing.v1 import events_pb2
from sqlalchemy import text

from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.outbox import OutboxRelay
from servicekit.settings import to_plain_url
from services.pricing.adapters import book_entries
from services.pricing.adapters.integration_events import SUBJECT_PREFIX
from services.pricing.adapters.pricing_store import StoreRow
from services.pricing.bootstrap import PricingServices, wire
from services.pricing.domain.catalogue import Item
from services.pricing.domain.commands import Actor, SetPrices
from services.pricing.settings import PricingSettings
from tests.integration.pricing.conftest import barcode_for
from tests.support.messaging import jetstream, own_stream, read_all

if TYPE_CHECKING:
    from nats.js import JetStreamContext

STORES = ("S1", "S2", "S3")
SKUS = [f"SKU-ORDER-{n:03d}" for n in range(40)]
WRITERS = 4
ROUNDS = 3
HQ = Actor(client_id="HQ-ORDER", headquarters=True)


class LossyJetStream:
    """The real JetStream under this test's own subjects, losing every ``every``-th publish (its ack
    fails as a lost request's does), and counting how many PriceChanged publishes were in flight at once."""

    def __init__(self, js: JetStreamContext, token: str, every: int) -> None:
        self._js, self._token, self._every = js, token, every
        self.calls = self.lost = 0
        self.in_flight = self.most_in_flight = 0

    async def publish_async(
        self,
        subject: str,
        payload: bytes = b"",
        wait_stall: float | None = None,
        stream: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> asyncio.Future[Any]:
        self.calls += 1
        if self.calls % self._every == 0:
            self.lost += 1
            lost: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            lost.set_exception(NatsTimeoutError())
            return lost
        ack = await self._js.publish_async(
            subject.replace(SUBJECT_PREFIX, f"test.{self._token}", 1), payload, headers=headers
        )
        if ".price_changed." in subject:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            ack.add_done_callback(self._landed)
        return ack

    def _landed(self, _: asyncio.Future[Any]) -> None:
        self.in_flight -= 1


@pytest.fixture
async def unit_of_work(pricing_url: str) -> AsyncIterator[Callable[[], UnitOfWork]]:
    engine = create_engine(pricing_url)
    yield units_of_work(engine)
    await engine.dispose()


@pytest.fixture
def services(
    pricing_settings: Callable[..., PricingSettings], unit_of_work: Callable[[], UnitOfWork]
) -> PricingServices:
    """The application services without a server: this test runs the relay itself."""
    return wire(pricing_settings(), unit_of_work)


async def unpublished(database_url: str) -> int:
    connection = await asyncpg.connect(to_plain_url(database_url))
    try:
        return int(await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    finally:
        await connection.close()


async def set_price(services: PricingServices, unit_of_work: Callable[[], UnitOfWork], sku: str, fen: int) -> None:
    async with unit_of_work() as uow:
        await services.pricing.set_prices(uow, SetPrices(sku, "CNY", fen, (), ()), HQ)
        await uow.commit()


async def test_each_stores_price_of_a_sku_reaches_the_stream_in_version_order_with_many_skus_in_flight(
    services: PricingServices, unit_of_work: Callable[[], UnitOfWork], pricing_url: str, nats_url: str, unique: str
) -> None:
    pricing = services.pricing
    async with unit_of_work() as uow:
        for store_id in STORES:
            await pricing.put_store(uow, StoreRow(store_id, f"Store {store_id}", (), "CNY", "", "", 0))
        for sku in SKUS:
            item = Item.create(
                sku=sku,
                name=f"Item {sku}",
                category="C0101",
                barcode=barcode_for(sku),
                unit="piece",
                cost_fen=100,
                supplier_id="SUP001",
            )
            await pricing.put_item(uow, item)
        await uow.commit()
    prices = iter(range(1_000, 1_000_000, 7))

    async def writer(seed: int) -> None:
        order = list(SKUS)
        random.Random(seed).shuffle(order)
        for sku in order:
            await set_price(services, unit_of_work, sku, next(prices))

    # A backlog of one round before the relay starts, so a pass holds many SKUs' events.
    await asyncio.gather(*(writer(seed) for seed in range(WRITERS)))
    async with jetstream(nats_url) as (_, js):
        stream = await own_stream(js, unique)
        lossy = LossyJetStream(js, unique, every=29)
        relay = OutboxRelay(pricing_url, lossy, batch_size=300, poll_interval=0.05, max_backoff=0.1)
        stop = asyncio.Event()
        relaying = asyncio.create_task(relay.run(stop))
        for round_ in range(1, ROUNDS):
            await asyncio.gather(*(writer(round_ * WRITERS + seed) for seed in range(WRITERS)))
        async with asyncio.timeout(120):
            while await unpublished(pricing_url):
                await asyncio.sleep(0.05)
        stop.set()
        await relaying
        received = await read_all(js, stream.name, f"test.{unique}.price_changed.>")

    async with unit_of_work() as uow:
        written = (
            await uow.session.execute(
                text("SELECT event_id FROM outbox WHERE subject LIKE :subjects"),
                {"subjects": f"{SUBJECT_PREFIX}.price_changed.%"},
            )
        ).scalars()
        expected_ids = sorted(str(event_id) for event_id in written)
        book = await book_entries.book_rows(uow.session, SKUS, list(STORES))

    assert lossy.lost > 0, "no publish was lost: the test proved nothing"
    ids = sorted(headers["Nats-Msg-Id"] for _, headers, _ in received)
    assert ids == expected_ids, "a PriceChanged is missing or was stored twice"
    assert len(ids) == len(STORES) * len(SKUS) * WRITERS * ROUNDS
    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    last: dict[tuple[str, str], events_pb2.PriceChanged] = {}
    for _, _, payload in received:
        event = events_pb2.PriceChanged.FromString(payload)
        versions[(event.store_id, event.sku)].append(event.price_book_version)
        last[(event.store_id, event.sku)] = event
    for key, seen in versions.items():
        assert seen == sorted(set(seen)), f"the events of {key} overtook each other: {seen}"
    for key, entry in book.items():
        assert (last[key].price_book_version, last[key].new_unit_price.minor_units) == (
            entry.version,
            entry.unit_price_fen,
        ), key
    # One aggregate per store would never have more than one publish per store in flight.
    assert lossy.most_in_flight > 4 * len(STORES), lossy.most_in_flight
