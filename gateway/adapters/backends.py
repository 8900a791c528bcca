"""gRPC channels to the services behind the gateway, traced and health-checked.

One ``grpc.aio`` channel per configured backend, shared by every request (a channel
multiplexes calls over HTTP/2). Channels are created inside the running event loop at
start-up and connect lazily, so a backend that is down delays nothing but its own calls.

Each channel watches its backend's standard health service (gRPC client-side health
checking): a server that reports NOT_SERVING (its PostgreSQL or NATS does not answer, or it
is shutting down) gets no calls, as if its connection had failed. A call to a backend none
of whose servers is connected and serving fails at once with UNAVAILABLE, which the gateway
answers with 503 and ``Retry-After`` (:mod:`gateway.http.grpc_errors`): the backend's routes go
unavailable on their own, without a health round trip per request, while every other
backend's routes keep working.

Every call carries the W3C trace context of the request (:class:`servicekit.telemetry.ClientTracing`);
a CLIENT span is started only when the request's trace is sampled.

Every call gets the gateway's backend deadline (``GRPC_DEADLINE_SECONDS``) from the channel
itself (:class:`BackendDeadline`), so route code never passes one; a call that needs longer
(replenishment planning) names its own ``timeout=``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from servicekit.readiness import NotReady
from servicekit.telemetry import ClientTracing

log = logging.getLogger("gateway.backends")

SERVICE_CONFIG = {
    # Spread calls over every address a (headless) service name resolves to...
    "loadBalancingConfig": [{"round_robin": {}}],
    # ...that reports SERVING for the whole server ("") on its streamed health Watch.
    "healthCheckConfig": {"serviceName": ""},
}
CHANNEL_OPTIONS: list[tuple[str, str | int]] = [
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    # Notice a restarted backend within seconds, not the library's default two minutes.
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5000),
]


if TYPE_CHECKING:  # grpc-stubs make the interceptor generic; the runtime class is not subscriptable
    UnaryUnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
else:
    UnaryUnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor


class BackendDeadline(UnaryUnaryInterceptor):
    """Gives every call that names no ``timeout`` the gateway's deadline for a backend call."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], grpc.aio.UnaryUnaryCall[Any, Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        if client_call_details.timeout is None:
            client_call_details = grpc.aio.ClientCallDetails(
                method=client_call_details.method,
                timeout=self.seconds,
                metadata=client_call_details.metadata,
                credentials=client_call_details.credentials,
                wait_for_ready=client_call_details.wait_for_ready,
            )
        return await continuation(client_call_details, request)


class BackendChannels(Mapping[str, grpc.aio.Channel]):
    """Backend name → its channel; ``channels["inventory"]`` feeds a generated stub.

    A call on a channel without a ``timeout`` has ``deadline_seconds`` to answer.
    """

    def __init__(self, targets: Mapping[str, str], *, deadline_seconds: float) -> None:
        self.targets = dict(targets)
        # grpc-stubs leaves the interceptor list's type open on purpose ("must cast or ignore").
        interceptors = [
            cast(grpc.aio.ClientInterceptor, ClientTracing()),
            cast(grpc.aio.ClientInterceptor, BackendDeadline(deadline_seconds)),
        ]
        self._channels = {
            name: grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)
            for name, target in self.targets.items()
        }

    def __getitem__(self, name: str) -> grpc.aio.Channel:
        return self._channels[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)

    async def close(self, grace: float | None = None) -> None:
        """Close every channel, letting calls still in flight finish for up to ``grace`` seconds."""
        await asyncio.gather(*(channel.close(grace) for channel in self._channels.values()))


async def check_backend_health(channel: grpc.aio.Channel, timeout: float) -> None:  # noqa: ASYNC109
    """Raise :class:`NotReady` unless the backend's standard health service answers SERVING.

    Asks about the server as a whole (service name ``""``), as Kubernetes' gRPC probes do.
    A backend whose servers all report NOT_SERVING already fails on the channel, before the
    question is sent: that reads ``unavailable``, as a stopped backend does.
    """
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
    except grpc.aio.AioRpcError as error:
        raise NotReady(error.code().name.lower()) from error
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        raise NotReady(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status).lower())
