"""What every service's composition root assembles the same way: its connections and its server.

A service's ``bootstrap.py`` stays its one composition root: it calls :func:`connections`
for the engine, its units of work and the NATS connection (nothing connects yet), builds its
own handlers over them, and hands :func:`service_server` what is its own — the gRPC
registrations, its stream, the subscriptions it consumes and its periodic jobs. The server
around them (health answering for PostgreSQL and NATS, the outbox relay and consumers as one
task, the kit tables' pruning) is the same in every service, so it is written once here.

Nothing in a ``bootstrap.py`` connects at import time. Its ``build(settings)`` returns the
server and what it holds (connections, application services, anything it must close). Where
tests and tools need the application services without a server, its
``wire(settings, unit_of_work, …, clock=…)`` is that part alone, over a unit of work and a
clock of theirs, with the settings' policies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.eventing import Subscription, relay_and_consume
from servicekit.grpc_server import BackgroundTask, GrpcServer, database_and_broker_checks
from servicekit.maintenance import kit_maintenance
from servicekit.messaging import StreamSpec
from servicekit.nats_connection import NatsConnection
from servicekit.settings import GrpcServiceSettings


@dataclass(frozen=True)
class Connections:
    """A service's database engine, the units of work over it, and its NATS connection."""

    engine: AsyncEngine
    unit_of_work: Callable[[], UnitOfWork]
    nats: NatsConnection

    async def close(self) -> None:
        """After the server stopped: the NATS connection first (its last acks), then the pool."""
        await self.nats.close()
        await self.engine.dispose()


def connections(settings: GrpcServiceSettings, name: str) -> Connections:
    """The engine (pooled as the settings say, named ``name`` in PostgreSQL) and the NATS connection;
    neither connects until it is first used or started."""
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        application_name=name,
    )
    return Connections(engine, units_of_work(engine), NatsConnection(settings.nats_url, name=name))


def service_server(
    name: str,
    settings: GrpcServiceSettings,
    connected: Connections,
    *,
    registrations: Sequence[Callable[[grpc.aio.Server], None]],
    service_names: Sequence[str],
    own_stream: StreamSpec,
    subscriptions: Sequence[Subscription[Any]],
    jobs: Sequence[BackgroundTask] = (),
    relay_batch: int = 500,
) -> GrpcServer:
    """The service's gRPC server: ready while PostgreSQL and NATS answer, relaying ``own_stream``'s
    outbox (``relay_batch`` rows a pass) and running ``subscriptions`` in one task, ``jobs`` beside
    it, and the kit tables pruned."""
    return GrpcServer(
        name=name,
        port=settings.grpc_port,
        host=settings.grpc_host,
        registrations=registrations,
        service_names=service_names,
        readiness_checks=database_and_broker_checks(connected.engine, connected.nats),
        background=[
            relay_and_consume(
                connected.nats,
                database_url=settings.database_url,
                own_stream=own_stream,
                replicas=settings.jetstream_replicas,
                subscriptions=subscriptions,
                relay_batch=relay_batch,
            ),
            *jobs,
            kit_maintenance(connected.engine),
        ],
        shutdown_grace=settings.shutdown_grace_seconds,
    )
