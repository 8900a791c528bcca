"""A tiny gRPC servicer for the kit's tests: notes stored once per request id."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from servicekit.db import UnitOfWork
from servicekit.errors import FailedPrecondition, NotFound
from servicekit.idempotency import RequestFingerprint, keep_reply, message_codec, replay, request_digest
from servicekit.outbox import OutboxEvent

SERVICE = "retail.test.v1.NoteService"
NOTE_ANSWERS = message_codec(StringValue, lambda answer: answer, lambda answer: answer)


class NoteService:
    """A tiny servicer: `Add` stores a note once per request id; `Fail*` raise errors."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.slow_started = asyncio.Event()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(async_sessionmaker(self.engine, expire_on_commit=False))

    async def add(self, request: StringValue, context: grpc.aio.ServicerContext[Any, Any]) -> StringValue:
        request_id = dict(context.invocation_metadata() or ()).get("request-id", "")

        request_fingerprint = RequestFingerprint(request_id, "Add", request_digest("Add", request))
        async with self.uow() as uow:
            if (first := await replay(uow.session, request_fingerprint, NOTE_ANSWERS)) is not None:
                return first
            note_id = str(uuid.uuid4())
            await uow.session.execute(
                text("INSERT INTO note VALUES (:id, :body)"), {"id": note_id, "body": request.value}
            )
            uow.publish(OutboxEvent.of("retail.test.v1.note_added", StringValue(value=note_id), aggregate_id=note_id))
            if request.value == "reject":
                raise FailedPrecondition("notes saying 'reject' are refused", reason="note-rejected")
            answer = StringValue(value=note_id)
            await keep_reply(uow.session, request_fingerprint, NOTE_ANSWERS, answer)
            await uow.commit()
            return answer

    async def fail_not_found(self, request: StringValue, context: grpc.aio.ServicerContext[Any, Any]) -> StringValue:
        raise NotFound(f"note {request.value} does not exist", reason="note-not-found")

    async def fail_unexpectedly(self, request: StringValue, context: grpc.aio.ServicerContext[Any, Any]) -> StringValue:
        raise KeyError("secret internals")

    async def slow(self, request: StringValue, context: grpc.aio.ServicerContext[Any, Any]) -> StringValue:
        self.slow_started.set()
        await asyncio.sleep(float(request.value))  # a long-running call in flight during shutdown
        return StringValue(value="finished")

    def register(self, server: grpc.aio.Server) -> None:
        def unary(behaviour: Any) -> grpc.RpcMethodHandler[Any, Any]:
            return grpc.unary_unary_rpc_method_handler(
                behaviour,
                request_deserializer=StringValue.FromString,
                response_serializer=StringValue.SerializeToString,
            )

        handlers = {
            "Add": unary(self.add),
            "FailNotFound": unary(self.fail_not_found),
            "FailUnexpectedly": unary(self.fail_unexpectedly),
            "Slow": unary(self.slow),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def call(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[StringValue, StringValue]:
    return channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )
