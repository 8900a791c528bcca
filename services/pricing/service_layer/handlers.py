"""One handler per mutating pricing command; each owns its unit of work.

A handler checks who asks, claims the request id, acts through the application services
(which work inside the handler's unit of work), keeps the first answer under the request
id and commits — one transaction, so the effect, its outbox events and the kept answer
commit together. A retry with the same id gets the kept answer and changes nothing; a
domain error rolls back the claim too, so a corrected retry with the same id may succeed.

Each handler is handed an :class:`Answer`: the request's fingerprint, how its result becomes the
caller's answer and the codec that keeps it (the servicer's mapping), so this layer never sees
the wire types and a retry gets the very bytes of the first answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.idempotency import (
    MAX_REQUEST_ID_LENGTH,
    ReplyCodec,
    RequestFingerprint,
    keep_reply,
    replay,
)
from services.pricing.adapters.label_store import LabelRow
from services.pricing.adapters.pricing_store import ChangeRow, StoredItem, StoreRow
from services.pricing.domain.commands import (
    Actor,
    DecideMarkdown,
    PutItem,
    PutLabel,
    PutStore,
    ScheduleChange,
    SetPrices,
)
from services.pricing.domain.markdown import StoredMarkdown
from services.pricing.domain.rules import PriceRule
from services.pricing.service_layer.labels import LabelSync
from services.pricing.service_layer.markdowns import Markdowns
from services.pricing.service_layer.pricing import Pricing

ResultT = TypeVar("ResultT")
ReplyT = TypeVar("ReplyT")


@dataclass(frozen=True)
class Answer(Generic[ResultT, ReplyT]):
    """How a command's caller is answered, once per request id (all three from the entrypoint)."""

    request: RequestFingerprint
    make: Callable[[ResultT], ReplyT]
    codec: ReplyCodec[ReplyT]


def require_headquarters(actor: Actor) -> None:
    """Stores, the catalogue and price rules are headquarters' to change."""
    if not actor.headquarters:
        raise PermissionDenied("only headquarters staff change stores, the catalogue and price rules")


def require_store_staff(actor: Actor, store_id: str) -> None:
    """A store's labels are its own staff's (or headquarters') to change."""
    if not actor.headquarters and actor.store_id != store_id:
        raise PermissionDenied(f"staff of another store may not change labels of store {store_id}")


def require_request_id(answer: Answer[Any, Any]) -> None:
    if not answer.request.request_id or len(answer.request.request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument("request_id is required (at most 200 characters)", reason="request-id-missing")


async def _answered(uow: UnitOfWork, answer: Answer[ResultT, ReplyT], result: ResultT) -> ReplyT:
    """Keep the answer under the request id and commit it with the effect."""
    reply = answer.make(result)
    await keep_reply(uow.session, answer.request, answer.codec, reply)
    await uow.commit()
    return reply


class PricingHandlers:
    """The handlers the gRPC servicer calls, one per mutating RPC; each returns the first answer."""

    def __init__(
        self, unit_of_work: Callable[[], UnitOfWork], pricing: Pricing, labels: LabelSync, markdowns: Markdowns
    ) -> None:
        self._uow = unit_of_work
        self._pricing = pricing
        self._labels = labels
        self._markdowns = markdowns

    async def put_store(self, command: PutStore, actor: Actor, answer: Answer[tuple[StoreRow, bool], ReplyT]) -> ReplyT:
        """Register or change a store (headquarters only)."""
        require_headquarters(actor)
        require_request_id(answer)
        store = StoreRow(
            store_id=command.store_id,
            name=command.name,
            price_groups=command.price_groups,
            currency=command.currency,
            label_station_kind=command.label_station_kind,
            label_station_url=command.label_station_url,
            book_version=0,
        )
        async with self._uow() as uow:
            if (first := await replay(uow.session, answer.request, answer.codec)) is not None:
                return first
            return await _answered(uow, answer, await self._pricing.put_store(uow, store))

    async def put_item(self, command: PutItem, actor: Actor, answer: Answer[tuple[StoredItem, bool], ReplyT]) -> ReplyT:
        """Create or change a catalogue item (headquarters only)."""
        require_headquarters(actor)
        require_request_id(answer)
        async with self._uow() as uow:
            if (first := await replay(uow.session, answer.request, answer.codec)) is not None:
                return first
            return await _answered(uow, answer, await self._pricing.put_item(uow, command.item))

    async def set_prices(self, command: SetPrices, actor: Actor, answer: Answer[list[PriceRule], ReplyT]) -> ReplyT:
        """Replace a SKU's rules (headquarters only)."""
        require_headquarters(actor)
        require_request_id(answer)
        async with self._uow() as uow:
            if (first := await replay(uow.session, answer.request, answer.codec)) is not None:
                return first
            return await _answered(uow, answer, await self._pricing.set_prices(uow, command, actor))

    async def schedule_change(self, command: ScheduleChange, actor: Actor, answer: Answer[ChangeRow, ReplyT]) -> ReplyT:
        """Schedule a regular price for a future moment (a store's staff: their own store only)."""
        require_request_id(answer)
        async with self._uow() as uow:
            if (first := await replay(uow.session, answer.request, answer.codec)) is not None:
                return first
            return await _answered(uow, answer, await self._pricing.schedule_change(uow, command, actor))

    async def put_label(self, command: PutLabel, actor: Actor, answer: Answer[tuple[LabelRow, bool], ReplyT]) -> ReplyT:
        """Link a shelf label to a SKU of its store (that store's staff or headquarters)."""
        require_store_staff(actor, command.store_id)
        require_request_id(answer)
        async with self._uow() as uow:
            if (first := await replay(uow.session, answer.request, answer.codec)) is not None:
                return first
            label = await self._labels.put_label(uow, command.store_id, command.label_id, command.sku, command.template)
            return await _answered(uow, answer, label)

    async def decide_markdown(
        self, command: DecideMarkdown, actor: Actor, answer: Answer[tuple[StoredMarkdown, ChangeRow | None], ReplyT]
    ) -> ReplyT:
        """Approve (schedule) or reject a markdown suggestion."""
        require_request_id(answer)
        async with self._uow() as uow:
            if (first := await replay(uow.session, answer.request, answer.codec)) is not None:
                return first
            decided = await self._markdowns.decide(
                uow, command.markdown_id, command.approve, command.effective_at, actor
            )
            return await _answered(uow, answer, decided)
