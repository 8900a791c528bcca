"""The batch adapter against the simulated ESL server: transactions, splitting, per-label results."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from services.pricing.adapters.esl import (
    LabelContent,
    LabelPush,
    LabelStation,
    PushState,
    StationUnavailable,
    open_station,
)
from tools.esl_simulators import running
from tools.esl_simulators.batch import BatchSimulator, generate_label_ids

API_KEY = "test-key"


def content(price_fen: int = 1290) -> LabelContent:
    return LabelContent(
        sku=f"SKU-{uuid.uuid4().hex[:8]}",
        name="五常大米 5kg",
        unit="袋",
        barcode="6901234567892",
        currency="CNY",
        price_fen=price_fen,
        regular_price_fen=None,
        promotion_text="",
        template="standard",
    )


@pytest.fixture
def label_ids() -> list[str]:
    return generate_label_ids(2500, prefix=f"S{uuid.uuid4().hex[:6]}-")


@pytest.fixture
def simulator(label_ids: list[str]) -> BatchSimulator:
    return BatchSimulator(label_ids, api_key=API_KEY)


@pytest.fixture
async def base_url(simulator: BatchSimulator) -> AsyncIterator[str]:
    async with running(simulator) as url:
        yield url


@pytest.fixture
async def station(base_url: str) -> AsyncIterator[LabelStation]:
    adapter = open_station("batch", base_url, timeout=3.0, api_key=API_KEY)
    try:
        yield adapter
    finally:
        await adapter.close()


async def test_pushed_prices_are_acknowledged_with_the_displayed_digest(
    station: LabelStation, simulator: BatchSimulator, label_ids: list[str]
) -> None:
    ids = label_ids[:3]
    pushes = [LabelPush(i, content(100 * (n + 1))) for n, i in enumerate(ids)]

    results = await station.push(pushes)

    assert [r.state for r in results] == [PushState.ACCEPTED] * 3
    assert len({r.ticket for r in results}) == 1
    tickets = [r.ticket for r in results]
    waiting = await station.status(ids, tickets)
    assert all(s.pending and s.acknowledged_digest is None and s.error == "" for s in waiting)

    simulator.tick()

    done = await station.status(ids, tickets)
    assert [s.acknowledged_digest for s in done] == [p.content.digest() for p in pushes]
    assert all(not s.pending and s.online and s.battery_mv == 2950 and s.last_seen is not None for s in done)
    shown = simulator.displayed(ids[1])
    assert shown is not None
    assert shown.price_fen == 200


async def test_more_than_a_thousand_updates_are_split_into_requests_of_a_thousand(
    station: LabelStation, simulator: BatchSimulator, label_ids: list[str]
) -> None:
    pushes = [LabelPush(i, content(n)) for n, i in enumerate(label_ids)]

    results = await station.push(pushes)

    assert station.max_batch == 1000
    assert simulator.requests["label-updates"] == 3
    assert [r.label_id for r in results] == label_ids
    assert all(r.state is PushState.ACCEPTED for r in results)
    # The three requests go out concurrently, so the server numbers them in any order.
    assert sorted(len([r for r in results if r.ticket == t]) for t in {r.ticket for r in results}) == [500, 1000, 1000]

    simulator.tick()
    statuses = await station.status(label_ids, [r.ticket for r in results])
    assert [s.acknowledged_digest for s in statuses] == [p.content.digest() for p in pushes]
    assert simulator.requests["transactions"] == 3


async def test_a_label_failure_fails_only_that_label(
    station: LabelStation, simulator: BatchSimulator, label_ids: list[str]
) -> None:
    ids = label_ids[:3]
    simulator.fail_label(ids[1], "e-paper refresh failed")
    pushes = [LabelPush(i, content()) for i in ids]

    results = await station.push(pushes)
    simulator.tick()
    statuses = await station.status(ids, [r.ticket for r in results])

    assert [s.error for s in statuses] == ["", "e-paper refresh failed", ""]
    assert [s.acknowledged_digest for s in statuses] == [pushes[0].content.digest(), None, pushes[2].content.digest()]
    assert simulator.displayed(ids[1]) is None


async def test_offline_label_stays_pending_until_it_is_back(
    station: LabelStation, simulator: BatchSimulator, label_ids: list[str]
) -> None:
    label = label_ids[7]
    simulator.set_online(label, False)
    push = LabelPush(label, content(333))

    [result] = await station.push([push])
    simulator.tick()

    [offline] = await station.status([label], [result.ticket])
    assert (offline.online, offline.pending, offline.acknowledged_digest) == (False, True, None)

    simulator.set_online(label, True)
    simulator.tick()

    [back] = await station.status([label], [result.ticket])
    assert (back.online, back.pending, back.acknowledged_digest) == (True, False, push.content.digest())


async def test_unknown_label_and_unknown_transaction_are_reported_per_label(
    station: LabelStation, label_ids: list[str]
) -> None:
    [unknown_push, known_push] = await station.push(
        [LabelPush("NO-SUCH-LABEL", content()), LabelPush(label_ids[0], content())]
    )
    assert unknown_push.state is PushState.ACCEPTED  # the server decides asynchronously

    statuses = await station.status(
        ["NO-SUCH-LABEL", label_ids[0], label_ids[1]], [unknown_push.ticket, known_push.ticket, "T99999999"]
    )

    assert statuses[0].error
    assert not statuses[0].online
    assert statuses[0].acknowledged_digest is None
    assert statuses[1].error == ""
    assert statuses[1].online
    assert statuses[1].pending
    assert statuses[2].error == "unknown transaction T99999999"
    assert statuses[2].online
    [no_ticket] = await station.status(["NO-SUCH-LABEL"])
    assert no_ticket.error == "unknown label"


async def test_a_wrong_api_key_makes_the_station_unavailable(
    base_url: str, simulator: BatchSimulator, label_ids: list[str]
) -> None:
    adapter = open_station("batch", base_url, api_key="wrong")
    try:
        with pytest.raises(StationUnavailable, match="API key"):
            await adapter.push([LabelPush(label_ids[0], content())])
    finally:
        await adapter.close()
    assert simulator.updates_received == 0


async def test_a_succeeded_transaction_acknowledges_nothing_the_label_does_not_report(
    station: LabelStation, simulator: BatchSimulator, label_ids: list[str]
) -> None:
    label_id = label_ids[0]
    shown, lost = content(500), content(450)
    [first] = await station.push([LabelPush(label_id, shown)])
    simulator.tick()
    simulator.ignore_updates(label_id)  # the server will say "succeeded", the display will not change

    [second] = await station.push([LabelPush(label_id, lost)])
    simulator.tick()

    [status] = await station.status([label_id], [second.ticket])
    assert (status.pending, status.error) == (False, "")  # the server's word: done, no error
    assert status.acknowledged_digest == shown.digest() != lost.digest()  # the label's word wins
    assert first.ticket != second.ticket


async def test_a_revert_is_not_acknowledged_while_the_older_update_is_still_queued(
    station: LabelStation, simulator: BatchSimulator, label_ids: list[str]
) -> None:
    label_id = label_ids[0]
    x, y = content(1000), content(900)
    await station.push([LabelPush(label_id, x)])
    simulator.tick()
    await station.push([LabelPush(label_id, y)])
    [back_to_x] = await station.push([LabelPush(label_id, x)])  # reverted before the label checked in

    [before] = await station.status([label_id], [back_to_x.ticket])
    assert simulator.pending(label_id)
    assert (before.pending, before.acknowledged_digest) == (True, None)  # shows X, but Y is on its way

    simulator.tick()  # Y, then X, are delivered
    [after] = await station.status([label_id], [back_to_x.ticket])
    assert (after.pending, after.acknowledged_digest) == (False, x.digest())
    shown = simulator.displayed(label_id)
    assert shown is not None
    assert shown.digest == x.digest()


async def test_a_done_transaction_is_read_once_and_a_pending_one_every_time(
    station: LabelStation, simulator: BatchSimulator, label_ids: list[str]
) -> None:
    # A round of acknowledgements asks a page of labels at a time; the pages name the same transactions.
    ids = label_ids[:4]
    pushes = [LabelPush(i, content(100 * (n + 1))) for n, i in enumerate(ids)]
    tickets = [r.ticket for r in await station.push(pushes)]
    reads = simulator.requests["transactions"]

    await station.status(ids[:2], tickets[:2])
    await station.status(ids[2:], tickets[2:])
    assert simulator.requests["transactions"] == reads + 2  # pending: its results may still change

    simulator.tick()
    first = await station.status(ids[:2], tickets[:2])
    second = await station.status(ids[2:], tickets[2:])

    assert simulator.requests["transactions"] == reads + 3  # done: final, read once
    assert [s.acknowledged_digest for s in first + second] == [p.content.digest() for p in pushes]
    assert not any(s.pending or s.error for s in first + second)
