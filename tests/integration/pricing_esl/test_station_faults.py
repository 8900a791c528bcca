"""Both adapters when the station misbehaves: every failure is StationUnavailable or FAILED,
and every call returns within its timeout."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from services.pricing.adapters.esl import (
    LabelContent,
    LabelPush,
    LabelStation,
    PushState,
    StationUnavailable,
    open_station,
)
from tools.esl_simulators import Mode, StationSimulator, running
from tools.esl_simulators.batch import BatchSimulator, generate_label_ids
from tools.esl_simulators.openepaperlink import OpenEPaperLinkSimulator, generate_macs

TIMEOUT = 0.5
# Far above TIMEOUT: a call that waited for the station instead of timing out fails here.
GUARD = 10.0


@dataclass
class Rig:
    simulator: StationSimulator
    station: LabelStation
    label_ids: list[str]


def content() -> LabelContent:
    return LabelContent(
        sku=f"SKU-{uuid.uuid4().hex[:8]}",
        name="Sparkling water",
        unit="can",
        barcode="6900000000001",
        currency="CNY",
        price_fen=350,
        regular_price_fen=450,
        promotion_text="2件6.00元",
        template="promo",
    )


@pytest.fixture(params=["openepaperlink", "batch"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    simulator: StationSimulator
    if request.param == "openepaperlink":
        ids = generate_macs(3, prefix=uuid.uuid4().int & 0xFFFF)
        simulator = OpenEPaperLinkSimulator(ids)
    else:
        ids = generate_label_ids(3, prefix=f"F{uuid.uuid4().hex[:6]}-")
        simulator = BatchSimulator(ids)
    async with running(simulator) as base_url:
        station = open_station(request.param, base_url, timeout=TIMEOUT)
        try:
            yield Rig(simulator, station, ids)
        finally:
            simulator.mode = Mode.NORMAL
            simulator.latency = 0
            await station.close()


def pushes(rig: Rig) -> list[LabelPush]:
    return [LabelPush(i, content()) for i in rig.label_ids]


async def test_failing_station_raises_station_unavailable(rig: Rig) -> None:
    rig.simulator.mode = Mode.FAILING

    async with asyncio.timeout(GUARD):
        with pytest.raises(StationUnavailable, match="500"):
            await rig.station.push(pushes(rig))
        with pytest.raises(StationUnavailable, match="500"):
            await rig.station.status(rig.label_ids)


async def test_a_station_failing_after_the_push_fails_the_status_of_its_tickets(rig: Rig) -> None:
    """Asked about pushed labels, a station looks up their tickets and their states: either failing is
    one StationUnavailable, and nothing is left running."""
    results = await rig.station.push(pushes(rig))
    tickets = [result.ticket for result in results]
    rig.simulator.mode = Mode.FAILING
    tasks_before = asyncio.all_tasks()

    async with asyncio.timeout(GUARD):
        with pytest.raises(StationUnavailable, match="500"):
            await rig.station.status(rig.label_ids, tickets)

    assert asyncio.all_tasks() == tasks_before


@pytest.mark.parametrize("mode", [Mode.GARBAGE, Mode.WRONG_SHAPE])
async def test_garbage_answers_never_escape_as_other_exceptions(rig: Rig, mode: Mode) -> None:
    rig.simulator.mode = mode

    async with asyncio.timeout(GUARD):
        try:
            results = await rig.station.push(pushes(rig))
        except StationUnavailable:
            pass
        else:
            assert [r.state for r in results] == [PushState.FAILED] * len(rig.label_ids)
        with pytest.raises(StationUnavailable):
            await rig.station.status(rig.label_ids)
    assert rig.simulator.requests_served > 0


async def test_slow_station_times_out_instead_of_hanging(rig: Rig) -> None:
    rig.simulator.latency = 60.0

    async with asyncio.timeout(GUARD):
        with pytest.raises(StationUnavailable, match="no answer"):
            await rig.station.push(pushes(rig))
        with pytest.raises(StationUnavailable, match="no answer"):
            await rig.station.status(rig.label_ids)


async def test_hanging_station_times_out_and_recovers(rig: Rig) -> None:
    rig.simulator.mode = Mode.DOWN

    async with asyncio.timeout(GUARD):
        with pytest.raises(StationUnavailable):
            await rig.station.status(rig.label_ids)
    rig.simulator.mode = Mode.NORMAL

    results = await rig.station.push(pushes(rig))
    assert all(r.state is PushState.ACCEPTED for r in results)


@pytest.mark.parametrize("kind", ["openepaperlink", "batch"])
async def test_refused_connection_raises_station_unavailable(kind: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    station = open_station(kind, f"http://127.0.0.1:{port}", timeout=TIMEOUT)
    label = generate_macs(1)[0]
    try:
        async with asyncio.timeout(GUARD):
            with pytest.raises(StationUnavailable):
                await station.push([LabelPush(label, content())])
            with pytest.raises(StationUnavailable):
                await station.status([label])
    finally:
        await station.close()


def test_unknown_station_kind_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown label station kind"):
        open_station("carrier-pigeon", "http://127.0.0.1:1")
