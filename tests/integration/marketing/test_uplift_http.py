"""The uplift model through the gateway and over gRPC: headquarters trains it, marketing readers see whether
it serves and its Qini, a campaign targets by uplift only once a model beats random — and nobody else gets in."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from retail.marketing.v1 import marketing_service_pb2 as pb
from retail.marketing.v1 import marketing_service_pb2_grpc as pb_grpc

from gateway.domain.clients import ClientKind, StaffRole
from gateway.settings import GatewaySettings
from services.marketing.bootstrap import MarketingApp
from tests.integration.marketing.test_marketing_service import APP, HQ, manager
from tests.integration.marketing.test_uplift_training import past_campaigns
from tests.support.gateway import (
    RunningGateway,
    assert_problem,
    gateway_schema,
    gateway_settings,
    idempotency_key,
    running_gateway,
)
from tests.support.grpc_status import refused

__all__ = ["gateway_schema", "gateway_settings"]


@pytest.fixture
async def gateway(app: MarketingApp, gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(gateway_backends=f"marketing=127.0.0.1:{app.server.bound_port}", rate_limit_burst=1000)
    async with running_gateway(settings) as running:
        yield running


async def trained(app: MarketingApp, gateway: RunningGateway, headers: dict[str, str]) -> dict[str, Any]:
    """Train the queued run here (the periodic job may take it first) and wait until it has finished."""
    await app.services.uplift.train_next()
    async with asyncio.timeout(60):
        while True:
            body: dict[str, Any] = (await gateway.http.get("/v1/models/uplift", headers=headers)).json()
            if body["latest"] is not None and body["latest"]["status"] in ("succeeded", "failed"):
                return body
            await asyncio.sleep(0.05)


async def test_uplift_over_http_trained_by_headquarters_and_targeted_only_once_it_beats_random(
    app: MarketingApp, gateway: RunningGateway, marketing_url: str
) -> None:
    hq = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    manager = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.STORE_MANAGER, store_id="S1")
    app_client = await gateway.client_headers(ClientKind.APP)
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id="S1")
    http = gateway.http

    untrained = (await http.get("/v1/models/uplift", headers=hq)).json()
    assert untrained == {
        "status": "unavailable",
        "reason": "uplift-model-unavailable: no uplift model has been trained",
        "model_version": None,
        "trained_at": None,
        "training_members": None,
        "backtest": None,
        "latest": None,
    }
    # Only headquarters trains; a store manager reads (marketing:read) but does not train; an app or a
    # terminal has no business with the model at all.
    for headers in (manager, app_client, terminal):
        assert_problem(
            await http.post("/v1/models/uplift/train", headers=headers | idempotency_key()), 403, "forbidden"
        )
    for headers in (app_client, terminal):
        assert_problem(await http.get("/v1/models/uplift", headers=headers), 403, "forbidden")
    assert (await http.get("/v1/models/uplift", headers=manager)).json()["status"] == "unavailable"

    # Nothing ended yet to learn from: the run fails and says why.
    queued = await http.post("/v1/models/uplift/train", headers=hq | idempotency_key())
    assert queued.status_code == 202, queued.text
    assert (queued.json()["status"], queued.json()["horizon_days"]) == ("queued", None)
    failed = await trained(app, gateway, hq)
    assert failed["status"] == "unavailable"
    assert failed["latest"]["status"] == "failed"
    assert "no ended campaign" in failed["reason"]

    now = datetime.now(UTC)
    await past_campaigns(marketing_url, now)
    segment = await http.post(
        "/v1/segments",
        json={"name": "Gold", "rule": {"attribute": "tier", "op": "in", "value": ["gold"]}},
        headers=hq | idempotency_key(),
    )
    assert segment.status_code == 201, segment.text
    snapshot = await http.post(f"/v1/segments/{segment.json()['segment_id']}/snapshots", headers=hq | idempotency_key())
    assert snapshot.status_code == 201, snapshot.text
    campaign = {
        "name": "Persuade",
        "snapshot_id": snapshot.json()["snapshot_id"],
        "offer": {"kind": "amount_off", "amount_off": "10.00", "min_spend": "50.00"},
        "terms": {"valid_from": now.isoformat(), "valid_until": (now + timedelta(days=14)).isoformat()},
        "contact_channels": ["app_push"],
        "control_fraction_bp": 1500,
        "target": "uplift",
        "target_percent": 30,
    }
    refused = assert_problem(
        await http.post("/v1/campaigns", json=campaign, headers=hq | idempotency_key()), 409, "failed-precondition"
    )
    assert refused["reason"] == "uplift-model-unavailable"
    assert_problem(
        await http.post("/v1/campaigns", json=campaign | {"target_percent": None}, headers=hq | idempotency_key()),
        422,
        "validation-error",
    )

    assert (await http.post("/v1/models/uplift/train", headers=hq | idempotency_key())).status_code == 202
    serving = await trained(app, gateway, hq)
    assert serving["status"] == "serving", serving
    assert serving["reason"] is None
    assert serving["model_version"] == serving["latest"]["model_version"]
    assert serving["training_members"] == 20_000
    backtest = serving["backtest"]
    assert backtest["qini_random"] == 0.0
    assert backtest["qini"] > 0.1
    assert backtest["learner"] in ("two_model", "transformed_outcome")
    assert (backtest["holdout"], backtest["holdout_campaigns"]) == ("campaigns", ["PAST3"])
    assert (await http.get("/v1/models/uplift", headers=manager)).json()["backtest"] == backtest

    created = await http.post("/v1/campaigns", json=campaign, headers=hq | idempotency_key())
    assert created.status_code == 201, created.text
    assert (created.json()["target"], created.json()["target_percent"]) == ("uplift", 30)


async def test_over_grpc_only_headquarters_trains_the_uplift_model(app: MarketingApp) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.MarketingServiceStub(channel)  # type: ignore[no-untyped-call]
        for actor in (manager("S1"), APP):
            await refused(
                stub.TrainUpliftModel(pb.TrainUpliftModelRequest(request_id=str(uuid.uuid4()), actor=actor), timeout=5),
                grpc.StatusCode.PERMISSION_DENIED,
                "models-headquarters-only",
            )
        assert not (await stub.GetUpliftModel(pb.GetUpliftModelRequest(actor=HQ), timeout=5)).HasField("latest")
        asked = pb.TrainUpliftModelRequest(request_id=str(uuid.uuid4()), actor=HQ)
        run = (await stub.TrainUpliftModel(asked, timeout=5)).run
        assert (run.status, run.horizon_days) == ("queued", 0)
        assert (await stub.TrainUpliftModel(asked, timeout=5)).run.model_version == run.model_version  # a retry
        status = await stub.GetUpliftModel(pb.GetUpliftModelRequest(actor=HQ), timeout=5)
        assert status.latest.model_version == run.model_version
        assert not status.HasField("serving")
