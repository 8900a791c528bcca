"""The OpenEPaperLink adapter against the firmware-faithful simulated access point.

The simulator draws uploads only when a tag's check-in is near, drops an image identical to
what the tag shows, keeps a FIFO of queued images and reports ``hash`` as the firmware does;
its clock is a :class:`ManualClock`, so check-in timing is driven by the test, never slept.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from services.pricing.adapters.esl import LabelContent, LabelPush, LabelStation, PushState, open_station
from services.pricing.adapters.esl.openepaperlink import expected_hash, parse_ticket, tag_type_of
from services.pricing.adapters.esl.render import TagType
from tools.esl_simulators import running
from tools.esl_simulators.openepaperlink import TAG_TYPES, ManualClock, OpenEPaperLinkSimulator, generate_macs

MINUTE = 60.0


def content(price_fen: int = 1290, *, regular: int | None = None, promotion: str = "", name: str = "") -> LabelContent:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    return LabelContent(
        sku=sku,
        name=name or "Oolong tea 500ml",
        unit="bottle",
        barcode="6901234567892",
        currency="CNY",
        price_fen=price_fen,
        regular_price_fen=regular,
        promotion_text=promotion,
        template="promo" if regular is not None else "standard",
    )


def tag_type(hw_type: int = 0x01) -> TagType:
    described = tag_type_of(hw_type, TAG_TYPES[hw_type])
    assert described is not None
    return described


def shows(simulator: OpenEPaperLinkSimulator, mac: str, label: LabelContent) -> bool:
    """Whether the tag shows the picture the adapter draws for ``label``."""
    shown = simulator.shown(mac)
    return shown is not None and shown.hash == expected_hash(label, tag_type())


@pytest.fixture
def macs() -> list[str]:
    return generate_macs(4, prefix=uuid.uuid4().int & 0xFFFF)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def simulator(macs: list[str], clock: ManualClock) -> OpenEPaperLinkSimulator:
    return OpenEPaperLinkSimulator(macs, clock=clock)


@pytest.fixture
async def station(simulator: OpenEPaperLinkSimulator, clock: ManualClock) -> AsyncIterator[LabelStation]:
    async with running(simulator) as base_url:
        adapter = open_station("openepaperlink", base_url, timeout=5.0, clock=clock)
        try:
            yield adapter
        finally:
            await adapter.close()


async def test_pushed_price_is_acknowledged_once_the_tag_checks_in(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    pushes = [LabelPush(mac, content(1000 + i)) for i, mac in enumerate(macs)]

    results = await station.push(pushes)

    assert [r.label_id for r in results] == macs
    assert all(r.state is PushState.ACCEPTED and r.ticket for r in results)
    tickets = [r.ticket for r in results]
    before = await station.status(macs, tickets)
    assert all(s.pending and s.acknowledged_digest is None for s in before)

    assert simulator.tick() == len(macs)

    after = await station.status(macs, tickets)
    assert [s.acknowledged_digest for s in after] == [p.content.digest() for p in pushes]
    assert not any(s.pending for s in after)
    assert all(s.online and s.battery_mv == 2900 and s.last_seen is not None for s in after)
    assert shows(simulator, macs[2], pushes[2].content)


async def test_rendering_waits_for_the_tags_check_in(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, clock: ManualClock, macs: list[str]
) -> None:
    mac = macs[3]  # its first check-in is 8 of its 10 minutes away
    push = LabelPush(mac, content(120))

    [result] = await station.push([push])
    assert result.state is PushState.ACCEPTED
    assert simulator.configured(mac)  # stored, not drawn yet
    assert simulator.pending(mac) == 0
    [waiting] = await station.status([mac], [result.ticket])
    assert (waiting.pending, waiting.acknowledged_digest) == (True, None)

    simulator.advance(4 * MINUTE)  # the check-in is now under 5 minutes away: the AP draws it
    assert not simulator.configured(mac)
    assert simulator.pending(mac) == 1
    [queued] = await station.status([mac], [result.ticket])
    assert (queued.pending, queued.acknowledged_digest) == (True, None)

    assert simulator.advance(4 * MINUTE) >= 1  # the tag checks in and takes it
    [delivered] = await station.status([mac], [result.ticket])
    assert (delivered.pending, delivered.acknowledged_digest) == (False, push.content.digest())


async def test_a_re_push_of_what_the_tag_shows_is_acknowledged_though_the_ap_drops_it(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    mac = macs[0]
    shown = LabelPush(mac, content(880))
    [first] = await station.push([shown])
    simulator.tick()
    [settled] = await station.status([mac], [first.ticket])
    assert settled.acknowledged_digest == shown.content.digest()
    before = simulator.shown(mac)

    # The service's retry paths push the same content again (e.g. "not acknowledged in time").
    [again] = await station.push([shown])
    simulator.tick()

    [status] = await station.status([mac], [again.ticket])
    assert (status.pending, status.acknowledged_digest) == (False, shown.content.digest())
    assert simulator.skipped == 1  # the AP dropped the identical image: nothing queued, nothing delivered
    assert simulator.pending(mac) == 0
    assert simulator.shown(mac) == before
    assert again.state is PushState.ACKNOWLEDGED


@pytest.mark.parametrize("y_drawn", [True, False], ids=["Y-queued", "Y-not-drawn-yet"])
async def test_a_revert_before_the_check_in_is_confirmed_only_by_what_the_tag_shows(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str], y_drawn: bool
) -> None:
    mac = macs[0]
    x, y = content(1000), content(900)
    [shown_x] = await station.push([LabelPush(mac, x)])
    simulator.tick()
    x_picture = simulator.shown(mac)
    assert x_picture is not None
    [x_status] = await station.status([mac], [shown_x.ticket])
    assert x_status.acknowledged_digest == x.digest()

    [to_y] = await station.push([LabelPush(mac, y)])
    if y_drawn:
        simulator.advance(6 * MINUTE)  # the tag's check-in is now near: Y is drawn and queued
    assert simulator.pending(mac) == (1 if y_drawn else 0)
    [y_status] = await station.status([mac], [to_y.ticket])
    assert y_status.acknowledged_digest is None

    [back_to_x] = await station.push([LabelPush(mac, x)])  # reverted before the tag checked in

    # Whatever the adapter answers, it must agree with the shelf after every check-in.
    for _ in range(3):
        simulator.tick()
        [x_status] = await station.status([mac], [back_to_x.ticket])
        now_shown = simulator.shown(mac)
        assert now_shown is not None
        if x_status.acknowledged_digest == x.digest():
            assert now_shown.hash == x_picture.hash  # confirmed X: the tag shows X
        else:
            [back_to_x] = await station.push([LabelPush(mac, x)])  # the service pushes again
    final_picture = simulator.shown(mac)
    assert final_picture is not None
    assert final_picture.hash == x_picture.hash
    [final] = await station.status([mac], [back_to_x.ticket])
    assert final.acknowledged_digest == x.digest()
    assert shows(simulator, mac, x)


async def test_queued_images_are_delivered_in_turn(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    mac = macs[0]  # its check-in is 2 minutes away: the AP draws uploads at once
    first, second = content(500), content(450)
    [first_result] = await station.push([LabelPush(mac, first)])
    [second_result] = await station.push([LabelPush(mac, second)])
    assert simulator.pending(mac) == 2  # the newer image does not replace the older one

    assert simulator.checkin(mac) == 1
    assert shows(simulator, mac, first)
    [first_status, second_status] = await station.status([mac, mac], [first_result.ticket, second_result.ticket])
    assert first_status.acknowledged_digest is None  # shown, but about to be replaced
    assert (second_status.pending, second_status.acknowledged_digest) == (True, None)

    assert simulator.advance(MINUTE) == 1  # with more queued, the tag is back within a minute
    [settled] = await station.status([mac], [second_result.ticket])
    assert settled.acknowledged_digest == second.digest()
    assert shows(simulator, mac, second)


async def test_acknowledgement_survives_a_restart_of_the_pricing_service(
    simulator: OpenEPaperLinkSimulator, clock: ManualClock, macs: list[str]
) -> None:
    push = LabelPush(macs[0], content())
    async with running(simulator) as base_url:
        first = open_station("openepaperlink", base_url, clock=clock)
        [result] = await first.push([push])
        await first.close()
        simulator.tick()

        restarted = open_station("openepaperlink", base_url, clock=clock)
        try:
            [status] = await restarted.status([macs[0]], [result.ticket])
            [without_ticket] = await restarted.status([macs[0]])
        finally:
            await restarted.close()

    assert status.acknowledged_digest == push.content.digest()
    assert without_ticket.acknowledged_digest is None  # nothing to compare with: unknown, not guessed


async def test_a_tag_checking_in_every_ten_minutes_is_never_reported_offline(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    simulator.late = 20.0  # real tags wake a little after the moment the AP expects them
    for _ in range(18 * 4):  # three hours in steps of 2.5 minutes: every phase of the wake-up cycle
        simulator.advance(2.5 * MINUTE)
        statuses = await station.status(macs)
        assert all(s.online for s in statuses)
    assert simulator.requests["get_db"] == 18 * 4 * len(macs)


async def test_a_tag_that_misses_its_check_ins_is_offline_and_catches_up_when_back(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, clock: ManualClock, macs: list[str]
) -> None:
    mac = macs[1]
    simulator.set_online(mac, False)
    simulator.advance(25 * MINUTE)  # two check-ins missed and the firmware's 10-minute grace passed
    push = LabelPush(mac, content(799))

    [result] = await station.push([push])
    simulator.tick()

    assert result.state is PushState.ACCEPTED
    [offline] = await station.status([mac], [result.ticket])
    assert (offline.online, offline.pending, offline.acknowledged_digest) == (False, True, None)
    assert simulator.shown(mac) is None

    simulator.set_online(mac, True)  # it checks in at once

    [back] = await station.status([mac], [result.ticket])
    assert (back.online, back.pending, back.acknowledged_digest) == (True, False, push.content.digest())


async def test_each_tag_is_drawn_at_the_size_the_ap_reports_for_its_type(
    simulator: OpenEPaperLinkSimulator, clock: ManualClock
) -> None:
    small, large = generate_macs(2, prefix=uuid.uuid4().int & 0xFFFF)
    simulator.add_labels([small], hw_type=0x00)
    simulator.add_labels([large], hw_type=0x02)
    label = content(1590, regular=1990, promotion="限时特价", name="东方树叶 乌龙茶 500毫升")
    async with running(simulator) as base_url:
        station = open_station("openepaperlink", base_url, clock=clock)
        try:
            results = await station.push([LabelPush(small, label), LabelPush(large, label)])
            simulator.tick()
            statuses = await station.status([small, large], [r.ticket for r in results])
        finally:
            await station.close()

    assert [s.acknowledged_digest for s in statuses] == [label.digest(), label.digest()]
    for mac, size in ((small, (152, 152)), (large, (400, 300))):
        shown = simulator.shown(mac)
        assert shown is not None
        assert shown.picture.size == size


async def test_unknown_tag_fails_alone_and_reports_its_status_as_unknown(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    stranger, malformed = "FFFFFFFFFFFFFFFF", "not-a-mac"

    results = await station.push(
        [LabelPush(stranger, content()), LabelPush(macs[0], content()), LabelPush(malformed, content())]
    )

    assert [r.state for r in results] == [PushState.FAILED, PushState.ACCEPTED, PushState.FAILED]
    assert "unknown" in results[0].error
    assert "MAC" in results[2].error
    statuses = await station.status([stranger, macs[0], malformed])
    assert statuses[0].error
    assert not statuses[0].online
    assert statuses[0].acknowledged_digest is None
    assert statuses[1].error == ""
    assert statuses[1].online
    assert statuses[2].error
    assert simulator.requests["imgupload"] == 1


def test_ticket_carries_the_digest_and_the_expected_hash() -> None:
    label = content()
    digest, hash_ = label.digest(), expected_hash(label, tag_type())

    ticket = parse_ticket(f"oepl2:{digest}:{hash_}")
    assert ticket is not None
    assert (ticket.digest, ticket.hash) == (digest, hash_)
    assert len(hash_) == 32
    assert hash_.endswith("0" * 16)  # 8 bytes of md5, printed as 16, as the AP does
    assert parse_ticket(digest) is None
    assert parse_ticket("T00000001") is None
    assert parse_ticket(f"oepl1:{digest}:7") is None


async def test_a_tag_of_a_type_the_ap_does_not_describe_fails_alone(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    [odd] = generate_macs(1, prefix=uuid.uuid4().int & 0xFFFF)
    simulator.add_labels([odd], hw_type=0x7E)  # no /tagtypes/7E.json on this AP

    results = await station.push([LabelPush(odd, content()), LabelPush(macs[0], content())])

    assert [r.state for r in results] == [PushState.FAILED, PushState.ACCEPTED]
    assert "tag type 7E" in results[0].error
    assert simulator.requests["imgupload"] == 1
