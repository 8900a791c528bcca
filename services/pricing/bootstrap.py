"""The pricing service's one composition root (the shape every service shares: :mod:`servicekit.composition`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from retail.pricing.v1 import pricing_service_pb2

from servicekit.clock import Clock, utc_now
from servicekit.composition import Connections, connections, service_server
from servicekit.db import UnitOfWork
from servicekit.eventing import Subscription
from servicekit.grpc_server import GrpcServer
from servicekit.lifecycle import every
from services.pricing.adapters.integration_events import PRICING_STREAM
from services.pricing.adapters.price_read_cache import PriceReadCache
from services.pricing.entrypoints.grpc_api import PricingServicer, register
from services.pricing.entrypoints.inventory_consumer import inventory_consumer, inventory_handlers
from services.pricing.service_layer.handlers import PricingHandlers
from services.pricing.service_layer.labels import LabelPolicy, LabelSync, Stations
from services.pricing.service_layer.markdowns import Markdowns
from services.pricing.service_layer.pricing import Pricing
from services.pricing.service_layer.schedule import Scheduler
from services.pricing.settings import PricingSettings

SERVICE_NAME = "pricing"
GRPC_SERVICE = pricing_service_pb2.DESCRIPTOR.services_by_name["PricingService"].full_name


@dataclass(frozen=True)
class PricingServices:
    handlers: PricingHandlers
    pricing: Pricing
    scheduler: Scheduler
    labels: LabelSync
    stations: Stations
    markdowns: Markdowns
    labels_due: asyncio.Event


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
        push_rounds=settings.label_push_rounds,
        api_key=settings.label_station_api_key,
    )


def wire(
    settings: PricingSettings, unit_of_work: Callable[[], UnitOfWork], *, clock: Clock = utc_now
) -> PricingServices:
    """The application services over a unit of work, with the settings' policies."""
    pricing = Pricing(
        unit_of_work,
        min_margin=settings.min_margin,
        clock=clock,
        read_cache=PriceReadCache(max_skus=settings.price_cache_skus),
    )
    policy = label_policy(settings)
    stations = Stations(policy)
    labels = LabelSync(unit_of_work, stations, policy, clock=clock)
    labels_due = asyncio.Event()  # set when the schedule gave labels new content (see build)
    markdowns = Markdowns(unit_of_work, pricing, min_margin=settings.min_margin, clock=clock)
    return PricingServices(
        handlers=PricingHandlers(unit_of_work, pricing, labels, markdowns),
        pricing=pricing,
        scheduler=Scheduler(unit_of_work, batch=settings.schedule_batch, clock=clock, on_changed=labels_due.set),
        labels_due=labels_due,
        labels=labels,
        stations=stations,
        markdowns=markdowns,
    )


@dataclass
class PricingApp:
    server: GrpcServer
    services: PricingServices
    connected: Connections

    async def close(self) -> None:
        await self.services.stations.close()
        await self.connected.close()


def build(settings: PricingSettings, *, clock: Clock = utc_now) -> PricingApp:
    connected = connections(settings, SERVICE_NAME)
    services = wire(settings, connected.unit_of_work, clock=clock)
    labels = services.labels
    server = service_server(
        SERVICE_NAME,
        settings,
        connected,
        registrations=[register(PricingServicer(services.handlers, services.pricing, labels, services.markdowns))],
        service_names=[GRPC_SERVICE],
        own_stream=PRICING_STREAM,
        relay_batch=settings.outbox_relay_batch,
        subscriptions=[
            Subscription(
                inventory_consumer(settings.inventory_consumer_durable),
                inventory_handlers(services.markdowns),
                connected.unit_of_work,
            )
        ],
        jobs=[
            every(
                "price schedule",
                settings.schedule_poll_seconds,
                services.scheduler.run_due,
                due_in=services.scheduler.seconds_until_due,
            ),
            every(
                "label push",
                settings.schedule_poll_seconds,
                labels.push_due,
                wake=services.labels_due,
            ),
            every("label acknowledgements", settings.label_poll_seconds, labels.poll_sent),
            every("label status", settings.label_status_seconds, labels.refresh_status),
        ],
    )
    return PricingApp(server, services, connected)
