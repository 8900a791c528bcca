"""Shelf labels behind a vendor ESL server with a batch API (VUSION, Hanshow, SoluM style).

Commercial ESL servers share one shape, which this adapter speaks in a vendor-neutral form
(a thin proxy maps it onto a particular vendor when needed):

``POST /api/v1/label-updates`` ``{"updates": [{"label_id", "article": {...}, "template", "digest"}]}``
    At most 1,000 updates per request; answered ``202 {"transaction_id": "..."}``. Delivery
    to the labels happens later, over the radio.
``GET /api/v1/transactions/{id}``
    ``{"status": "pending"|"done", "results": [{"label_id", "status": "pending"|"succeeded"|"failed", "error"}]}``
``GET /api/v1/labels?ids=a,b,c``
    ``{"labels": [{"label_id", "online", "battery_mv", "last_seen", "displayed_digest"}]}``

``push`` returns ``ACCEPTED`` with the transaction id as ticket. ``status`` reads the
transactions named by the tickets (pending / failed and why) and the label state.

Acknowledgement is by what the label reports showing, never by what the server says about a
transaction: the acknowledged digest is the label's own ``displayed_digest``, whichever
transaction put it there, and only once our update for that label is no longer queued. A
"succeeded" transaction whose label reports other content acknowledges nothing; a label
that already shows the content, while our update (or an older one) still waits to be
delivered, is not acknowledged yet either (a price reverted before the label checked in would
otherwise be confirmed while the older update is still on its way to the shelf).
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

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

__all__ = ["BatchStation", "update_payload"]

# Query strings stay well below the 8 KiB request-line limit common to servers and proxies.
_MAX_QUERY_CHARS = 6000
_DONE_TRANSACTIONS_KEPT = 256  # of up to 1,000 results each


def update_payload(push: LabelPush) -> dict[str, object]:
    """One entry of ``updates``: the article as the ESL server's templates expect it."""
    return {
        "label_id": push.label_id,
        "article": _article(push.content),
        "template": push.content.template,
        "digest": push.digest(),
    }


@functools.lru_cache(maxsize=16_384)
def _article(content: LabelContent) -> dict[str, object]:
    """Built once per content (after a chain-wide change every store's label of a SKU shows the same);
    only ever serialized, never changed."""
    return {
        "sku": content.sku,
        "name": content.name,
        "price": content.price_fen,
        "regular_price": content.regular_price_fen,
        "promotion": content.promotion_text,
        "unit": content.unit,
        "barcode": content.barcode,
        "currency": content.currency,
    }


@dataclass(frozen=True)
class _Result:
    status: str
    error: str


@dataclass(frozen=True)
class _LabelState:
    online: bool
    battery_mv: int | None
    last_seen: datetime | None
    displayed_digest: str | None


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return _parse_moment(value)


@functools.lru_cache(maxsize=1024)
def _parse_moment(value: str) -> datetime | None:
    """Cached: a store's labels check in together, so an answer about a thousand labels names a few
    moments, and a sent label is asked about every acknowledgement round until it confirms."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class BatchStation:
    """:class:`~services.pricing.adapters.esl.base.LabelStation` for a batch ESL server."""

    kind = "batch"

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        api_key: str = "",
        api_key_header: str = "X-API-Key",
        max_batch: int = 1000,
        concurrency: int = 4,
    ) -> None:
        if not 1 <= max_batch <= 1000:
            raise ValueError("max_batch must be between 1 and 1000 (the servers' request limit)")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.max_batch = max_batch
        self._timeout = timeout
        self._limit = asyncio.Semaphore(concurrency)
        headers = {api_key_header: api_key} if api_key else None
        self._client = http_client(base_url, timeout=timeout, max_connections=concurrency, headers=headers)
        self._name = f"ESL server {base_url}"
        # Results of transactions the server reported done: final, so not asked for again (a round of
        # acknowledgements asks about a store's sent labels a page at a time, and each page names
        # the transactions of its labels; 1,000 labels a transaction, the same ones page after page).
        self._done: OrderedDict[str, dict[str, _Result]] = OrderedDict()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    # --- push ---------------------------------------------------------------------------

    async def push(self, pushes: Sequence[LabelPush]) -> list[PushResult]:
        """Send updates in requests of at most ``max_batch``; one transaction per request.

        If the server stops answering part-way, the requests it took stay ``ACCEPTED``, the
        rest come back ``FAILED`` ("station unavailable: ..."); only when nothing got through
        is :class:`StationUnavailable` raised.
        """
        results: list[PushResult | None] = [None] * len(pushes)
        sendable: list[int] = []
        for index, push in enumerate(pushes):
            if push.label_id.strip():
                sendable.append(index)
            else:
                results[index] = PushResult(push.label_id, PushState.FAILED, error="empty label id")
        chunks = [sendable[i : i + self.max_batch] for i in range(0, len(sendable), self.max_batch)]
        outcomes = await gather_bounded(self._limit, [self._push_chunk([pushes[i] for i in chunk]) for chunk in chunks])
        unavailable: StationUnavailable | None = None
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            for offset, index in enumerate(chunk):
                label_id = pushes[index].label_id
                if isinstance(outcome, StationUnavailable):
                    unavailable = outcome
                    results[index] = PushResult(label_id, PushState.FAILED, error=f"station unavailable: {outcome}")
                else:
                    results[index] = outcome[offset]
        final = [r for r in results if r is not None]
        if unavailable is not None and not any(r.state is PushState.ACCEPTED for r in final):
            raise unavailable
        return final

    async def _push_chunk(self, chunk: Sequence[LabelPush]) -> list[PushResult]:
        body = {"updates": [update_payload(p) for p in chunk]}
        response = await send(
            self._client,
            self._client.build_request("POST", "/api/v1/label-updates", json=body),
            deadline=self._timeout,
            station=self._name,
        )
        self._refuse_credentials(response.status_code)
        if response.status_code >= 400:
            reason = f"rejected with HTTP {response.status_code}: {response.text.strip()[:200]}"
            return [PushResult(p.label_id, PushState.FAILED, error=reason) for p in chunk]
        answer = decode_json(response, station=self._name)
        transaction_id = answer.get("transaction_id") if isinstance(answer, dict) else None
        if not isinstance(transaction_id, str | int) or isinstance(transaction_id, bool) or not str(transaction_id):
            raise StationUnavailable(f"{self._name}: label-updates answer has no transaction_id")
        return [PushResult(p.label_id, PushState.ACCEPTED, ticket=str(transaction_id)) for p in chunk]

    # --- status -------------------------------------------------------------------------

    async def status(self, label_ids: Sequence[str], tickets: Sequence[str] = ()) -> list[LabelStatus]:
        """Each label's state, with the outcome of the transaction named by its ticket.

        ``pending`` and ``error`` come from the transaction (``failed`` → its error); the
        acknowledged digest, online flag, battery and last check-in come from the label.
        Any station-level failure raises :class:`StationUnavailable`.
        """
        ticket_list = normalize_tickets(label_ids, tickets)
        transaction_ids = sorted({t for t in ticket_list if t})
        lookups = await gather_bounded(self._limit, [self._transaction(t) for t in transaction_ids])
        transactions: dict[str, dict[str, _Result] | None] = {}
        for transaction_id, lookup in zip(transaction_ids, lookups, strict=True):
            if isinstance(lookup, StationUnavailable):
                raise lookup
            transactions[transaction_id] = lookup
        states = await self._label_states(list(dict.fromkeys(i for i in label_ids if i)))

        statuses: list[LabelStatus] = []
        for label_id, ticket in zip(label_ids, ticket_list, strict=True):
            state = states.get(label_id)
            pending = False
            error = "" if state is not None else "unknown label"
            if ticket:
                results = transactions[ticket]
                result = results.get(label_id) if results is not None else None
                if results is None:
                    error = f"unknown transaction {ticket}"
                elif result is None:
                    error = f"label not in transaction {ticket}"
                elif result.status == "pending":
                    pending = True
                elif result.status == "failed":
                    error = result.error or "failed"
                elif result.status != "succeeded":
                    error = f"unexpected result status {result.status!r}"
            shown = state.displayed_digest if state is not None and not pending else None
            statuses.append(
                LabelStatus(
                    label_id,
                    acknowledged_digest=shown,
                    pending=pending,
                    online=state.online if state else False,
                    battery_mv=state.battery_mv if state else None,
                    last_seen=state.last_seen if state else None,
                    error=error,
                )
            )
        return statuses

    async def _transaction(self, transaction_id: str) -> dict[str, _Result] | None:
        """Per-label results of a transaction, ``None`` if the server does not know it."""
        done = self._done.get(transaction_id)
        if done is not None:
            self._done.move_to_end(transaction_id)
            return done
        response = await send(
            self._client,
            self._client.build_request("GET", f"/api/v1/transactions/{quote(transaction_id, safe='')}"),
            deadline=self._timeout,
            station=self._name,
        )
        self._refuse_credentials(response.status_code)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise StationUnavailable(f"{self._name}: transaction lookup answered HTTP {response.status_code}")
        body = decode_json(response, station=self._name)
        entries = body.get("results") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise StationUnavailable(f"{self._name}: transaction answer has no results list")
        results: dict[str, _Result] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("label_id"), str):
                raise StationUnavailable(f"{self._name}: transaction result without label_id")
            error = entry.get("error")
            results[entry["label_id"]] = _Result(str(entry.get("status", "")), error if isinstance(error, str) else "")
        if isinstance(body, dict) and body.get("status") == "done":
            self._done[transaction_id] = results
            if len(self._done) > _DONE_TRANSACTIONS_KEPT:
                self._done.popitem(last=False)
        return results

    async def _label_states(self, label_ids: Sequence[str]) -> dict[str, _LabelState]:
        """Label state for all ``label_ids``, in as many queries as the URL length allows."""
        queries: list[list[str]] = []
        length = _MAX_QUERY_CHARS
        for label_id in label_ids:
            encoded = len(quote(label_id, safe="")) + 1
            if length + encoded > _MAX_QUERY_CHARS:
                queries.append([])
                length = 0
            queries[-1].append(label_id)
            length += encoded
        states: dict[str, _LabelState] = {}
        for outcome in await gather_bounded(self._limit, [self._label_query(q) for q in queries]):
            if isinstance(outcome, StationUnavailable):
                raise outcome
            states.update(outcome)
        return states

    async def _label_query(self, label_ids: Sequence[str]) -> dict[str, _LabelState]:
        response = await send(
            self._client,
            self._client.build_request("GET", "/api/v1/labels", params={"ids": ",".join(label_ids)}),
            deadline=self._timeout,
            station=self._name,
        )
        self._refuse_credentials(response.status_code)
        if response.status_code != 200:
            raise StationUnavailable(f"{self._name}: label query answered HTTP {response.status_code}")
        body = decode_json(response, station=self._name)
        entries = body.get("labels") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise StationUnavailable(f"{self._name}: label answer has no labels list")
        states: dict[str, _LabelState] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("label_id"), str):
                raise StationUnavailable(f"{self._name}: label entry without label_id")
            battery = entry.get("battery_mv")
            digest = entry.get("displayed_digest")
            states[entry["label_id"]] = _LabelState(
                online=entry.get("online") is True,
                battery_mv=battery if isinstance(battery, int) and not isinstance(battery, bool) else None,
                last_seen=_parse_time(entry.get("last_seen")),
                displayed_digest=digest if isinstance(digest, str) and digest else None,
            )
        return states

    # --- plumbing -----------------------------------------------------------------------

    def _refuse_credentials(self, status_code: int) -> None:
        """401/403 concern every label alike: the station is unusable until the key is fixed."""
        if status_code in (401, 403):
            raise StationUnavailable(f"{self._name}: API key rejected (HTTP {status_code})")
