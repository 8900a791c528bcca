"""The raw HTTP baseline: a bare ASGI app answering /healthz with the same JSON, no middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

BODY = b'{"status":"ok"}'


async def app(
    scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def bare_fastapi() -> Any:
    """The framework on its own: one FastAPI route, none of the gateway's middleware or telemetry."""
    from fastapi import FastAPI

    framework = FastAPI()

    @framework.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return framework
