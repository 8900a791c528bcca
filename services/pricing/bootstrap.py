"""The pricing service's one composition root: real dependencies wired together.

Nothing connects at import time; :func:`build` returns the server and what it holds, and
:func:`wire` is the part that tests and tools reuse with a unit of work and clock of theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from retail.pricing.v1 import pricing_service_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.eventing import Subscription, relay_and_consume
from servicekit.grpc_server import GrpcServer, database_and_broker_checks
from servicekit.lifecycle import every
from servicekit.maintenance import kit_maintenance
from servicekit.nats_connection import NatsConnection
from services.pricing.adapters.integration_events import PRICING_STREAM
from services.pricing.entrypoints.grpc_api import PricingServicer, register
from services.pricing.entrypoints.inventory_consumer import inventory_consumer, inventory_handlers
from services.pricing.service_layer.handlers import PricingHandlers
from services.pricing.service_layer.labels import LabelPolicy, LabelSync, Stations
from services.pricing.service_layer.markdowns import Markdowns
from services.pricing.service_layer.pricing import Pricing
from services.pricing.service_layer.schedule import Scheduler
from services.pricing.settings import PricingSettings

log = logging.getLogger("pricing")
SERVICE_NAME = "pricing"
GRPC_SERVICE = pricing_service_pb2.DESCRIPTOR.services_by_name["PricingService"].full_name
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class PricingServices:
    handlers: PricingHandlers
    pricing: Pricing
    scheduler: Scheduler
    labels: LabelSync
    stations: Stations
    markdowns: Markdowns


def label_policy(settings: PricingSettings) -> LabelPolicy:
    return LabelPolicy(
        retry_base_seconds=settings.label_retry_base_seconds,
        retry_max_seconds=settings.label_retry_max_seconds,
        max_attempts=settings.label_max_attempts,
        given_up_retry_seconds=settings.label_given_up_retry_seconds,
        ack_timeout_seconds=settings.label_ack_timeout_seconds,
        ack_deadline_seconds=settings.label_ack_deadline_seconds,
        station_timeout_seconds=settings.label_station_timeout_seconds,
        push_batch=settings.label_push_batch,
        api_key=settings.label_station_api_key,
    )


def wire(
    settings: PricingSettings, unit_of_work: Callable[[], UnitOfWork], *, clock: Clock = lambda: datetime.now(UTC)
) -> PricingServices:
    """The application services over a unit of work, with the settings' policies."""
    pricing = Pricing(unit_of_work, min_margin=settings.min_margin, clock=clock)
    policy = label_policy(settings)
    stations = Stations(policy)
    labels = LabelSync(unit_of_work, stations, policy, clock=clock)
    markdowns = Markdowns(unit_of_work, pricing, min_margin=settings.min_margin, clock=clock)
    return PricingServices(
        handlers=PricingHandlers(unit_of_work, pricing, labels, markdowns),
        pricing=pricing,
        scheduler=Scheduler(unit_of_work, batch=settings.schedule_batch, clock=clock),
        labels=labels,
        stations=stations,
        markdowns=markdowns,
    )


@dataclass
class PricingApp:
    server: GrpcServer
    services: PricingServices
    engine: AsyncEngine
    nats: NatsConnection

    async def close(self) -> None:
        await self.services.stations.close()
        await self.nats.close()
        await self.engine.dispose()


def build(settings: PricingSettings, *, clock: Clock = lambda: datetime.now(UTC)) -> PricingApp:
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        application_name=SERVICE_NAME,
    )
    unit_of_work = units_of_work(engine)

    services = wire(settings, unit_of_work, clock=clock)
    nats = NatsConnection(settings.nats_url, name=SERVICE_NAME)

    labels = services.labels
    server = GrpcServer(
        name=SERVICE_NAME,
        port=settings.grpc_port,
        host=settings.grpc_host,
        registrations=[register(PricingServicer(services.handlers, services.pricing, labels, services.markdowns))],
        service_names=[GRPC_SERVICE],
        readiness_checks=database_and_broker_checks(engine, nats),
        background=[
            relay_and_consume(
                nats,
                database_url=settings.database_url,
                own_stream=PRICING_STREAM,
                replicas=settings.jetstream_replicas,
                subscriptions=[
                    Subscription(
                        inventory_consumer(settings.inventory_consumer_durable),
                        inventory_handlers(services.markdowns),
                        unit_of_work,
                    )
                ],
            ),
            every("price schedule", settings.schedule_poll_seconds, services.scheduler.run_due),
            every(
                "label push",
                settings.schedule_poll_seconds,
                labels.push_due,
                again=lambda pushed: pushed >= settings.label_push_batch,
            ),
            every("label acknowledgements", settings.label_poll_seconds, labels.poll_sent),
            every("label status", settings.label_status_seconds, labels.refresh_status),
            kit_maintenance(engine),
        ],
        shutdown_grace=settings.shutdown_grace_seconds,
    )
    return PricingApp(server, services, engine, nats)
