"""Every backend call carries the gateway's deadline without route code passing it.

A real in-process gRPC server records the deadline each call arrives with: a call that names
no ``timeout`` has the configured backend deadline, one that names a longer one keeps it.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.adapters.backends import BackendChannels

DEADLINE_SECONDS = 20.0


class RecordingHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]  # grpc_health ships no types
    """Answers SERVING and notes the seconds each call had left when it arrived."""

    def __init__(self) -> None:
        self.time_remaining: list[float | None] = []

    async def Check(  # noqa: N802 - the generated method name
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        self.time_remaining.append(context.time_remaining())
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def test_a_call_without_a_timeout_gets_the_backend_deadline_and_a_named_one_is_kept() -> None:
    health = RecordingHealth()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channels = BackendChannels({"inventory": f"127.0.0.1:{port}"}, deadline_seconds=DEADLINE_SECONDS)
    try:
        stub = health_pb2_grpc.HealthStub(channels["inventory"])
        await stub.Check(health_pb2.HealthCheckRequest())
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=10 * DEADLINE_SECONDS)
    finally:
        await channels.close()
        await server.stop(None)

    without_timeout, with_timeout = health.time_remaining
    assert without_timeout is not None, "a call without a timeout reached the backend with no deadline"
    assert 0 < without_timeout <= DEADLINE_SECONDS
    assert with_timeout is not None
    assert with_timeout > DEADLINE_SECONDS
