"""Idempotency-Key through the real gateway and its PostgreSQL (replays, conflicts, 50 racing copies)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from gateway.domain.clients import ClientKind
from gateway.domain.scopes import RESERVATIONS_WRITE
from gateway.http import problems
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.settings import GatewaySettings
from tests.support.gateway import (
    RunningGateway,
    assert_problem,
    gateway_schema,
    gateway_settings,
    idempotency_key,
    running_gateway,
)

__all__ = ["gateway_schema", "gateway_settings"]


class Order(BaseModel):
    sku: str
    quantity: int


class Effects:
    """What the stand-in route did: how often its effect ran, and a gate to hold it in flight."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail_next = False


def stand_in_routes(effects: Effects) -> APIRouter:
    router = APIRouter()

    @router.post("/test/reservations", status_code=201)
    async def reserve(
        order: Order, idempotency: Annotated[IdempotentRequest, Depends(idempotent(RESERVATIONS_WRITE))]
    ) -> Any:
        async def effect() -> tuple[int, Any]:
            effects.runs.append(idempotency.request_id)
            effects.entered.set()
            if effects.gate is not None:
                await effects.gate.wait()
            if effects.fail_next:
                effects.fail_next = False
                raise problems.ProblemError(problems.SERVICE_UNAVAILABLE, "inventory is down")
            return 201, {"reservation": len(effects.runs), "sku": order.sku, "request_id": idempotency.request_id}

        return await idempotency.run(effect)

    return router


@pytest.fixture
def effects() -> Effects:
    return Effects()


@pytest.fixture
async def gateway(gateway_settings: Callable[..., GatewaySettings], effects: Effects) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(idempotency_wait_seconds=10, rate_limit_burst=1000)
    async with running_gateway(settings, routers=[stand_in_routes(effects)]) as running:
        yield running


ORDER = {"sku": "SKU-1", "quantity": 2}


async def test_the_same_key_and_body_replay_the_first_answer_without_a_second_effect(
    gateway: RunningGateway, effects: Effects
) -> None:
    headers = await gateway.client_headers(ClientKind.APP) | idempotency_key()
    first = await gateway.http.post("/test/reservations", json=ORDER, headers=headers)
    # The same JSON written differently is the same request.
    again = await gateway.http.post(
        "/test/reservations",
        content=b'{"quantity":2,  "sku":"SKU-1"}',
        headers=headers | {"content-type": "application/json"},
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(effects.runs) == 1


async def test_fifty_copies_at_once_run_the_effect_once_and_all_get_the_first_answer(
    gateway: RunningGateway, effects: Effects
) -> None:
    headers = await gateway.client_headers(ClientKind.APP) | idempotency_key()
    answers = await asyncio.gather(
        *(gateway.http.post("/test/reservations", json=ORDER, headers=headers) for _ in range(50))
    )
    assert len(effects.runs) == 1
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.text for answer in answers}) == 1


async def test_concurrent_keys_are_claimed_and_completed_in_groups_each_answered_and_replayed_on_its_own(
    gateway: RunningGateway, effects: Effects
) -> None:
    app = await gateway.client_headers(ClientKind.APP)
    keys = [idempotency_key() for _ in range(60)]
    records = gateway.resources.idempotency
    claims_before, completions_before = records.statements
    # Among them, copies of one key with the same body and with another body, in the same flood.
    shared = idempotency_key()
    floods = [(key, ORDER) for key in keys] + [(shared, ORDER)] * 3 + [(shared, ORDER | {"quantity": 9})] * 3

    answers = await asyncio.gather(
        *(gateway.http.post("/test/reservations", json=body, headers=app | key) for key, body in floods)
    )

    claims, completions = records.statements
    assert claims - claims_before < len(floods)  # grouped: fewer claim statements than requests
    assert completions - completions_before < len(keys)
    own = answers[: len(keys)]
    assert {answer.status_code for answer in own} == {201}
    assert len({answer.json()["request_id"] for answer in own}) == len(keys)
    copies = list(zip(floods[len(keys) :], answers[len(keys) :], strict=True))
    winning = {repr(sorted(body.items())) for (_, body), answer in copies if answer.status_code == 201}
    assert len(winning) == 1  # one of the two bodies ran, once; every copy of it got its answer
    first_body = next(answer.json() for _, answer in copies if answer.status_code == 201)
    for (_, body), answer in copies:
        if repr(sorted(body.items())) in winning:
            assert (answer.status_code, answer.json()) == (201, first_body)
        else:
            assert_problem(answer, 422, "idempotency-key-reused")
    assert len(effects.runs) == len(keys) + 1  # once per key, the shared key once
    for key, answer in zip(keys[:5], own, strict=False):
        again = await gateway.http.post("/test/reservations", json=ORDER, headers=app | key)
        assert again.json() == answer.json()
        assert again.headers["idempotent-replayed"] == "true"
    assert len(effects.runs) == len(keys) + 1


async def test_the_same_key_with_a_different_body_is_422(gateway: RunningGateway, effects: Effects) -> None:
    headers = await gateway.client_headers(ClientKind.APP) | idempotency_key()
    await gateway.http.post("/test/reservations", json=ORDER, headers=headers)
    other = await gateway.http.post("/test/reservations", json=ORDER | {"quantity": 3}, headers=headers)
    assert_problem(other, 422, "idempotency-key-reused")
    assert len(effects.runs) == 1


async def test_a_key_still_in_flight_is_409(gateway_settings: Callable[..., GatewaySettings], effects: Effects) -> None:
    effects.gate = asyncio.Event()
    settings = gateway_settings(idempotency_wait_seconds=0)
    async with running_gateway(settings, routers=[stand_in_routes(effects)]) as gateway:
        headers = await gateway.client_headers(ClientKind.APP) | idempotency_key()
        first = asyncio.create_task(gateway.http.post("/test/reservations", json=ORDER, headers=headers))
        await effects.entered.wait()
        second = await gateway.http.post("/test/reservations", json=ORDER, headers=headers)
        effects.gate.set()
        assert (await first).status_code == 201
    body = assert_problem(second, 409, "idempotency-key-in-flight")
    assert second.headers["retry-after"] == "1"
    assert "still being processed" in body["detail"]
    assert len(effects.runs) == 1


async def test_keys_belong_to_one_client_and_travel_namespaced_as_the_request_id(
    gateway: RunningGateway, effects: Effects
) -> None:
    key = idempotency_key()
    one, two = (await gateway.client_headers(ClientKind.APP), await gateway.client_headers(ClientKind.APP))
    first = await gateway.http.post("/test/reservations", json=ORDER, headers=one | key)
    second = await gateway.http.post("/test/reservations", json=ORDER, headers=two | key)
    assert len(effects.runs) == 2
    assert first.json()["request_id"] != second.json()["request_id"]
    assert first.json()["request_id"].endswith("/" + key["Idempotency-Key"])


async def test_a_failed_effect_stores_nothing_so_a_retry_runs_it_again(
    gateway: RunningGateway, effects: Effects
) -> None:
    headers = await gateway.client_headers(ClientKind.APP) | idempotency_key()
    effects.fail_next = True
    failed = await gateway.http.post("/test/reservations", json=ORDER, headers=headers)
    retried = await gateway.http.post("/test/reservations", json=ORDER, headers=headers)
    assert_problem(failed, 503, "service-unavailable")
    assert retried.status_code == 201
    assert len(effects.runs) == 2


@pytest.mark.parametrize("key", [None, "", "has space", "x" * 129])
async def test_a_post_without_a_usable_idempotency_key_is_a_validation_problem(
    gateway: RunningGateway, effects: Effects, key: str | None
) -> None:
    headers = await gateway.client_headers(ClientKind.APP)
    if key is not None:
        headers["Idempotency-Key"] = key
    response = await gateway.http.post("/test/reservations", json=ORDER, headers=headers)
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["location"] == "header.Idempotency-Key"
    assert effects.runs == []
