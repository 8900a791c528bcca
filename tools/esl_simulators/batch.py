"""A simulated vendor ESL server with the batch API of ``services.pricing.adapters.esl.batch``.

``POST /api/v1/label-updates`` takes up to 1,000 updates and opens a transaction; every
update for a known label waits (``pending``) until the label checks in (``tick``) while
online, then ``succeeded`` (the label shows it) or ``failed`` when a failure was injected for
that label with ``fail_label``. Updates for unknown labels fail at once, like real servers.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tools.esl_simulators import Displayed, StationSimulator, gated

__all__ = ["MAX_UPDATES_PER_REQUEST", "BatchSimulator", "generate_label_ids"]

MAX_UPDATES_PER_REQUEST = 1000


def generate_label_ids(count: int, *, prefix: str = "L") -> list[str]:
    """``count`` distinct label ids, e.g. for a simulated store with that many labels."""
    return [f"{prefix}{i:07d}" for i in range(count)]


@dataclass
class _Item:
    transaction_id: str
    label_id: str
    digest: str
    price_fen: int
    status: str = "pending"
    error: str = ""


@dataclass
class _Transaction:
    items: list[_Item]
    open_items: int


@dataclass
class SimulatedLabel:
    """One label as the ESL server knows it."""

    label_id: str
    online: bool = True
    battery_mv: int = 2950
    last_seen: float = 0.0
    displayed: Displayed | None = None
    online_since: float = 0.0
    queue: list[_Item] = field(default_factory=list)


class _BadRequest(Exception):
    pass


def _parse_updates(body: object) -> list[tuple[str, str, int]]:
    """(label_id, digest, price) per update, or :class:`_BadRequest` naming what is wrong."""
    updates = body.get("updates") if isinstance(body, dict) else None
    if not isinstance(updates, list) or not updates:
        raise _BadRequest("body must be {'updates': [...]} with at least one update")
    if len(updates) > MAX_UPDATES_PER_REQUEST:
        raise _BadRequest(f"at most {MAX_UPDATES_PER_REQUEST} updates per request")
    parsed: list[tuple[str, str, int]] = []
    for position, update in enumerate(updates):
        article = update.get("article") if isinstance(update, dict) else None
        if not isinstance(update, dict) or not isinstance(article, dict):
            raise _BadRequest(f"updates[{position}] needs label_id, article, template and digest")
        label_id, digest, price = update.get("label_id"), update.get("digest"), article.get("price")
        if not isinstance(label_id, str) or not isinstance(digest, str) or not isinstance(price, int):
            raise _BadRequest(f"updates[{position}] has a bad label_id, digest or article.price")
        parsed.append((label_id, digest, price))
    return parsed


class BatchSimulator(StationSimulator):
    """A batch ESL server with ``labels`` registered, all online at first.

    ``api_key``, when set, must arrive in the ``X-API-Key`` header (else 401).
    """

    def __init__(
        self,
        labels: Iterable[str] = (),
        *,
        api_key: str = "",
        latency: float = 0.0,
        checkin_interval: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(latency=latency, checkin_interval=checkin_interval, clock=clock)
        self.api_key = api_key
        self.updates_received = 0
        self._labels: dict[str, SimulatedLabel] = {}
        self._transactions: dict[str, _Transaction] = {}
        self._failures: dict[str, str] = {}
        self._ignoring: set[str] = set()
        self._pending: set[str] = set()
        self._last_checkin = 0.0
        self._ids = itertools.count(1)
        self.add_labels(labels)

    # --- controls -----------------------------------------------------------------------

    @property
    def label_ids(self) -> list[str]:
        """The registered labels, in the order they were added."""
        with self._lock:
            return list(self._labels)

    def add_labels(self, label_ids: Iterable[str]) -> None:
        """Register labels with the server."""
        now = self._clock()
        with self._lock:
            for label_id in label_ids:
                self._labels.setdefault(label_id, SimulatedLabel(label_id, last_seen=now))

    def set_online(self, label_id: str, online: bool, *, last_seen_ago: float | None = None) -> None:
        """Take a label off the air or bring it back; updates for it wait while it is off."""
        with self._lock:
            label = self._labels[label_id]
            label.last_seen = self._seen(label)
            if online and not label.online:
                label.online_since = self._clock()
            label.online = online
            if last_seen_ago is not None:
                label.last_seen = self._clock() - last_seen_ago

    def fail_label(self, label_id: str, error: str = "display did not confirm the update") -> None:
        """From now on, every update delivered to this label fails with ``error``."""
        with self._lock:
            self._failures[label_id] = error

    def ignore_updates(self, label_id: str, ignore: bool = True) -> None:
        """The label's updates are reported ``succeeded`` but its display does not change
        (a server that trusts the radio's send, not the label's confirmation)."""
        with self._lock:
            if ignore:
                self._ignoring.add(label_id)
            else:
                self._ignoring.discard(label_id)

    def heal_label(self, label_id: str) -> None:
        """Undo :meth:`fail_label`."""
        with self._lock:
            self._failures.pop(label_id, None)

    def set_battery(self, label_id: str, battery_mv: int) -> None:
        """Set the battery voltage the label reports."""
        with self._lock:
            self._labels[label_id].battery_mv = battery_mv

    def tick(self) -> int:
        """One check-in of every online label: its queued updates succeed or fail, in order."""
        now = self._clock()
        delivered = 0
        with self._lock:
            self._last_checkin = now
            for label_id in list(self._pending):
                label = self._labels[label_id]
                if not label.online:
                    continue
                failure = self._failures.get(label_id)
                for item in label.queue:
                    self._transactions[item.transaction_id].open_items -= 1
                    if failure is not None:
                        item.status, item.error = "failed", failure
                    else:
                        item.status = "succeeded"
                        if label_id not in self._ignoring:
                            label.displayed = Displayed(item.digest, item.price_fen)
                    delivered += 1
                label.queue.clear()
                label.last_seen = now
                self._pending.discard(label_id)
        return delivered

    def displayed(self, label_id: str) -> Displayed | None:
        """What the label shows now, ``None`` before its first update."""
        with self._lock:
            return self._labels[label_id].displayed

    def pending(self, label_id: str) -> bool:
        """Whether updates are queued for the label."""
        with self._lock:
            return bool(self._labels[label_id].queue)

    # --- the server's HTTP interface ----------------------------------------------------

    def build_app(self) -> Starlette:
        """The three routes of the batch API."""
        return Starlette(
            routes=[
                Route("/api/v1/label-updates", gated(self, "label-updates", self._label_updates), methods=["POST"]),
                Route(
                    "/api/v1/transactions/{transaction_id}",
                    gated(self, "transactions", self._transaction),
                    methods=["GET"],
                ),
                Route("/api/v1/labels", gated(self, "labels", self._label_state), methods=["GET"]),
            ],
            lifespan=self._lifespan(),
        )

    def _unauthorised(self, request: Request) -> Response | None:
        if self.api_key and request.headers.get("x-api-key") != self.api_key:
            return JSONResponse({"error": "invalid API key"}, status_code=401)
        return None

    async def _label_updates(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        try:
            updates = _parse_updates(json.loads(await request.body()))
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        except _BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        with self._lock:
            transaction_id = f"T{next(self._ids):08d}"
            items: list[_Item] = []
            for label_id, digest, price in updates:
                item = _Item(transaction_id, label_id, digest, price)
                label = self._labels.get(label_id)
                if label is None:
                    item.status, item.error = "failed", "unknown label"
                else:
                    label.queue.append(item)
                    self._pending.add(label_id)
                items.append(item)
            open_items = sum(1 for i in items if i.status == "pending")
            self._transactions[transaction_id] = _Transaction(items, open_items)
            self.updates_received += len(items)
        return JSONResponse({"transaction_id": transaction_id}, status_code=202)

    async def _transaction(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        with self._lock:
            transaction = self._transactions.get(request.path_params["transaction_id"])
            if transaction is None:
                return JSONResponse({"error": "unknown transaction"}, status_code=404)
            return JSONResponse(
                {
                    "status": "pending" if transaction.open_items else "done",
                    "results": [
                        {"label_id": i.label_id, "status": i.status, "error": i.error} for i in transaction.items
                    ],
                }
            )

    async def _label_state(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        with self._lock:
            labels = [self._labels[i] for i in ids if i in self._labels]
            return JSONResponse(
                {
                    "labels": [
                        {
                            "label_id": label.label_id,
                            "online": label.online,
                            "battery_mv": label.battery_mv,
                            "last_seen": datetime.fromtimestamp(self._seen(label), UTC).isoformat(),
                            "displayed_digest": label.displayed.digest if label.displayed else None,
                        }
                        for label in labels
                    ]
                }
            )

    def _seen(self, label: SimulatedLabel) -> float:
        # Online labels check in with every tick; storing that per label would touch all of them.
        if label.online and self._last_checkin >= label.online_since:
            return max(label.last_seen, self._last_checkin)
        return label.last_seen
