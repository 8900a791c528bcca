"""A simulated OpenEPaperLink access point that behaves as the firmware (``ESP32_AP-Flasher``) does.

Served: ``POST /imgupload`` (multipart: ``mac``, ``dither``, the JPEG ``file``), ``POST
/jsonupload`` (a JSON template; the AP draws it with its own fonts, which this simulator does
not have: it stands for that drawing by a blank picture whose md5 is the template's, so equal
templates draw equal images, and the rest — queue, skip, check-in — is the same), ``POST
/tag_cmd`` (``cmd=clear`` empties a tag's queue), ``GET /get_db`` and ``GET /tagtypes/XX.json``.

What it models, each as the firmware does it:

* **Check-in driven rendering.** An upload is only *configured* for the tag; the AP draws it
  (and queues the result) once the tag's next check-in is less than 5 minutes away, and the
  tag takes queued data when it checks in. Tags sleep ``checkin_interval`` seconds between
  check-ins (the firmware's ``maxsleep``, 10 minutes by default), spread over the interval.
* **Identical images are skipped.** A drawn image whose md5 (first 8 bytes) equals what the tag
  shows now is dropped: nothing is queued, ``pending`` and ``updatecount`` stay as they are.
* **A FIFO of pending images.** A new image does not replace a queued one; each check-in
  delivers the oldest, and the tag then comes back soon for the next one.
* **``hash``** is the md5 of the delivered bitmap: its first 8 bytes as 16 lower-case hex
  digits, then 16 zeros (the AP keeps 8 bytes, prints 16).
* **``get_db`` paging.** Without ``mac``, tags from ``pos`` are listed until the answer passes
  5,000 bytes; ``continu`` is then the index to ask for next. ``pos`` is read as a byte, as
  the firmware does, so a client cannot page past the 256th tag.

The drawn bitmap is the uncompressed one: the JPEG decoded, each pixel mapped to the nearest
colour of the tag type's palette (``dither=0``), a 1-bit black plane then an accent plane.

Time is the ``clock`` (a :class:`ManualClock` in tests): :meth:`advance` moves it and runs
every render and check-in that falls due, in order; :meth:`tick` makes every online tag check
in now. Nothing sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tools.esl_simulators import StationSimulator, gated

__all__ = ["TAG_TYPES", "ManualClock", "OpenEPaperLinkSimulator", "Shown", "SimulatedTag", "generate_macs"]

_MAC = re.compile(r"^[0-9A-Fa-f]{16}$")
PAGE_BYTES = 5000
RENDER_AHEAD_SECONDS = 300  # the AP draws content once the tag's next check-in is this close
DEFAULT_CHECKIN_SECONDS = 600.0  # the firmware's default maxsleep: 10 minutes
REQUEUE_SECONDS = 40.0  # after taking data with more queued, the tag is back this soon

# A few of the firmware's tag types (resources/tagtypes/XX.json): size, palette, buffer rotation.
TAG_TYPES: dict[int, dict[str, object]] = {
    0x00: {
        "name": 'M2 1.54"',
        "width": 152,
        "height": 152,
        "rotatebuffer": 0,
        "bpp": 2,
        "colortable": {"white": [255, 255, 255], "black": [0, 0, 0], "red": [255, 0, 0]},
    },
    0x01: {
        "name": 'M2 2.9"',
        "width": 296,
        "height": 128,
        "rotatebuffer": 1,
        "bpp": 2,
        "colortable": {"white": [255, 255, 255], "black": [0, 0, 0], "red": [255, 0, 0]},
    },
    0x02: {
        "name": 'M2 4.2"',
        "width": 400,
        "height": 300,
        "rotatebuffer": 0,
        "bpp": 2,
        "colortable": {"white": [255, 255, 255], "black": [0, 0, 0], "red": [255, 0, 0]},
    },
    0x33: {
        "name": 'BW 2.9"',
        "width": 296,
        "height": 128,
        "rotatebuffer": 1,
        "bpp": 1,
        "colortable": {"white": [255, 255, 255], "black": [0, 0, 0]},
    },
}


def generate_macs(count: int, *, prefix: int = 0) -> list[str]:
    """``count`` distinct 16-digit MACs, e.g. for a simulated store with that many tags."""
    return [f"{(prefix << 32) + i:016X}" for i in range(count)]


class ManualClock:
    """A clock that only moves when told to (unix seconds)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(time.time())) if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Shown:
    """What a tag shows: the hash the AP reports for it, and the picture as the AP drew it."""

    hash: str
    picture: Image.Image


@dataclass(frozen=True)
class _Drawn:
    md5_8: bytes
    picture: Image.Image


@dataclass
class SimulatedTag:
    """One tag as the AP's tag database holds it."""

    mac: str
    hw_type: int
    interval: float
    lastseen: float
    next_checkin: float
    online: bool = True
    battery_mv: int = 2900
    rssi: int = -62
    configured: bytes | None = None  # uploaded JPEG, not drawn yet
    configured_json: str | None = None  # or an uploaded JSON template
    queue: list[_Drawn] = field(default_factory=list)
    shown: _Drawn | None = None
    updatecount: int = 0
    updatelast: int = 0

    @property
    def hash(self) -> str:
        return (self.shown.md5_8.hex() if self.shown else "0" * 16) + "0" * 16


def _palette(hw_type: int) -> list[tuple[int, int, int]]:
    table = TAG_TYPES[hw_type]["colortable"]
    assert isinstance(table, dict)
    return [tuple(colour) for colour in table.values()]


def _draw(jpeg: bytes, hw_type: int) -> _Drawn:
    """What the AP makes of an uploaded JPEG: nearest palette colour per pixel, planes, md5."""
    kind = TAG_TYPES[hw_type]
    width, height = int(str(kind["width"])), int(str(kind["height"]))
    picture = Image.open(io.BytesIO(jpeg)).convert("RGB")
    if picture.size != (width, height):  # the AP draws the picture at 0,0 on a sprite of the tag's size
        canvas = Image.new("RGB", (width, height), (255, 255, 255))
        canvas.paste(picture, (0, 0))
        picture = canvas
    palette = _palette(hw_type)
    data = picture.tobytes()
    nearest: dict[bytes, tuple[int, int, int]] = {}
    mapped = bytearray()
    for i in range(0, len(data), 3):
        pixel = data[i : i + 3]
        colour = nearest.get(pixel)
        if colour is None:
            colour = min(palette, key=lambda p: sum((a - b) ** 2 for a, b in zip(p, pixel, strict=True)))
            nearest[pixel] = colour
        mapped += bytes(colour)
    drawn = Image.frombytes("RGB", picture.size, bytes(mapped))
    buffer = drawn.transpose(Image.Transpose.ROTATE_90) if kind["rotatebuffer"] else drawn
    flat = buffer.tobytes()
    planes = b""
    for colour in palette[1:]:  # every colour but white has a plane
        wanted = bytes(colour)
        mask = bytes(255 if flat[i : i + 3] == wanted else 0 for i in range(0, len(flat), 3))
        planes += Image.frombytes("L", buffer.size, mask).convert("1", dither=Image.Dither.NONE).tobytes()
    return _Drawn(hashlib.md5(planes, usedforsecurity=False).digest()[:8], drawn)


class OpenEPaperLinkSimulator(StationSimulator):
    """An OpenEPaperLink AP with ``labels`` tags (16-hex-digit MACs), all online at first.

    ``checkin_interval`` is how often tags check in (seconds of the ``clock``); the first
    check-ins are spread evenly over one interval, as tags that joined at different times.
    """

    def __init__(
        self,
        labels: Iterable[str] = (),
        *,
        latency: float = 0.0,
        checkin_interval: float = DEFAULT_CHECKIN_SECONDS,
        hw_type: int = 0x01,
        clock: Callable[[], float] | None = None,
        wall_clock: bool = False,
    ) -> None:
        # wall_clock: serve as a process on real time, running due check-ins every second.
        super().__init__(
            latency=latency,
            checkin_interval=1.0 if wall_clock else None,
            clock=time.time if wall_clock else clock or ManualClock(),
        )
        self.interval = checkin_interval
        self.late = 0.0  # tags wake this many seconds after the moment the AP expects them
        self.hw_type = hw_type
        self.uploads = 0
        self.skipped = 0  # drawn images dropped as identical to what the tag shows
        self._tags: dict[str, SimulatedTag] = {}
        self.add_labels(labels)

    # --- controls -----------------------------------------------------------------------

    def add_labels(self, macs: Iterable[str], *, hw_type: int | None = None, interval: float | None = None) -> None:
        """Register tags with the AP (as if they had joined); unknown MACs are refused by it."""
        macs = list(macs)
        now = self._clock()
        every = interval or self.interval
        with self._lock:
            for index, mac in enumerate(macs):
                if not _MAC.match(mac):
                    raise ValueError(f"{mac!r} is not a 16-digit hex MAC")
                offset = every * (index + 1) / (len(macs) + 1)
                self._tags.setdefault(
                    mac.upper(),
                    SimulatedTag(
                        mac.upper(),
                        hw_type if hw_type is not None else self.hw_type,
                        every,
                        lastseen=now - every + offset,
                        next_checkin=now + offset,
                    ),
                )

    def set_online(self, mac: str, online: bool, *, last_seen_ago: float | None = None) -> None:
        """Take a tag off the air (it misses its check-ins) or bring it back (it checks in now)."""
        with self._lock:
            tag = self._tags[mac.upper()]
            tag.online = online
            if last_seen_ago is not None:
                tag.lastseen = self._clock() - last_seen_ago
                tag.next_checkin = tag.lastseen + tag.interval
        if online:
            self.checkin(mac)

    def set_battery(self, mac: str, battery_mv: int) -> None:
        """Set the battery voltage the tag reports."""
        with self._lock:
            self._tags[mac.upper()].battery_mv = battery_mv

    def advance(self, seconds: float) -> int:
        """Move the clock ``seconds`` on, running renders and check-ins as they fall due.

        Returns how many images tags took. Needs the simulator's clock to be a :class:`ManualClock`.
        """
        clock = self._clock
        if not isinstance(clock, ManualClock):
            raise TypeError("advance() needs a ManualClock")
        end = clock.now + seconds
        delivered = 0
        while True:
            with self._lock:
                due = [t for t in self._tags.values() if t.online and t.next_checkin + self.late <= end]
                moment = min((t.next_checkin + self.late for t in due), default=end)
            clock.now = max(clock.now, moment)
            self._render_due()
            if not due:
                return delivered
            for tag in due:
                if tag.next_checkin + self.late <= moment:
                    delivered += self.checkin(tag.mac)

    def run_due(self) -> int:
        """Renders and check-ins due by the clock's present time (the loop of a wall-clock AP)."""
        now = self._clock()
        with self._lock:
            due = [t.mac for t in self._tags.values() if t.online and t.next_checkin + self.late <= now]
        self._render_due()
        return sum(self.checkin(mac) for mac in due)

    async def _checkin_loop(self) -> None:
        while self.checkin_interval:
            await asyncio.sleep(self.checkin_interval)
            self.run_due()

    def tick(self) -> int:
        """Every online tag checks in now (the AP draws what is configured first); images taken."""
        with self._lock:
            macs = [t.mac for t in self._tags.values() if t.online]
        return sum(self.checkin(mac) for mac in macs)

    def checkin(self, mac: str) -> int:
        """One check-in of one tag: it takes the oldest queued image, if any (1 or 0)."""
        now = self._clock()
        with self._lock:
            tag = self._tags[mac.upper()]
            if not tag.online:
                return 0
            self._render(tag)
            tag.lastseen = now
            taken = 0
            if tag.queue:
                tag.shown = tag.queue.pop(0)
                tag.updatecount += 1
                tag.updatelast = int(now)
                taken = 1
            tag.next_checkin = now + (REQUEUE_SECONDS if tag.queue else tag.interval)
            return taken

    def shown(self, mac: str) -> Shown | None:
        """What the tag shows now, ``None`` before its first image."""
        with self._lock:
            tag = self._tags[mac.upper()]
            return Shown(tag.hash, tag.shown.picture) if tag.shown else None

    def pending(self, mac: str) -> int:
        """How many images are queued for the tag."""
        with self._lock:
            return len(self._tags[mac.upper()].queue)

    def configured(self, mac: str) -> bool:
        """Whether an upload waits to be drawn for the tag."""
        with self._lock:
            tag = self._tags[mac.upper()]
            return tag.configured is not None or tag.configured_json is not None

    def _render_due(self) -> None:
        now = self._clock()
        with self._lock:
            for tag in self._tags.values():
                waiting = tag.configured is not None or tag.configured_json is not None
                if waiting and tag.next_checkin < now + RENDER_AHEAD_SECONDS:
                    self._render(tag)

    def _render(self, tag: SimulatedTag) -> None:
        if tag.configured is not None:
            drawn = _draw(tag.configured, tag.hw_type)
        elif tag.configured_json is not None:
            kind = TAG_TYPES[tag.hw_type]
            blank = Image.new("RGB", (int(str(kind["width"])), int(str(kind["height"]))), (255, 255, 255))
            drawn = _Drawn(hashlib.md5(tag.configured_json.encode(), usedforsecurity=False).digest()[:8], blank)
        else:
            return
        tag.configured, tag.configured_json = None, None
        current = tag.shown.md5_8 if tag.shown else bytes(8)
        if drawn.md5_8 == current:  # "new image is the same as current image. not updating tag."
            self.skipped += 1
            return
        tag.queue.append(drawn)

    # --- the AP's HTTP interface --------------------------------------------------------

    def build_app(self) -> Starlette:
        """The routes of the AP firmware this simulator serves."""
        return Starlette(
            routes=[
                Route("/imgupload", gated(self, "imgupload", self._img_upload), methods=["POST"]),
                Route("/jsonupload", gated(self, "jsonupload", self._json_upload), methods=["POST"]),
                Route("/tag_cmd", gated(self, "tag_cmd", self._tag_cmd), methods=["POST"]),
                Route("/get_db", gated(self, "get_db", self._get_db), methods=["GET"]),
                Route("/tagtypes/{name}", gated(self, "tagtypes", self._tag_type), methods=["GET"]),
            ],
            lifespan=self._lifespan(),
        )

    async def _img_upload(self, request: Request) -> Response:
        body = await request.body()
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode() + body
        )
        fields: dict[str, bytes] = {}
        for part in message.iter_parts() if message.is_multipart() else []:
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload
        mac = fields.get("mac", b"").decode("ascii", "replace").upper()
        if not mac:
            return PlainTextResponse("parameters incomplete", status_code=400)
        with self._lock:
            tag = self._tags.get(mac) if _MAC.match(mac) else None
            if tag is None:
                return PlainTextResponse("mac not found", status_code=400)
            tag.configured, tag.configured_json = fields.get("file", b""), None
            self.uploads += 1
        self._render_due()  # the content manager runs right away when the check-in is near
        return PlainTextResponse("Ok, saved")

    async def _json_upload(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        mac = (form.get("mac") or [""])[0].upper()
        if not _MAC.match(mac) or not form.get("json"):
            return PlainTextResponse("Missing parameters", status_code=400)
        with self._lock:
            tag = self._tags.get(mac)
            if tag is None:
                return PlainTextResponse("mac not found in tagDB", status_code=400)
            tag.configured, tag.configured_json = None, form["json"][0]
            self.uploads += 1
        self._render_due()
        return PlainTextResponse("Ok, saved")

    async def _tag_cmd(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        mac = (form.get("mac") or [""])[0].upper()
        cmd = (form.get("cmd") or [""])[0]
        if not _MAC.match(mac) or not cmd:
            return PlainTextResponse("Missing parameters", status_code=400)
        with self._lock:
            tag = self._tags.get(mac)
            if tag is not None and cmd == "clear":
                tag.queue.clear()
        return PlainTextResponse("Ok, done")

    async def _tag_type(self, request: Request) -> Response:
        name = request.path_params["name"]
        match = re.fullmatch(r"([0-9A-F]{2})\.json", name)
        kind = TAG_TYPES.get(int(match.group(1), 16)) if match else None
        if kind is None:
            return PlainTextResponse("Not found", status_code=404)
        return JSONResponse({"version": 5, **kind})

    async def _get_db(self, request: Request) -> Response:
        mac = request.query_params.get("mac")
        with self._lock:
            if mac is not None:
                if not _MAC.match(mac):
                    return JSONResponse({"error": "malformatted parameter"})
                tag = self._tags.get(mac.upper())
                return JSONResponse({"tags": [self._node(tag)] if tag else []})
            try:
                start = int(request.query_params.get("pos", "0") or 0) & 0xFF  # uint8_t startPos
            except ValueError:
                start = 0
            tags = list(self._tags.values())
            nodes: list[dict[str, object]] = []
            body: dict[str, object] = {"tags": nodes}
            size = len('{"tags":[]}')
            for index in range(start, len(tags)):
                node = self._node(tags[index])
                nodes.append(node)
                size += len(json.dumps(node, separators=(",", ":"))) + (1 if len(nodes) > 1 else 0)
                if size > PAGE_BYTES:
                    body["continu"] = index + 1
                    break
            return JSONResponse(body)

    def _node(self, tag: SimulatedTag) -> dict[str, object]:
        """The fields of the firmware's ``fillNode`` that a client can use."""
        return {
            "mac": tag.mac,
            "hash": tag.hash,
            "lastseen": int(tag.lastseen),
            "nextupdate": 0,
            "nextcheckin": int(tag.next_checkin),
            "pending": len(tag.queue),
            "alias": "",
            "contentMode": 19 if tag.configured_json else 24 if tag.updatecount or tag.queue or tag.configured else 0,
            "LQI": 100,
            "RSSI": tag.rssi,
            "temperature": 21,
            "batteryMv": tag.battery_mv,
            "hwType": tag.hw_type,
            "wakeupReason": 0,
            "capabilities": 0,
            "modecfgjson": "",
            "isexternal": False,
            "apip": "",
            "rotate": 0,
            "lut": 0,
            "invert": 0,
            "updatecount": tag.updatecount,
            "updatelast": tag.updatelast,
            "ch": 11,
            "ver": 0,
        }
