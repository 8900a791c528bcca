"""Request-id store: a mutating RPC retried with the same ``request_id`` returns the first answer.

The id is claimed with an INSERT at the start of the handler's transaction and the
response is stored in that same transaction, so the effect and the stored answer commit
together. A concurrent duplicate blocks on the claimed key until the first transaction
ends: after a commit it reads the stored answer, after a rollback it claims the id itself.
The same id with a different request (another method or other fields) is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import UnitOfWork
from servicekit.errors import AlreadyExists, InvalidArgument

ResponseT = TypeVar("ResponseT", bound=Message)
UowT = TypeVar("UowT", bound=UnitOfWork)

MAX_REQUEST_ID_LENGTH = 200


class RequestIdReused(AlreadyExists):
    """The request_id was already used for a different request."""

    reason = "request-id-reused"


def request_digest(method: str, request: Message) -> bytes:
    """A fingerprint of what was asked, ignoring field order on the wire."""
    return hashlib.sha256(method.encode() + b"\x00" + request.SerializeToString(deterministic=True)).digest()


async def claim_request(session: AsyncSession, request_id: str, method: str, request: Message) -> bytes | None:
    """Claim ``request_id`` in the session's transaction.

    Returns None when the claim is ours (go ahead), or the stored response of the first
    call with this id. Raises when the id is missing, too long or was used for another request.
    """
    if not request_id:
        raise InvalidArgument("request_id is required for this call", reason="request-id-missing")
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID_LENGTH} characters")
    digest = request_digest(method, request)
    claimed = await session.execute(
        text(
            "INSERT INTO request_log (request_id, method, request_digest) VALUES (:id, :method, :digest) "
            "ON CONFLICT (request_id) DO NOTHING RETURNING 1"
        ),
        {"id": request_id, "method": method, "digest": digest},
    )
    if claimed.first() is not None:
        return None
    stored = (
        await session.execute(
            text("SELECT method, request_digest, response FROM request_log WHERE request_id = :id"),
            {"id": request_id},
        )
    ).one()
    if stored.method != method or bytes(stored.request_digest) != digest:
        raise RequestIdReused(f"request_id {request_id!r} was already used for a different request")
    return bytes(stored.response)


async def claim_requests(
    session: AsyncSession, method: str, requests: Sequence[tuple[str, Message]]
) -> list[bytes | AlreadyExists | None]:
    """Claim many distinct request ids in one statement (a coalesced batch).

    Per request, in order: None (ours, go ahead), the stored first response, or the
    error to answer with when the id was used for a different request. Ids must be distinct.
    """
    if not requests:
        return []
    for request_id, _ in requests:
        if not request_id or len(request_id) > MAX_REQUEST_ID_LENGTH:
            raise InvalidArgument("every request needs a request_id of at most 200 characters")
    ids = [request_id for request_id, _ in requests]
    digests = [request_digest(method, request) for _, request in requests]
    claimed = {
        row.request_id
        for row in await session.execute(
            text(
                # Sorted, so that two batches sharing ids always take their locks in the same order.
                "INSERT INTO request_log (request_id, method, request_digest) "
                "SELECT id, :method, digest FROM unnest(CAST(:ids AS text[]), CAST(:digests AS bytea[])) "
                "AS v(id, digest) ORDER BY id ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
            ),
            {"method": method, "ids": ids, "digests": digests},
        )
    }
    earlier = [request_id for request_id in ids if request_id not in claimed]
    stored = {}
    if earlier:
        rows = await session.execute(
            text(
                "SELECT request_id, method, request_digest, response FROM request_log "
                "WHERE request_id = ANY (CAST(:ids AS text[]))"
            ),
            {"ids": earlier},
        )
        stored = {row.request_id: row for row in rows}
    outcomes: list[bytes | AlreadyExists | None] = []
    for request_id, digest in zip(ids, digests, strict=True):
        if request_id in claimed:
            outcomes.append(None)
            continue
        row = stored[request_id]
        if row.method != method or bytes(row.request_digest) != digest:
            outcomes.append(RequestIdReused(f"request_id {request_id!r} was already used for a different request"))
        else:
            outcomes.append(bytes(row.response))
    return outcomes


async def store_responses(session: AsyncSession, responses: Sequence[tuple[str, Message]]) -> None:
    """Record the answers of many claimed requests in one statement."""
    if not responses:
        return
    await session.execute(
        text(
            "UPDATE request_log l SET response = v.response FROM unnest(CAST(:ids AS text[]), "
            "CAST(:responses AS bytea[])) AS v(id, response) WHERE l.request_id = v.id"
        ),
        {
            "ids": [request_id for request_id, _ in responses],
            "responses": [response.SerializeToString(deterministic=True) for _, response in responses],
        },
    )


async def release_claims(session: AsyncSession, request_ids: Sequence[str]) -> None:
    """Give up many claims at once (their requests were refused)."""
    if request_ids:
        await session.execute(
            text("DELETE FROM request_log WHERE request_id = ANY (CAST(:ids AS text[]))"), {"ids": list(request_ids)}
        )


async def store_response(session: AsyncSession, request_id: str, response: Message) -> None:
    """Record the answer to a claimed request, in the same transaction as its effect."""
    await session.execute(
        text("UPDATE request_log SET response = :response WHERE request_id = :id"),
        {"id": request_id, "response": response.SerializeToString(deterministic=True)},
    )


async def run_once(
    uow: UowT,
    *,
    request_id: str,
    method: str,
    request: Message,
    response_type: type[ResponseT],
    effect: Callable[[UowT], Awaitable[ResponseT]],
) -> ResponseT:
    """Run ``effect`` in ``uow`` once per ``request_id``; replays return the stored response.

    ``effect`` must not commit: it makes its changes (and publishes its events) in the
    unit of work, and this function stores the response and commits everything at once.
    A domain error raised by ``effect`` rolls back the claim too, so a corrected retry
    with the same id is free to succeed.
    """
    async with uow:
        stored = await claim_request(uow.session, request_id, method, request)
        if stored is not None:
            return response_type.FromString(stored)
        response = await effect(uow)
        await store_response(uow.session, request_id, response)
        await uow.commit()
        return response


async def run_request_once(
    uow: UowT, request: Any, response_type: type[ResponseT], effect: Callable[[UowT], Awaitable[ResponseT]]
) -> ResponseT:
    """:func:`run_once` for a request message carrying its own ``request_id`` field; the method
    it is stored under is the request's message type."""
    return await run_once(
        uow,
        request_id=request.request_id,
        method=type(request).DESCRIPTOR.full_name,
        request=request,
        response_type=response_type,
        effect=effect,
    )
