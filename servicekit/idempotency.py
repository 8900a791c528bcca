"""Request-id store: a mutating RPC retried with the same ``request_id`` returns the first answer.

The id is claimed with an INSERT at the start of the handler's transaction and the
response is stored in that same transaction, so the effect and the stored answer commit
together. A concurrent duplicate blocks on the claimed key until the first transaction
ends: after a commit it reads the stored answer, after a rollback it claims the id itself.
The same id with a different request (another method or other fields) is refused.

The one way a command handler uses it, owning its unit of work::

    async with self._uow() as uow:
        if (first := await replay(uow.session, command.request, codec)) is not None:
            return first  # a retry: the first call's answer, nothing changes
        answer = ...  # the change, its outbox events
        await keep_reply(uow.session, command.request, codec, answer)
        await uow.commit()
        return answer

The command carries the request's :class:`RequestFingerprint` and the entrypoint supplies the
:class:`ReplyCodec` (usually :func:`message_codec`: the RPC's response message), so the service
layer never sees the wire types. A domain error rolls the claim back with the effect, so a
corrected retry with the same id is free to succeed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.errors import AlreadyExists, InvalidArgument

MessageT = TypeVar("MessageT", bound=Message)
ReplyT = TypeVar("ReplyT")
ResultT = TypeVar("ResultT")

MAX_REQUEST_ID_LENGTH = 200


@dataclass(frozen=True)
class RequestFingerprint:
    """A mutating request as the request-id store knows it, without its wire type: a command carries
    this, so the service layer claims the id and compares the request without seeing protobuf."""

    request_id: str
    method: str
    digest: bytes


@dataclass(frozen=True)
class ReplyCodec(Generic[ReplyT]):
    """How a command's answer is kept under its request id: the wire encoding, supplied by the
    service's entrypoints, so a replay answers with the very bytes of the first call."""

    encode: Callable[[ReplyT], bytes]
    decode: Callable[[bytes], ReplyT]


@dataclass(frozen=True)
class Reply(Generic[ResultT, ReplyT]):
    """How a command answers: ``render`` turns what it produced into the answer (the RPC's
    response, though the service layer never sees that type) once, inside its transaction, and
    ``codec`` keeps it under the request id, so a retry with the same id answers with the very
    first answer and changes nothing (:func:`replay` / :func:`keep_reply`)."""

    codec: ReplyCodec[ReplyT]
    render: Callable[[ResultT], ReplyT]


def message_codec(
    message_type: type[MessageT], to_message: Callable[[ReplyT], MessageT], from_message: Callable[[MessageT], ReplyT]
) -> ReplyCodec[ReplyT]:
    """A command's answer kept as its RPC's response message, serialised deterministically, so a
    replay answers with the very bytes of the first call."""
    return ReplyCodec(
        encode=lambda reply: to_message(reply).SerializeToString(deterministic=True),
        decode=lambda data: from_message(message_type.FromString(data)),
    )


class RequestIdReused(AlreadyExists):
    """The request_id was already used for a different request."""

    reason = "request-id-reused"


def request_digest(method: str, request: Message) -> bytes:
    """A fingerprint of what was asked, ignoring field order on the wire."""
    return hashlib.sha256(method.encode() + b"\x00" + request.SerializeToString(deterministic=True)).digest()


def fingerprint(request: Any, method: str = "") -> RequestFingerprint:
    """The fingerprint of a request message carrying its own ``request_id``; ``method`` defaults to the
    message type's full name."""
    name = method or type(request).DESCRIPTOR.full_name
    return RequestFingerprint(request.request_id, name, request_digest(name, request))


async def claim_fingerprint(session: AsyncSession, request: RequestFingerprint) -> bytes | None:
    """Claim ``request``'s id in the session's transaction.

    Returns None when the claim is ours (go ahead), or the stored answer of the first call with
    this id. Raises when the id is missing, too long or was used for another request."""
    request_id, method, digest = request.request_id, request.method, request.digest
    if not request_id:
        raise InvalidArgument("request_id is required for this call", reason="request-id-missing")
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID_LENGTH} characters")
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


async def claim_fingerprints(
    session: AsyncSession, requests: Sequence[RequestFingerprint]
) -> list[bytes | AlreadyExists | None]:
    """Claim many distinct request ids, all of one method, in one statement (a coalesced batch).

    Per request, in order: None (ours, go ahead), the stored first answer, or the error to
    answer with when the id was used for a different request. Ids must be distinct.
    """
    if not requests:
        return []
    methods = {request.method for request in requests}
    if len(methods) != 1:
        raise ValueError(f"one batch claims requests of one method, not {sorted(methods)}")
    (method,) = methods
    for request in requests:
        if not request.request_id or len(request.request_id) > MAX_REQUEST_ID_LENGTH:
            raise InvalidArgument("every request needs a request_id of at most 200 characters")
    ids = [request.request_id for request in requests]
    digests = [request.digest for request in requests]
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


async def store_replies(session: AsyncSession, replies: Sequence[tuple[str, bytes]]) -> None:
    """Record the encoded answers of many claimed requests in one statement."""
    if not replies:
        return
    await session.execute(
        text(
            "UPDATE request_log l SET response = v.response FROM unnest(CAST(:ids AS text[]), "
            "CAST(:responses AS bytea[])) AS v(id, response) WHERE l.request_id = v.id"
        ),
        {"ids": [request_id for request_id, _ in replies], "responses": [reply for _, reply in replies]},
    )


async def release_claims(session: AsyncSession, request_ids: Sequence[str]) -> None:
    """Give up many claims at once (their requests were refused)."""
    if request_ids:
        await session.execute(
            text("DELETE FROM request_log WHERE request_id = ANY (CAST(:ids AS text[]))"), {"ids": list(request_ids)}
        )


async def store_reply(session: AsyncSession, request_id: str, reply: bytes) -> None:
    """Record the encoded answer to a claimed request, in the same transaction as its effect."""
    await session.execute(
        text("UPDATE request_log SET response = :response WHERE request_id = :id"),
        {"id": request_id, "response": reply},
    )


async def replay(session: AsyncSession, request: RequestFingerprint, codec: ReplyCodec[ReplyT]) -> ReplyT | None:
    """Claim a command's request id: None when the claim is ours (go ahead and store the answer with
    :func:`keep_reply`), else the first call's answer, decoded. Raises as :func:`claim_fingerprint` does."""
    stored = await claim_fingerprint(session, request)
    return None if stored is None else codec.decode(stored)


async def keep_reply(
    session: AsyncSession, request: RequestFingerprint, codec: ReplyCodec[ReplyT], reply: ReplyT
) -> None:
    """Store a command's answer under its claimed request id, in the transaction of its effect."""
    await store_reply(session, request.request_id, codec.encode(reply))
