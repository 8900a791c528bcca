"""The simulated OpenEPaperLink AP does what the firmware does, over its own HTTP interface:
an identical image is dropped, queued images are delivered in turn, drawing waits for the
check-in, ``get_db`` pages at ~5,000 bytes with ``continu``, ``hash`` is 8 bytes of md5."""

from __future__ import annotations

import hashlib
import io
import uuid

import httpx
from PIL import Image, ImageDraw

from tools.esl_simulators import running
from tools.esl_simulators.openepaperlink import ManualClock, OpenEPaperLinkSimulator, generate_macs

MINUTE = 60.0
RED, BLACK, WHITE = (255, 0, 0), (0, 0, 0), (255, 255, 255)


def picture(text: str) -> bytes:
    image = Image.new("RGB", (296, 128), WHITE)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"
    draw.rectangle((10, 10, 60, 60), fill=RED)
    draw.text((80, 40), text, fill=BLACK)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=100, subsampling=0)
    return out.getvalue()


def planes_md5(jpeg: bytes) -> str:
    """What the firmware's bitmap would be: palette colours, rotated buffer, black then red plane."""
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    pixels = image.load()
    assert pixels is not None
    for x in range(image.width):
        for y in range(image.height):
            pixel = pixels[x, y]
            assert isinstance(pixel, tuple)
            pixels[x, y] = min(
                (WHITE, BLACK, RED), key=lambda c: sum((a - b) ** 2 for a, b in zip(c, pixel, strict=True))
            )
    rotated = image.transpose(Image.Transpose.ROTATE_90)
    planes = b""
    for colour in (BLACK, RED):
        mask = Image.new("1", rotated.size, 0)
        mask.putdata([1 if p == colour else 0 for p in rotated.get_flattened_data()])
        planes += mask.tobytes()
    return hashlib.md5(planes, usedforsecurity=False).digest()[:8].hex() + "0" * 16


async def upload(client: httpx.AsyncClient, mac: str, jpeg: bytes) -> httpx.Response:
    return await client.post("/imgupload", data={"mac": mac, "dither": "0"}, files={"file": ("a.jpg", jpeg)})


async def tag(client: httpx.AsyncClient, mac: str) -> dict[str, object]:
    [entry] = (await client.get("/get_db", params={"mac": mac})).json()["tags"]
    assert isinstance(entry, dict)
    return entry


async def test_an_image_identical_to_the_shown_one_is_dropped_and_a_fifo_delivers_the_rest() -> None:
    clock = ManualClock()
    [mac] = generate_macs(1, prefix=uuid.uuid4().int & 0xFFFF)
    simulator = OpenEPaperLinkSimulator([mac], clock=clock)  # first check-in in 5 minutes
    x, y = picture("X 10.00"), picture("Y 9.00")
    async with running(simulator) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await upload(client, mac, x)).text == "Ok, saved"
        simulator.advance(5 * MINUTE)
        shown = await tag(client, mac)
        assert (shown["hash"], shown["updatecount"], shown["pending"]) == (planes_md5(x), 1, 0)

        # The same picture again: dropped when drawn, nothing queued, the count does not move.
        await upload(client, mac, x)
        simulator.advance(10 * MINUTE)
        again = await tag(client, mac)
        assert (again["hash"], again["updatecount"], again["pending"]) == (planes_md5(x), 1, 0)
        assert simulator.skipped == 1

        # Y, Z, then X again while the check-in is near: Y and Z queued in order; X is dropped,
        # for it equals what the tag shows now (though Y and Z will replace it).
        y2 = picture("Z 8.00")
        simulator.advance(6 * MINUTE)
        for image in (y, y2, x):
            await upload(client, mac, image)
        queued = await tag(client, mac)
        assert (queued["pending"], queued["hash"]) == (2, planes_md5(x))
        assert simulator.skipped == 2
        simulator.advance(4 * MINUTE)  # the check-in: the older image goes first
        first = await tag(client, mac)
        assert (first["hash"], first["pending"], first["updatecount"]) == (planes_md5(y), 1, 2)
        simulator.advance(MINUTE)  # it comes back soon for the next one
        second = await tag(client, mac)
        assert (second["hash"], second["pending"], second["updatecount"]) == (planes_md5(y2), 0, 3)


async def test_drawing_waits_until_the_check_in_is_less_than_five_minutes_away() -> None:
    clock = ManualClock()
    [mac] = generate_macs(1, prefix=uuid.uuid4().int & 0xFFFF)
    simulator = OpenEPaperLinkSimulator([mac], clock=clock, checkin_interval=20 * MINUTE)  # due in 10 min
    async with running(simulator) as url, httpx.AsyncClient(base_url=url) as client:
        due = clock.now + 10 * MINUTE
        await upload(client, mac, picture("P"))
        entry = await tag(client, mac)
        assert entry["nextcheckin"] == int(due)
        assert entry["pending"] == 0
        simulator.advance(5 * MINUTE - 1)
        assert (await tag(client, mac))["pending"] == 0
        simulator.advance(2)
        assert (await tag(client, mac))["pending"] == 1
        simulator.advance(5 * MINUTE)
        checked_in = await tag(client, mac)
        assert (checked_in["pending"], checked_in["updatecount"], checked_in["lastseen"]) == (0, 1, int(due))
        assert checked_in["nextcheckin"] == int(due + 20 * MINUTE)


async def test_get_db_pages_at_five_thousand_bytes_with_a_continuation_index() -> None:
    macs = generate_macs(300, prefix=uuid.uuid4().int & 0xFFFF)
    simulator = OpenEPaperLinkSimulator(macs)
    async with running(simulator) as url, httpx.AsyncClient(base_url=url) as client:
        seen: list[str] = []
        position = 0
        pages = 0
        while True:
            response = await client.get("/get_db", params={"pos": position})
            page = response.json()
            pages += 1
            seen.extend(entry["mac"] for entry in page["tags"])
            if "continu" not in page:
                break
            assert 5000 < len(response.content) < 6000  # the entry that passed 5,000 bytes is still in
            position = page["continu"]
            assert position == len(seen)
            if position > 255:  # the firmware reads pos as a byte: this page starts over at pos % 256
                wrapped = (await client.get("/get_db", params={"pos": position})).json()
                assert wrapped["tags"][0]["mac"] == macs[position % 256]
                break
        assert seen == macs[: len(seen)]
        assert pages > 10
