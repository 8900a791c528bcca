"""Shelf labels driven by an OpenEPaperLink access point (ESP32 AP, firmware ``ESP32_AP-Flasher``).

The AP's HTTP interface, as implemented in ``ESP32_AP-Flasher/src/web.cpp`` and ``tag_db.cpp``:

``POST /jsonupload`` (form fields ``mac``, ``json``, optional ``ttl``)
    Stores the JSON template as ``/current/<MAC>.json``, switches the tag to content mode 19
    ("json template") and schedules a render; the rendered image is queued until the tag
    checks in. Answers ``200 "Ok, saved"``, ``400 "mac not found in tagDB"``, or ``409 "come
    back later"`` while the AP is not running yet.
``GET /get_db?mac=<MAC>``
    ``{"tags": [{"mac", "hash", "lastseen", "pending", "batteryMv", "RSSI", "updatecount",
    "updatelast", ...}]}``, ``{"tags": []}`` for an unknown tag, ``{"error": ...}`` for a
    malformed MAC. ``lastseen``/``updatelast`` are unix seconds on the AP clock, ``pending``
    counts queued data for the tag, ``updatecount`` increments each time the tag confirms a
    download, and ``hash`` is the md5 of the last image the tag took.

A label id is the tag MAC, 16 hex digits (the AP prints them upper case).

Acknowledgement. The AP cannot tell us *which* content a tag shows: ``hash`` is the md5 of a
bitmap the AP rendered, not of anything we can compute. What it does tell us reliably is
"the tag confirmed a download": ``updatecount`` went up and nothing is ``pending``. So a push
first reads the tag's ``updatecount``, uploads, and returns the ticket
``oepl1:<digest>:<updatecount before the upload>``. ``status(ids, tickets)`` reports
``acknowledged_digest = <digest>`` once ``pending == 0`` and ``updatecount`` is above the
recorded value. The ticket carries everything, so acknowledgement survives a restart of the
pricing service; it does not depend on the AP's clock either. A bare digest is accepted as a
ticket too, but can then only be confirmed against this process's own memory of its uploads.

The one window this cannot see: an *older* queued image delivered between our upload and the
AP rendering ours would also bump ``updatecount``. The AP renders within a second of the
upload, and the next check-in delivers ours anyway; a sync loop that re-checks until the
digest matches closes it.

Offline. A tag whose ``lastseen`` is older than ``offline_after`` (default 10 minutes) is
reported offline. The AP still queues uploads for it (``pending``) and delivers them on its
next check-in, so a push to an offline tag is ``ACCEPTED``, not ``FAILED``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from services.pricing.adapters.esl.base import (
    LabelContent,
    LabelPush,
    LabelStatus,
    PushResult,
    PushState,
    StationUnavailable,
    decode_json,
    format_fen,
    gather_bounded,
    http_client,
    normalize_tickets,
    send,
)

__all__ = ["DEFAULT_FONTS", "OpenEPaperLinkStation", "parse_ticket", "render_template"]

_MAC = re.compile(r"^[0-9A-F]{16}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_TICKET_PREFIX: Final = "oepl1"

# Fonts shipped on the AP's filesystem. Chinese article names need a CJK font uploaded to
# the AP (a .vlw or TrueType file); pass its path through the ``fonts`` option.
DEFAULT_FONTS: Final[Mapping[str, str]] = {
    "name": "fonts/bahnschrift20",
    "price": "fonts/calibrib50",
    "small": "t0_14b_tf",
}
_BLACK, _RED = 1, 2  # the AP's colour indices: 0 white, 1 black, 2 red/accent
_ALIGN_RIGHT = 2


def render_template(content: LabelContent, fonts: Mapping[str, str] = DEFAULT_FONTS) -> list[dict[str, object]]:
    """The OpenEPaperLink JSON template drawing ``content`` on a 296x128 tag.

    The first element, ``{"esl": {...}}``, is not a drawing command: the AP's ``drawElement``
    skips objects it does not recognise, so it travels harmlessly with the template and makes
    ``/current/<MAC>.json`` on the AP self-describing (which article, which digest). The
    simulator reads it to report what a tag shows.
    """
    price_color = _RED if content.regular_price_fen is not None or content.promotion_text else _BLACK
    elements: list[dict[str, object]] = [
        {
            "esl": {
                "digest": content.digest(),
                "sku": content.sku,
                "price_fen": content.price_fen,
                "template": content.template,
            }
        },
        {"text": [4, 4, content.name, fonts["name"], _BLACK]},
    ]
    if content.promotion_text:
        elements.append({"text": [4, 32, content.promotion_text, fonts["small"], _RED]})
    if content.regular_price_fen is not None:
        regular = format_fen(content.regular_price_fen)
        elements.append({"text": [4, 54, regular, fonts["small"], _BLACK]})
        # The strike-through: a line across the regular price, ~8 px per glyph of a 14 px font.
        elements.append({"line": [2, 61, 6 + 8 * len(regular), 61, _BLACK]})
    elements.append({"text": [292, 30, format_fen(content.price_fen), fonts["price"], price_color, _ALIGN_RIGHT]})
    elements.append({"text": [292, 92, f"{content.currency}/{content.unit}", fonts["small"], _BLACK, _ALIGN_RIGHT]})
    elements.append({"line": [0, 106, 296, 106, _BLACK]})
    elements.append({"text": [4, 110, f"{content.barcode}  SKU {content.sku}", fonts["small"], _BLACK]})
    return elements


@dataclass(frozen=True)
class Ticket:
    """What ``status`` needs to recognise the acknowledgement of one upload."""

    digest: str
    updatecount_before: int | None  # None: a bare digest, confirm from this process's memory


def make_ticket(digest: str, updatecount_before: int) -> str:
    """``oepl1:<digest>:<updatecount before the upload>``."""
    return f"{_TICKET_PREFIX}:{digest}:{updatecount_before}"


def parse_ticket(ticket: str) -> Ticket | None:
    """Read a ticket made by :func:`make_ticket`, or a bare content digest; ``None`` if neither."""
    if _DIGEST.match(ticket):
        return Ticket(ticket, None)
    parts = ticket.split(":")
    if len(parts) == 3 and parts[0] == _TICKET_PREFIX and _DIGEST.match(parts[1]) and parts[2].isdigit():
        return Ticket(parts[1], int(parts[2]))
    return None


@dataclass(frozen=True)
class _TagRecord:
    """The fields of one ``get_db`` entry the adapter relies on."""

    mac: str
    pending: int
    lastseen: int
    updatecount: int
    battery_mv: int | None


def _int_field(tag: Mapping[str, object], name: str) -> int | None:
    value = tag.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class OpenEPaperLinkStation:
    """:class:`~services.pricing.adapters.esl.base.LabelStation` for one OpenEPaperLink AP.

    The AP takes one tag per request and is an ESP32, so requests run with a small bounded
    concurrency (``concurrency``, default 4) on a pool of the same size.
    """

    kind = "openepaperlink"
    max_batch = 200  # per call, to keep one push call bounded at ~50 sequential AP round trips

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        offline_after: timedelta | float = timedelta(minutes=10),
        concurrency: int = 4,
        fonts: Mapping[str, str] | None = None,
        ttl_minutes: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._timeout = timeout
        self._offline_after = (
            offline_after.total_seconds() if isinstance(offline_after, timedelta) else float(offline_after)
        )
        self._fonts = {**DEFAULT_FONTS, **(fonts or {})}
        self._ttl = ttl_minutes
        self._clock = clock
        self._limit = asyncio.Semaphore(concurrency)
        self._client = http_client(base_url, timeout=timeout, max_connections=concurrency)
        self._name = f"OpenEPaperLink AP {base_url}"
        # mac -> (digest, updatecount before upload) of this process's own last upload, only
        # used for bare-digest tickets; tickets from push() carry this themselves.
        self._uploads: dict[str, tuple[str, int]] = {}

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    # --- push ---------------------------------------------------------------------------

    async def push(self, pushes: Sequence[LabelPush]) -> list[PushResult]:
        """Upload one JSON template per tag; ``ACCEPTED`` with an ``oepl1:`` ticket each.

        If the AP stops answering part-way, the tags already uploaded stay ``ACCEPTED``, the
        rest come back ``FAILED`` ("station unavailable: ..."), and no further requests are
        sent; only when no tag got through is :class:`StationUnavailable` raised.
        """
        outcomes = await gather_bounded(self._limit, [self._push_one(p) for p in pushes])
        results: list[PushResult] = []
        unavailable: StationUnavailable | None = None
        for push, outcome in zip(pushes, outcomes, strict=True):
            if isinstance(outcome, StationUnavailable):
                unavailable = outcome
                results.append(PushResult(push.label_id, PushState.FAILED, error=f"station unavailable: {outcome}"))
            else:
                results.append(outcome)
        if unavailable is not None and not any(r.state is PushState.ACCEPTED for r in results):
            raise unavailable
        return results

    async def _push_one(self, push: LabelPush) -> PushResult:
        mac = push.label_id.strip().upper()
        if not _MAC.match(mac):
            return PushResult(push.label_id, PushState.FAILED, error="label id is not a 16-digit hex MAC")
        tag = await self._get_tag(mac)
        if tag is None:
            return PushResult(push.label_id, PushState.FAILED, error="tag unknown to the access point")
        digest = push.content.digest()
        template = json.dumps(render_template(push.content, self._fonts), ensure_ascii=False, separators=(",", ":"))
        form = {"mac": mac, "json": template}
        if self._ttl:
            form["ttl"] = str(self._ttl)
        response = await send(
            self._client,
            self._client.build_request("POST", "/jsonupload", data=form),
            deadline=self._timeout,
            station=self._name,
        )
        if response.status_code == 409:  # the AP is still starting: nothing will get through
            raise StationUnavailable(f"{self._name}: {response.text.strip() or 'come back later'}")
        if response.status_code != 200:
            reason = response.text.strip()[:200] or f"HTTP {response.status_code}"
            return PushResult(push.label_id, PushState.FAILED, error=reason)
        self._uploads[mac] = (digest, tag.updatecount)
        return PushResult(push.label_id, PushState.ACCEPTED, ticket=make_ticket(digest, tag.updatecount))

    # --- status -------------------------------------------------------------------------

    async def status(self, label_ids: Sequence[str], tickets: Sequence[str] = ()) -> list[LabelStatus]:
        """Read each tag from the AP's tag database and judge its acknowledgement.

        ``tickets`` are the ``push`` tickets (or bare expected digests), one per label; see the
        module docstring for the rule. Any station-level failure raises
        :class:`StationUnavailable` (status has no side effects, so the caller just retries).
        """
        ticket_list = normalize_tickets(label_ids, tickets)
        calls = [self._status_one(label_id, ticket) for label_id, ticket in zip(label_ids, ticket_list, strict=True)]
        outcomes = await gather_bounded(self._limit, calls)
        statuses: list[LabelStatus] = []
        for outcome in outcomes:
            if isinstance(outcome, StationUnavailable):
                raise outcome
            statuses.append(outcome)
        return statuses

    async def _status_one(self, label_id: str, ticket: str) -> LabelStatus:
        mac = label_id.strip().upper()
        if not _MAC.match(mac):
            return LabelStatus(label_id, None, False, False, None, None, error="label id is not a 16-digit hex MAC")
        tag = await self._get_tag(mac)
        if tag is None:
            return LabelStatus(label_id, None, False, False, None, None, error="tag unknown to the access point")
        last_seen = datetime.fromtimestamp(tag.lastseen, UTC) if tag.lastseen > 0 else None
        online = tag.lastseen > 0 and self._clock() - tag.lastseen <= self._offline_after
        expected = parse_ticket(ticket) if ticket else None
        error = "" if expected is not None or not ticket else "unrecognised ticket"
        if expected is None and not ticket and mac in self._uploads:
            expected = Ticket(*self._uploads[mac])
        acknowledged: str | None = None
        waiting = False
        if expected is not None:
            before = expected.updatecount_before
            if before is None:
                remembered = self._uploads.get(mac)
                before = remembered[1] if remembered and remembered[0] == expected.digest else None
            if before is not None and tag.pending == 0 and tag.updatecount > before:
                acknowledged = expected.digest
            else:
                # Uploaded but not confirmed yet: the AP may not even have rendered it.
                waiting = before is not None
        return LabelStatus(
            label_id,
            acknowledged_digest=acknowledged,
            pending=tag.pending > 0 or waiting,
            online=online,
            battery_mv=tag.battery_mv,
            last_seen=last_seen,
            error=error,
        )

    # --- AP access ----------------------------------------------------------------------

    async def _get_tag(self, mac: str) -> _TagRecord | None:
        """The AP's record of one tag, ``None`` if the AP does not know it."""
        response = await send(
            self._client,
            self._client.build_request("GET", "/get_db", params={"mac": mac}),
            deadline=self._timeout,
            station=self._name,
        )
        if response.status_code != 200:
            raise StationUnavailable(f"{self._name}: get_db answered HTTP {response.status_code}")
        body = decode_json(response, station=self._name)
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, list):
            raise StationUnavailable(f"{self._name}: get_db answer has no tag list")
        for entry in tags:
            if isinstance(entry, dict) and str(entry.get("mac", "")).upper() == mac:
                pending, lastseen, updatecount = (_int_field(entry, k) for k in ("pending", "lastseen", "updatecount"))
                if pending is None or lastseen is None or updatecount is None:
                    raise StationUnavailable(f"{self._name}: get_db entry for {mac} lacks pending/lastseen/updatecount")
                battery = _int_field(entry, "batteryMv")
                return _TagRecord(mac, pending, lastseen, updatecount, battery if battery else None)
        return None
