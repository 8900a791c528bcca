"""Shelf labels driven by an OpenEPaperLink access point (ESP32 AP, firmware ``ESP32_AP-Flasher``).

The AP's HTTP interface used here (``ESP32_AP-Flasher/src/web.cpp``, ``tag_db.cpp``,
``newproto.cpp``, ``contentmanager.cpp``):

``GET /get_db?mac=<MAC>``
    ``{"tags": [{"mac", "hash", "lastseen", "nextcheckin", "pending", "batteryMv", "hwType",
    "updatecount", ...}]}``, ``{"tags": []}`` for an unknown tag. ``hash`` is the md5 of the
    image the tag last took (first 8 bytes as hex, then zeros); ``nextcheckin`` is when the AP
    expects the tag back (unix seconds, AP clock); ``pending`` counts queued images.
``GET /tagtypes/<hwType as 2 hex digits>.json``
    The tag type's ``width``, ``height``, ``colortable`` and ``rotatebuffer``.
``POST /imgupload`` (multipart: ``mac``, ``dither``, ``file``)
    A picture for the tag. The AP draws it when the tag's next check-in is under 5 minutes
    away and queues the result (a FIFO: older queued images stay and are delivered first)
    unless its md5 equals what the tag already shows, in which case it is dropped.
``POST /tag_cmd`` (``mac``, ``cmd=clear``)
    Empties the tag's queue.

A label id is the tag MAC, 16 hex digits (the AP prints them upper case).

What the label shows. The service draws every label itself (:mod:`.render`: the tag's size
and palette, Noto Sans CJK for Chinese names) and uploads the picture; it can therefore
compute the ``hash`` the AP will report once the tag shows that picture. A push returns the
ticket ``oepl2:<content digest>:<expected hash>``, and ``status`` acknowledges the digest
exactly when the tag reports that hash with nothing queued behind it. No counter is involved,
so two contents cannot be confused, and a re-push of content the tag already shows (which the
AP silently drops) is acknowledged by what the tag shows.

Pushing content the tag already shows, with something else queued (a price reverted before
the tag checked in), still uploads it (so no older upload waiting to be drawn can follow),
then clears the tag's queue and reads the tag again: it is acknowledged only if the tag still
shows it and nothing is queued. Otherwise it is ``ACCEPTED`` and waits like any push.

Latency. Nothing reaches a tag before its next check-in: tags sleep up to their ``maxsleep``
(10 minutes by default), so a change shows within one check-in interval (plus a few seconds),
not within a second.

Offline. A tag is offline once it is ``offline_grace`` (default 10 minutes, the firmware's own
timeout) past the ``nextcheckin`` the AP expected, so a tag that checks in every 10 minutes is
never reported offline between check-ins. An AP that reports no ``nextcheckin`` falls back to
``lastseen`` plus ``offline_after``. Uploads for an offline tag still wait in the AP and a
push to one is ``ACCEPTED``.
"""

from __future__ import annotations

import asyncio
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
    gather_bounded,
    http_client,
    normalize_tickets,
    send,
)
from services.pricing.adapters.esl.render import TagType, prepare_upload

__all__ = ["OpenEPaperLinkStation", "expected_hash", "parse_ticket", "tag_type_of"]

_MAC = re.compile(r"^[0-9A-F]{16}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_HASH = re.compile(r"^[0-9a-f]{32}$")
_TICKET_PREFIX: Final = "oepl2"


def tag_type_of(hw_type: int, description: Mapping[str, object]) -> TagType | None:
    """A :class:`TagType` from the AP's ``/tagtypes/XX.json``, ``None`` if it lacks what we need."""
    width, height = description.get("width"), description.get("height")
    table = description.get("colortable")
    if not isinstance(width, int) or not isinstance(height, int) or not 0 < width <= 2000 or not 0 < height <= 2000:
        return None
    accent: tuple[int, int, int] | None = None
    if isinstance(table, dict):
        for name, colour in table.items():
            if name in ("white", "black"):
                continue
            if isinstance(colour, list) and len(colour) == 3 and all(isinstance(c, int) for c in colour):
                accent = (colour[0], colour[1], colour[2])
                break
    return TagType(hw_type, width, height, accent, description.get("rotatebuffer") in (1, True))


def expected_hash(content: LabelContent, tag: TagType) -> str:
    """The ``hash`` the AP reports for a tag of type ``tag`` showing ``content``."""
    return prepare_upload(content, tag)[1]


@dataclass(frozen=True)
class Ticket:
    """What ``status`` needs to recognise the acknowledgement of one push."""

    digest: str
    hash: str


def make_ticket(digest: str, hash_: str) -> str:
    """``oepl2:<content digest>:<expected hash>``."""
    return f"{_TICKET_PREFIX}:{digest}:{hash_}"


def parse_ticket(ticket: str) -> Ticket | None:
    """Read a ticket made by :func:`make_ticket`; ``None`` if it is not one."""
    parts = ticket.split(":")
    if len(parts) == 3 and parts[0] == _TICKET_PREFIX and _DIGEST.match(parts[1]) and _HASH.match(parts[2]):
        return Ticket(parts[1], parts[2])
    return None


@dataclass(frozen=True)
class _TagRecord:
    """The fields of one ``get_db`` entry the adapter relies on."""

    mac: str
    hash: str
    pending: int
    lastseen: int
    nextcheckin: int | None
    hw_type: int
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
        offline_grace: timedelta | float = timedelta(minutes=10),
        offline_after: timedelta | float = timedelta(minutes=30),
        concurrency: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._timeout = timeout
        self._grace = offline_grace.total_seconds() if isinstance(offline_grace, timedelta) else float(offline_grace)
        self._offline_after = (
            offline_after.total_seconds() if isinstance(offline_after, timedelta) else float(offline_after)
        )
        self._clock = clock
        self._limit = asyncio.Semaphore(concurrency)
        self._client = http_client(base_url, timeout=timeout, max_connections=concurrency)
        self._name = f"OpenEPaperLink AP {base_url}"
        self._tag_types: dict[int, TagType] = {}

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    # --- push ---------------------------------------------------------------------------

    async def push(self, pushes: Sequence[LabelPush]) -> list[PushResult]:
        """Draw and upload one picture per tag; ``ACCEPTED`` with an ``oepl2:`` ticket, or
        ``ACKNOWLEDGED`` when the tag already shows it with nothing else queued.

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
        if unavailable is not None and not any(r.state is not PushState.FAILED for r in results):
            raise unavailable
        return results

    async def _push_one(self, push: LabelPush) -> PushResult:
        mac = push.label_id.strip().upper()
        if not _MAC.match(mac):
            return PushResult(push.label_id, PushState.FAILED, error="label id is not a 16-digit hex MAC")
        tag = await self._get_tag(mac)
        if tag is None:
            return PushResult(push.label_id, PushState.FAILED, error="tag unknown to the access point")
        tag_type = await self._tag_type(tag.hw_type)
        if tag_type is None:
            return PushResult(push.label_id, PushState.FAILED, error=f"tag type {tag.hw_type:02X} unknown to the AP")
        jpeg, expected = await asyncio.to_thread(prepare_upload, push.content, tag_type)
        ticket = make_ticket(push.digest(), expected)
        response = await send(
            self._client,
            self._client.build_request(
                "POST",
                "/imgupload",
                data={"mac": mac, "dither": "0"},
                files={"file": (f"{mac}.jpg", jpeg, "image/jpeg")},
            ),
            deadline=self._timeout,
            station=self._name,
        )
        if response.status_code == 409:  # the AP is still starting: nothing will get through
            raise StationUnavailable(f"{self._name}: {response.text.strip() or 'come back later'}")
        if response.status_code != 200:
            reason = response.text.strip()[:200] or f"HTTP {response.status_code}"
            return PushResult(push.label_id, PushState.FAILED, error=reason)
        if tag.hash == expected:
            # The AP drops this upload as identical; whatever is queued would replace it.
            if tag.pending:
                await self._clear_queue(mac)
            now = await self._get_tag(mac)
            if now is not None and now.hash == expected and now.pending == 0:
                return PushResult(push.label_id, PushState.ACKNOWLEDGED, ticket=ticket)
        return PushResult(push.label_id, PushState.ACCEPTED, ticket=ticket)

    async def _clear_queue(self, mac: str) -> None:
        response = await send(
            self._client,
            self._client.build_request("POST", "/tag_cmd", data={"mac": mac, "cmd": "clear"}),
            deadline=self._timeout,
            station=self._name,
        )
        if response.status_code != 200:
            raise StationUnavailable(f"{self._name}: tag_cmd clear answered HTTP {response.status_code}")

    async def _tag_type(self, hw_type: int) -> TagType | None:
        """The AP's description of a tag type, read once per type (an unknown one is asked again:
        the AP downloads tag types it meets)."""
        if (known := self._tag_types.get(hw_type)) is not None:
            return known
        response = await send(
            self._client,
            self._client.build_request("GET", f"/tagtypes/{hw_type:02X}.json"),
            deadline=self._timeout,
            station=self._name,
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise StationUnavailable(f"{self._name}: tagtypes answered HTTP {response.status_code}")
        body = decode_json(response, station=self._name)
        tag_type = tag_type_of(hw_type, body) if isinstance(body, dict) else None
        if tag_type is not None:
            self._tag_types[hw_type] = tag_type
        return tag_type

    # --- status -------------------------------------------------------------------------

    async def status(self, label_ids: Sequence[str], tickets: Sequence[str] = ()) -> list[LabelStatus]:
        """Read each tag from the AP's tag database and judge its acknowledgement.

        A label's digest is acknowledged when the tag reports the ticket's hash and nothing is
        queued for it; until then it is ``pending``. Without a ticket nothing is acknowledged
        (the AP cannot say which content a hash belongs to). Any station-level failure raises
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

    def _online(self, tag: _TagRecord) -> bool:
        if tag.lastseen <= 0:
            return False
        now = self._clock()
        if tag.nextcheckin is not None and tag.nextcheckin >= tag.lastseen:
            return now <= tag.nextcheckin + self._grace
        return now - tag.lastseen <= self._offline_after

    async def _status_one(self, label_id: str, ticket: str) -> LabelStatus:
        mac = label_id.strip().upper()
        if not _MAC.match(mac):
            return LabelStatus(label_id, None, False, False, None, None, error="label id is not a 16-digit hex MAC")
        tag = await self._get_tag(mac)
        if tag is None:
            return LabelStatus(label_id, None, False, False, None, None, error="tag unknown to the access point")
        last_seen = datetime.fromtimestamp(tag.lastseen, UTC) if tag.lastseen > 0 else None
        expected = parse_ticket(ticket) if ticket else None
        error = "" if expected is not None or not ticket else "unrecognised ticket"
        acknowledged: str | None = None
        if expected is not None and tag.hash == expected.hash and tag.pending == 0:
            acknowledged = expected.digest
        return LabelStatus(
            label_id,
            acknowledged_digest=acknowledged,
            pending=tag.pending > 0 or (expected is not None and acknowledged is None),
            online=self._online(tag),
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
                pending, lastseen = _int_field(entry, "pending"), _int_field(entry, "lastseen")
                hash_ = entry.get("hash")
                if pending is None or lastseen is None or not isinstance(hash_, str):
                    raise StationUnavailable(f"{self._name}: get_db entry for {mac} lacks hash/pending/lastseen")
                battery = _int_field(entry, "batteryMv")
                nextcheckin = _int_field(entry, "nextcheckin")
                return _TagRecord(
                    mac,
                    hash_.lower(),
                    pending,
                    lastseen,
                    nextcheckin if nextcheckin else None,
                    _int_field(entry, "hwType") or 0,
                    battery if battery else None,
                )
        return None
