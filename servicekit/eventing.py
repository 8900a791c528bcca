"""A service's event plumbing as one background task: relay its outbox, run its consumers.

Every service publishes to a stream of its own and consumes streams other contexts own
(the gateway's SALES journal, say). The relay starts as soon as the service's own stream
is declared; each consumer starts once its durable consumer could be declared, which needs
the other context's stream to exist. Neither holds back the other, both retry until NATS
answers, and none gives up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic

from servicekit.consumer import EventConsumer, EventHandlers, UowT
from servicekit.lifecycle import sleep_unless
from servicekit.messaging import ConsumerSpec, StreamSpec, ensure_consumer, provision
from servicekit.nats_connection import NatsConnection
from servicekit.outbox import OutboxRelay

log = logging.getLogger("servicekit.eventing")

PROVISION_RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class Subscription(Generic[UowT]):
    """One durable consumer of the service and the handlers it runs in a unit of work."""

    spec: ConsumerSpec
    handlers: EventHandlers[UowT]
    unit_of_work: Callable[[], UowT]


def relay_and_consume(
    nats: NatsConnection,
    *,
    database_url: str,
    own_stream: StreamSpec,
    replicas: int,
    subscriptions: Sequence[Subscription[Any]] = (),
    relay_batch: int = 500,
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """The background task relaying ``own_stream``'s outbox (``relay_batch`` rows a pass, see
    :class:`OutboxRelay`) and running ``subscriptions``."""

    async def when_provisioned(stop: asyncio.Event, what: str, step: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        nats.start()
        while not stop.is_set():
            if await nats.wait_connected(1.0):
                try:
                    await step()
                    return True
                except Exception as exc:
                    log.warning("provisioning failed; retrying", extra={"what": what, "error": str(exc)})
            await sleep_unless(stop, PROVISION_RETRY_SECONDS)
        return False

    async def relay(stop: asyncio.Event) -> None:
        async def declare_stream() -> None:
            await provision(nats.client.jetstream(), [own_stream], [], replicas=replicas)

        if await when_provisioned(stop, f"{own_stream.name} stream", declare_stream):
            await OutboxRelay(database_url, nats.client.jetstream(), batch_size=relay_batch).run(stop)

    async def consume(stop: asyncio.Event, subscription: Subscription[Any]) -> None:
        async def declare_consumer() -> None:
            await ensure_consumer(nats.client.jetstream(), subscription.spec)

        what = f"{subscription.spec.stream} consumer {subscription.spec.durable}"
        if await when_provisioned(stop, what, declare_consumer):
            consumer = EventConsumer(
                nats.client.jetstream(),
                subscription.spec,
                subscription.handlers,
                subscription.unit_of_work,
                batch_size=subscription.spec.fetch_batch,
            )
            await consumer.run(stop)

    async def run(stop: asyncio.Event) -> None:
        await asyncio.gather(relay(stop), *(consume(stop, subscription) for subscription in subscriptions))

    return run
