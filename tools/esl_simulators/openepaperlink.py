"""A simulated OpenEPaperLink access point: ``/jsonupload`` and ``/get_db`` with in-memory tags.

It follows the firmware (``ESP32_AP-Flasher/src/web.cpp``, ``tag_db.cpp``, ``newproto.cpp``):
an upload to a known tag queues content (``pending``) and answers ``200 "Ok, saved"``; an
unknown MAC gets ``400 "mac not found in tagDB"``. When an online tag checks in (``tick``),
it takes the queued content: ``pending`` drops to 0, ``updatecount`` goes up, ``updatelast``
and ``lastseen`` become now and ``hash`` becomes the md5 of what it took. Offline tags keep
their content queued and their ``lastseen`` frozen.

The content digest and price a tag shows come from the template's ``{"esl": {...}}``
metadata element (see ``services.pricing.adapters.esl.openepaperlink.render_template``);
a template without it still displays, with the sha256 of the template as its digest.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tools.esl_simulators import Displayed, StationSimulator, gated

__all__ = ["OpenEPaperLinkSimulator", "SimulatedTag", "generate_macs"]

_MAC = re.compile(r"^[0-9A-Fa-f]{16}$")
_PAGE_SIZE = 50  # tags per get_db page when no mac is given, like the AP's ~5 kB pages


def generate_macs(count: int, *, prefix: int = 0) -> list[str]:
    """``count`` distinct 16-digit MACs, e.g. for a simulated store with that many tags."""
    return [f"{(prefix << 32) + i:016X}" for i in range(count)]


@dataclass
class SimulatedTag:
    """One tag as the AP's tag database holds it."""

    mac: str
    online: bool
    lastseen: float
    battery_mv: int = 2900
    rssi: int = -62
    pending_template: str | None = None
    displayed: Displayed | None = None
    updatecount: int = 0
    updatelast: int = 0
    md5: str = "0" * 32
    online_since: float = 0.0


def _what_template_shows(template: str) -> Displayed:
    """Digest and price from the template's metadata element, else a digest of the template."""
    digest = hashlib.sha256(template.encode("utf-8")).hexdigest()
    price = 0
    try:
        elements = json.loads(template)
    except ValueError:
        return Displayed(digest, price)
    for element in elements if isinstance(elements, list) else []:
        meta = element.get("esl") if isinstance(element, dict) else None
        if isinstance(meta, dict):
            if isinstance(meta.get("digest"), str):
                digest = meta["digest"]
            if isinstance(meta.get("price_fen"), int):
                price = meta["price_fen"]
    return Displayed(digest, price)


class OpenEPaperLinkSimulator(StationSimulator):
    """An OpenEPaperLink AP with ``labels`` tags (16-hex-digit MACs), all online at first."""

    def __init__(
        self,
        labels: Iterable[str] = (),
        *,
        latency: float = 0.0,
        checkin_interval: float | None = None,
        render_on_upload: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(latency=latency, checkin_interval=checkin_interval, clock=clock)
        # The real AP answers the upload first and renders (queues) the image a moment later;
        # False keeps uploads unrendered, with pending still 0, until render() is called.
        self.render_on_upload = render_on_upload
        self._unrendered: dict[str, str] = {}
        self._tags: dict[str, SimulatedTag] = {}
        self._pending: set[str] = set()
        self._last_checkin = 0.0
        self.add_labels(labels)

    # --- controls -----------------------------------------------------------------------

    def add_labels(self, macs: Iterable[str]) -> None:
        """Register tags with the AP (as if they had joined); unknown MACs are refused by it."""
        now = self._clock()
        with self._lock:
            for mac in macs:
                if not _MAC.match(mac):
                    raise ValueError(f"{mac!r} is not a 16-digit hex MAC")
                self._tags.setdefault(mac.upper(), SimulatedTag(mac.upper(), online=True, lastseen=now))

    def set_online(self, mac: str, online: bool, *, last_seen_ago: float | None = None) -> None:
        """Take a tag off the air or bring it back; an offline tag's ``lastseen`` freezes.

        ``last_seen_ago`` backdates its last check-in, to make it look offline to a client
        without waiting for the client's offline threshold to pass.
        """
        with self._lock:
            tag = self._tags[mac.upper()]
            tag.lastseen = self._lastseen(tag)
            if online and not tag.online:
                tag.online_since = self._clock()
            tag.online = online
            if last_seen_ago is not None:
                tag.lastseen = self._clock() - last_seen_ago

    def set_battery(self, mac: str, battery_mv: int) -> None:
        """Set the battery voltage the tag reports."""
        with self._lock:
            self._tags[mac.upper()].battery_mv = battery_mv

    def render(self) -> int:
        """Queue every uploaded but not yet rendered template; returns how many."""
        with self._lock:
            for mac, template in self._unrendered.items():
                self._tags[mac].pending_template = template
                self._pending.add(mac)
            count = len(self._unrendered)
            self._unrendered.clear()
        return count

    def tick(self) -> int:
        """One check-in of every online tag: queued content is delivered."""
        now = self._clock()
        delivered = 0
        with self._lock:
            self._last_checkin = now
            for mac in list(self._pending):
                tag = self._tags[mac]
                if not tag.online or tag.pending_template is None:
                    continue
                tag.displayed = _what_template_shows(tag.pending_template)
                tag.md5 = hashlib.md5(tag.pending_template.encode("utf-8"), usedforsecurity=False).hexdigest()
                tag.pending_template = None
                tag.updatecount += 1
                tag.updatelast = int(now)
                tag.lastseen = now
                self._pending.discard(mac)
                delivered += 1
        return delivered

    def displayed(self, mac: str) -> Displayed | None:
        """What the tag shows now, ``None`` before its first update."""
        with self._lock:
            return self._tags[mac.upper()].displayed

    def pending(self, mac: str) -> bool:
        """Whether content is queued for the tag."""
        with self._lock:
            return self._tags[mac.upper()].pending_template is not None

    # --- the AP's HTTP interface --------------------------------------------------------

    def build_app(self) -> Starlette:
        """``POST /jsonupload`` and ``GET /get_db``, as the AP firmware serves them."""
        return Starlette(
            routes=[
                Route("/jsonupload", gated(self, "jsonupload", self._json_upload), methods=["POST"]),
                Route("/get_db", gated(self, "get_db", self._get_db), methods=["GET"]),
            ],
            lifespan=self._lifespan(),
        )

    async def _json_upload(self, request: Request) -> Response:
        # The AP takes form fields; this accepts the urlencoded form httpx and curl send.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        mac = (form.get("mac") or [""])[0].upper()
        templates = form.get("json")
        if not _MAC.match(mac) or not templates:
            return PlainTextResponse("Missing parameters", status_code=400)
        with self._lock:
            tag = self._tags.get(mac)
            if tag is None:
                return PlainTextResponse("mac not found in tagDB", status_code=400)
            if self.render_on_upload:
                tag.pending_template = templates[0]
                self._pending.add(mac)
            else:
                self._unrendered[mac] = templates[0]
        return PlainTextResponse("Ok, saved")

    async def _get_db(self, request: Request) -> Response:
        mac = request.query_params.get("mac")
        with self._lock:
            if mac is not None:
                if not _MAC.match(mac):
                    return JSONResponse({"error": "malformatted parameter"})
                tag = self._tags.get(mac.upper())
                return JSONResponse({"tags": [self._node(tag)] if tag else []})
            start = int(request.query_params.get("pos", "0") or 0)
            tags = list(self._tags.values())[start : start + _PAGE_SIZE]
            body: dict[str, object] = {"tags": [self._node(t) for t in tags]}
            if start + _PAGE_SIZE < len(self._tags):
                body["continu"] = start + _PAGE_SIZE
            return JSONResponse(body)

    def _lastseen(self, tag: SimulatedTag) -> float:
        # Online tags check in with every tick; storing that per tag would touch all of them.
        if tag.online and self._last_checkin >= tag.online_since:
            return max(tag.lastseen, self._last_checkin)
        return tag.lastseen

    def _node(self, tag: SimulatedTag) -> dict[str, object]:
        """The fields of the firmware's ``fillNode`` that a client can use."""
        return {
            "mac": tag.mac,
            "hash": tag.md5,
            "lastseen": int(self._lastseen(tag)),
            "nextupdate": 0,
            "nextcheckin": 0,
            "pending": 1 if tag.pending_template is not None else 0,
            "alias": "",
            "contentMode": 19 if tag.updatecount or tag.pending_template else 0,
            "LQI": 100,
            "RSSI": tag.rssi,
            "temperature": 21,
            "batteryMv": tag.battery_mv,
            "hwType": 1,
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
