"""Shared helpers of the alerts integration tests: actors, publishing other contexts' events, polling."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from retail.common.v1 import identifiers_pb2

from tests.support.messaging import jetstream

HQ = identifiers_pb2.Actor(
    client_id="hq-ops",
    client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
    staff_role=identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
)


def manager(store_id: str) -> identifiers_pb2.Actor:
    return identifiers_pb2.Actor(
        client_id=f"manager-{store_id}",
        client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
        staff_role=identifiers_pb2.STAFF_ROLE_STORE_MANAGER,
        store_id=store_id,
    )


def supplier_user(supplier_id: str) -> identifiers_pb2.Actor:
    return identifiers_pb2.Actor(
        client_id=f"portal-{supplier_id}",
        client_kind=identifiers_pb2.CLIENT_KIND_SUPPLIER_USER,
        supplier_id=supplier_id,
    )


def rid() -> str:
    return uuid.uuid4().hex


async def publish(nats_url: str, subject: str, *messages: Message) -> list[str]:
    """Publish ``messages`` in order, as their owning context's relay would; returns their event ids."""
    ids = []
    async with jetstream(nats_url) as (_, js):
        for message in messages:
            event_id = str(uuid.uuid4())
            await js.publish(
                subject,
                message.SerializeToString(),
                headers={"Nats-Msg-Id": event_id, "Retail-Event-Type": message.DESCRIPTOR.full_name},
            )
            ids.append(event_id)
    return ids


async def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:  # noqa: ASYNC109
    """Poll ``check`` (an async callable) until it returns something truthy, within a bound."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


def reason(error: grpc.aio.AioRpcError) -> str:
    """The stable reason the service gave with an error."""
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == "retail-error-reason":
            return str(value)
    return ""
