"""The standard gRPC health service (``grpc.health.v1.Health``) every service process serves.

Kubernetes' probes ask ``Check``; the gateway's channels ``Watch`` the overall status (gRPC
client-side health checking) so that they stop sending calls to a server that reports
NOT_SERVING. The reference ``grpc_health`` servicer streams ``Watch`` by writing to the call
context; server interceptors that wrap streaming methods (OpenTelemetry's among them) iterate
the method instead, and with them every ``Watch`` failed, so clients took a healthy server for
an unhealthy one. Here ``Watch`` is an async generator, which every interceptor can wrap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

ServingStatus = Any  # health_pb2.HealthCheckResponse.ServingStatus (an int enum value)


class HealthService(health_pb2_grpc.HealthServicer):  # type: ignore[misc]  # grpc_health ships no types
    """Serving status per service name (``""`` for the server as a whole), asked or watched."""

    def __init__(self) -> None:
        self._statuses: dict[str, ServingStatus] = {}
        self._changed = asyncio.Condition()
        self._shutting_down = False

    async def Check(  # noqa: N802 - gRPC method names are the contract's
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        """The current status of ``request.service``; NOT_FOUND for a name never set."""
        status = self._statuses.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(  # type: ignore[override]  # noqa: N802
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        """The status of ``request.service`` now and after every change (SERVICE_UNKNOWN while the
        name is not set), until the caller leaves or the server begins its graceful shutdown."""
        sent: ServingStatus | None = None
        while True:
            async with self._changed:
                while (status := self._status_of(request.service)) == sent and not self._shutting_down:
                    await self._changed.wait()
                ending = self._shutting_down
            # Sent outside the lock: a slow watcher must not hold up set().
            if status != sent:
                sent = status
                yield health_pb2.HealthCheckResponse(status=status)
            if ending:
                # NOT_SERVING has been said; ending the stream lets the server's graceful stop
                # finish with its calls in flight instead of waiting out the grace for watchers.
                return

    def _status_of(self, service: str) -> ServingStatus:
        return self._statuses.get(service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)

    async def set(self, service: str, status: ServingStatus) -> None:
        """Set the status of ``service``; ignored once a graceful shutdown has begun."""
        if self._shutting_down:
            return
        async with self._changed:
            self._statuses[service] = status
            self._changed.notify_all()

    async def enter_graceful_shutdown(self) -> None:
        """Report NOT_SERVING for every service from now on, whatever is set later."""
        async with self._changed:
            self._shutting_down = True
            for service in self._statuses:
                self._statuses[service] = health_pb2.HealthCheckResponse.NOT_SERVING
            self._changed.notify_all()
