"""The contract between the pricing service and the electronic-shelf-label stations of a store.

A *station* is whatever a store's labels hang off: an OpenEPaperLink access point, or a
vendor ESL server (SES-imagotag VUSION, Hanshow, SoluM) reached through a batch API. The
service layer only sees :class:`LabelStation`; each adapter turns it into its wire protocol.

Two rules make the adapters safe to call from a sync loop that covers thousands of labels:

* one bad label never raises: it comes back as a ``FAILED`` result or a status with ``error``;
* a station that cannot be reached, times out, answers 5xx or answers garbage raises
  :class:`StationUnavailable` for the call, and nothing else escapes (no ``httpx`` errors,
  no ``JSONDecodeError``, no ``KeyError`` from an unexpected shape).

Acknowledgement is tracked by content digest: the service knows which digest a label should
show, and a station reports which digest a label confirmed showing, so "is the shelf right?"
is one string comparison that survives restarts on both sides.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar, runtime_checkable

import httpx

__all__ = [
    "LabelContent",
    "LabelPush",
    "LabelStation",
    "LabelStatus",
    "PushResult",
    "PushState",
    "StationUnavailable",
    "format_fen",
    "open_station",
]

_DIGEST_VERSION = "esl-content-v1"

T = TypeVar("T")


def format_fen(fen: int) -> str:
    """Render an amount in fen as yuan with two decimals (``1290`` → ``"12.90"``).

    Integer arithmetic only, so a price never shows a float rounding artefact on the shelf.
    """
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}"


@dataclass(frozen=True)
class LabelContent:
    """What one shelf label shows: the article, the price to pay now and any promotion."""

    sku: str
    name: str
    unit: str
    barcode: str
    currency: str
    price_fen: int
    regular_price_fen: int | None
    promotion_text: str
    template: str

    def digest(self) -> str:
        """A stable sha256 hex of the content, the identity of "what the label should show".

        Canonical JSON (sorted keys, no whitespace, UTF-8) with a version tag, so the digest
        is the same in every process and on every machine, and a future change of the field
        set changes every digest instead of silently colliding with old ones.
        """
        canonical = json.dumps(
            {
                "v": _DIGEST_VERSION,
                "sku": self.sku,
                "name": self.name,
                "unit": self.unit,
                "barcode": self.barcode,
                "currency": self.currency,
                "price_fen": self.price_fen,
                "regular_price_fen": self.regular_price_fen,
                "promotion_text": self.promotion_text,
                "template": self.template,
            },
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LabelPush:
    """One label and the content it should show next, with that content's digest when the caller
    has it already (the label registry keeps it beside the content; empty: computed here)."""

    label_id: str
    content: LabelContent
    known_digest: str = ""

    def digest(self) -> str:
        return self.known_digest or self.content.digest()


class PushState(StrEnum):
    """How far a push got when ``push`` returned."""

    ACCEPTED = "accepted"  # the station took it; the label confirms later
    ACKNOWLEDGED = "acknowledged"  # the label already shows it
    FAILED = "failed"  # the station refused it; ``error`` says why


@dataclass(frozen=True)
class PushResult:
    """The outcome of one push; ``ticket`` is what to hand back to ``status`` later."""

    label_id: str
    state: PushState
    ticket: str = ""
    error: str = ""


@dataclass(frozen=True)
class LabelStatus:
    """What a station knows about one label right now.

    ``acknowledged_digest`` is the digest of the content the label confirmed showing, or
    ``None`` when the station cannot tell; ``pending`` means an update is still queued.
    """

    label_id: str
    acknowledged_digest: str | None
    pending: bool
    online: bool
    battery_mv: int | None
    last_seen: datetime | None
    error: str = ""


class StationUnavailable(Exception):
    """The whole station could not be used for this call (unreachable, timeout, 5xx, garbage)."""


@runtime_checkable
class LabelStation(Protocol):
    """A store's label station as the pricing service sees it."""

    kind: str
    max_batch: int

    async def push(self, pushes: Sequence[LabelPush]) -> list[PushResult]:
        """Send new content to labels: one result per push, in the same order."""
        ...

    async def status(self, label_ids: Sequence[str], tickets: Sequence[str] = ()) -> list[LabelStatus]:
        """Report each label's state; ``tickets`` are the push tickets, one per label or none."""
        ...

    async def close(self) -> None:
        """Release the connection pool."""
        ...


def open_station(kind: str, base_url: str, *, timeout: float = 5.0, **options: Any) -> LabelStation:
    """Build the adapter for a station of ``kind`` ("openepaperlink" or "batch") at ``base_url``.

    ``options`` go to the adapter's constructor (e.g. ``api_key`` for "batch",
    ``offline_after`` for "openepaperlink"); an unknown kind or option is a configuration
    error and raises ``ValueError``/``TypeError`` at start-up, not at the first push.
    """
    # Imported here because both adapters import this module.
    if kind == "openepaperlink":
        from services.pricing.adapters.esl.openepaperlink import OpenEPaperLinkStation

        return OpenEPaperLinkStation(base_url, timeout=timeout, **options)
    if kind == "batch":
        from services.pricing.adapters.esl.batch import BatchStation

        return BatchStation(base_url, timeout=timeout, **options)
    raise ValueError(f"unknown label station kind {kind!r}; expected 'openepaperlink' or 'batch'")


# --- helpers shared by the HTTP adapters -------------------------------------------------


def normalize_tickets(label_ids: Sequence[str], tickets: Sequence[str]) -> list[str]:
    """One ticket per label: none given means all empty; a length mismatch is a caller bug."""
    if not tickets:
        return [""] * len(label_ids)
    if len(tickets) != len(label_ids):
        raise ValueError(f"status() got {len(tickets)} tickets for {len(label_ids)} labels")
    return list(tickets)


def http_client(
    base_url: str, *, timeout: float, max_connections: int, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    """An ``httpx`` client with explicit timeouts and a bounded pool, ignoring proxy variables.

    Stations live on the store LAN; a corporate ``HTTP_PROXY`` in the environment must not
    route shelf-label traffic through the head office.
    """
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers=headers,
        trust_env=False,
    )


async def send(client: httpx.AsyncClient, request: httpx.Request, *, deadline: float, station: str) -> httpx.Response:
    """Send one request with an overall deadline, turning every transport failure into
    :class:`StationUnavailable`.

    ``httpx`` timeouts are per phase (connect, each read), so a station that drips one byte
    a second would never trip them; ``asyncio.timeout`` bounds the whole exchange. 5xx and
    the "come back later" 409/503 family also mean the station as a whole is not usable.
    """
    try:
        async with asyncio.timeout(deadline):
            response = await client.send(request)
    except TimeoutError as exc:
        raise StationUnavailable(f"{station}: no answer within {deadline:g}s") from exc
    except httpx.HTTPError as exc:
        raise StationUnavailable(f"{station}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 500:
        raise StationUnavailable(f"{station}: HTTP {response.status_code}")
    return response


def decode_json(response: httpx.Response, *, station: str) -> object:
    """The JSON body of a response, or :class:`StationUnavailable` when it is not JSON."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        snippet = response.text[:80].replace("\n", " ")
        raise StationUnavailable(f"{station}: answer is not JSON: {snippet!r}") from exc


async def gather_bounded(
    limit: asyncio.Semaphore, calls: Sequence[Coroutine[object, object, T]]
) -> list[T | StationUnavailable]:
    """Run station calls at most ``limit`` at a time, results in call order.

    After the first :class:`StationUnavailable` the calls not yet started are not sent (each
    comes back as that failure), so a dead station costs one timeout, not one per label.
    """
    broken: list[StationUnavailable] = []

    async def guarded(call: Coroutine[object, object, T]) -> T | StationUnavailable:
        async with limit:
            if broken:
                call.close()
                return broken[0]
            try:
                return await call
            except StationUnavailable as exc:
                broken.append(exc)
                return exc

    return list(await asyncio.gather(*(guarded(c) for c in calls)))
