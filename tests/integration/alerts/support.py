"""Shared helpers of the alerts integration tests: actors, publishing other contexts' events, polling."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class Robot:
    """A WeCom / DingTalk group robot on 127.0.0.1 keeping each POST as (path, status, body).

    It answers 200 ``{"errcode": 0}``; with ``fail_first`` the first POST to each path gets 500.
    """

    def __init__(self, *, fail_first: bool = False) -> None:
        self.received: list[tuple[str, int, dict[str, Any]]] = []
        seen: set[str] = set()
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                status = 500 if fail_first and self.path not in seen else 200
                seen.add(self.path)
                robot.received.append((self.path, status, body))
                answer = b'{"errcode": 0, "errmsg": "ok"}' if status == 200 else b"busy"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def running_robot(*, fail_first: bool = False) -> Iterator[Robot]:
    """A :class:`Robot` serving in a thread until the block ends."""
    robot = Robot(fail_first=fail_first)
    thread = threading.Thread(target=robot.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield robot
    finally:
        robot.server.shutdown()
        robot.server.server_close()
        thread.join()
