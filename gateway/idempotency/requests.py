"""``Idempotency-Key`` for every POST: the same key and body replay the first answer.

A route that changes anything takes ``idempotency: Annotated[IdempotentRequest,
Depends(idempotent(SCOPE))]`` (which also authenticates, like ``require(SCOPE)``) and
wraps its effect: ``return await idempotency.run(effect)``. The effect's answer (status
and JSON body) is stored under (client id, key):

- the same key with the same request (method, path and canonical JSON body) replays that answer
  without running the effect again, also when many copies arrive at once: a copy that
  finds the first one still running waits up to ``IDEMPOTENCY_WAIT_SECONDS`` for it;
- the same key with a different body is 422 (``idempotency-key-reused``);
- a key whose first request is still running after that wait is 409 (``idempotency-key-in-flight``).

``request_id`` (``<client id>/<key>``) is what a route passes to a service as the gRPC
``request_id``, so that the service's effect and stored answer commit together even when
the gateway dies between the effect and storing the answer here: a claim older than its
lease is taken over and the service replays its first answer.

An effect that raises (a problem, a service error) leaves nothing stored; the next
attempt with the key runs again (and the service, keyed by ``request_id``, replays).
"""

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel

from gateway.http import problems
from gateway.http.json_body import json_text
from gateway.http.resources import resources_of
from gateway.idempotency.records import IdempotencyRecords
from gateway.security.authentication import Principal
from gateway.security.authorisation import require

AnswerT = TypeVar("AnswerT")
# A route's answer body: a response model, or the JSON of one already dumped.
Body = BaseModel | dict[str, Any]

IDEMPOTENCY_KEY_REUSED = problems.ProblemType(
    "idempotency-key-reused", "The Idempotency-Key was used for a different request", 422
)
IDEMPOTENCY_KEY_IN_FLIGHT = problems.ProblemType(
    "idempotency-key-in-flight", "A request with this Idempotency-Key is still being processed", 409
)
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
REPLAYED_HEADER = "Idempotent-Replayed"
JSON = "application/json"

IdempotencyKeyHeader = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Client-chosen key, unique per intended effect (a UUID is ideal); retries send the same key "
        "and body and get the first answer again. 1-128 characters: letters, digits, '.', '_', ':', '-'.",
        examples=["6f1f2f0e-8f9b-4c53-9d1e-0a3c5d7e9b21"],
    ),
]


_KEY_ERROR = {
    "location": "header.Idempotency-Key",
    "message": "already used for a different request",
    "type": "idempotency_key_reused",
}


@dataclass(frozen=True)
class IdempotentRequest:
    """One POST under an Idempotency-Key, with the authenticated principal."""

    principal: Principal
    key: str
    fingerprint: bytes
    records: IdempotencyRecords
    wait_seconds: float

    @property
    def request_id(self) -> str:
        """The gRPC ``request_id`` for the owning service: unique per client and key."""
        return f"{self.principal.client_id}/{self.key}"

    async def forward(
        self, send: Callable[[], Awaitable[AnswerT]], answer: Callable[[AnswerT], tuple[int, Body]]
    ) -> Response:
        """:meth:`run` for a route's usual effect: one backend call (``send``, made only when the key
        is new), its answer mapped to a status and body by ``answer``."""

        async def effect() -> tuple[int, Any]:
            status_code, body = answer(await send())
            return status_code, body.model_dump(mode="json") if isinstance(body, BaseModel) else body

        return await self.run(effect)

    async def run(
        self, effect: Callable[[], Awaitable[tuple[int, Any]]], *, never_stored: Sequence[str] = ()
    ) -> Response:
        """Run ``effect`` (returning status and JSON body) once per key; replay its answer afterwards.

        Top-level members named in ``never_stored`` (a newly issued secret) are stored as
        null: a replay says the request succeeded without handing the secret out again.
        """
        client_id = self.principal.client_id
        outcome = await self.records.claim(client_id, self.key, self.fingerprint)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        pause = 0.01
        while outcome.state == "in_flight" and loop.time() < deadline:
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, 0.2)
            outcome = await self.records.claim(client_id, self.key, self.fingerprint)
        if outcome.state == "mismatch":
            raise problems.ProblemError(
                IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was first used with a different request (path or body); use a new key",
                extensions={"errors": [_KEY_ERROR]},
            )
        if outcome.state == "in_flight":
            raise problems.ProblemError(
                IDEMPOTENCY_KEY_IN_FLIGHT,
                "the first request with this Idempotency-Key is still being processed; retry with the same key",
                headers={"Retry-After": "1"},
            )
        if outcome.state == "completed":
            assert outcome.status_code is not None
            return Response(
                outcome.response_body,
                status_code=outcome.status_code,
                media_type=JSON,
                headers={REPLAYED_HEADER: "true"},
            )
        try:
            status_code, body = await effect()
        except BaseException:
            await asyncio.shield(self.records.release(client_id, self.key))
            raise
        stored = (
            {name: (None if name in never_stored else value) for name, value in body.items()} if never_stored else body
        )
        answer = json_text(body)
        await asyncio.shield(
            self.records.complete(client_id, self.key, status_code, answer if stored is body else json_text(stored))
        )
        return Response(answer, status_code=status_code, media_type=JSON)


def created_status(created: bool) -> int:
    """201 for what a call created, 200 for what it changed (or found unchanged)."""
    return 201 if created else 200


def request_fingerprint(method: str, path: str, body: bytes) -> bytes:
    """SHA-256 of method, path and the body (canonical JSON when it is JSON)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), canonical])).digest()


@cache
def idempotent(scope: str) -> Callable[..., Coroutine[Any, Any, IdempotentRequest]]:
    """A dependency: the authenticated principal (holding ``scope``) and the request's Idempotency-Key."""

    async def idempotent_request(
        request: Request,
        principal: Annotated[Principal, Depends(require(scope))],
        idempotency_key: IdempotencyKeyHeader,
    ) -> IdempotentRequest:
        # The path itself, not its template: the same key on another object is another request.
        resources = resources_of(request)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return IdempotentRequest(
            principal=principal,
            key=idempotency_key,
            fingerprint=request_fingerprint(request.method, path, await request.body()),
            records=resources.idempotency,
            wait_seconds=resources.settings.idempotency_wait_seconds,
        )

    return idempotent_request
