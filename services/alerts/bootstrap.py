"""The alerts service's one composition root (the shape every service shares: :mod:`servicekit.composition`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from retail.alerts.v1 import alerts_service_pb2

from servicekit.clock import Clock, utc_now
from servicekit.composition import Connections, connections, service_server
from servicekit.db import UnitOfWork
from servicekit.eventing import Subscription
from servicekit.grpc_server import GrpcServer
from servicekit.lifecycle import every
from services.alerts.adapters.integration_events import ALERTS_STREAM
from services.alerts.adapters.webhook_client import WebhookClient
from services.alerts.domain.webhooks import RetryPolicy
from services.alerts.entrypoints.consumers import (
    inventory_consumer,
    inventory_handlers,
    marketing_consumer,
    marketing_handlers,
    pricing_consumer,
    pricing_handlers,
    sales_consumer,
    sales_handlers,
    supply_consumer,
    supply_handlers,
)
from services.alerts.entrypoints.grpc_api import AlertsServicer, register
from services.alerts.service_layer.deliveries import Deliveries, Poster
from services.alerts.service_layer.findings import Findings
from services.alerts.service_layer.handling import Handling
from services.alerts.service_layer.projections import Projections
from services.alerts.service_layer.terminal_watch import TerminalWatch
from services.alerts.settings import AlertsSettings

SERVICE_NAME = "alerts"
GRPC_SERVICE = alerts_service_pb2.DESCRIPTOR.services_by_name["AlertsService"].full_name


@dataclass(frozen=True)
class AlertsServices:
    findings: Findings
    projections: Projections
    handling: Handling
    terminal_watch: TerminalWatch
    deliveries: Deliveries


def wire(
    settings: AlertsSettings, unit_of_work: Callable[[], UnitOfWork], post: Poster, *, clock: Clock = utc_now
) -> AlertsServices:
    """The application services over a unit of work, with the settings' policies."""
    pos_silence = timedelta(minutes=settings.pos_silence_minutes)
    findings = Findings(settings.store_hours, pos_silence=pos_silence, clock=clock)
    policy = RetryPolicy(
        max_attempts=settings.delivery_max_attempts, base=timedelta(seconds=settings.delivery_backoff_seconds)
    )
    return AlertsServices(
        findings=findings,
        projections=Projections(pos_silence=pos_silence),
        handling=Handling(unit_of_work, clock=clock),
        terminal_watch=TerminalWatch(
            unit_of_work, findings, allowed=timedelta(minutes=settings.terminal_silence_minutes), clock=clock
        ),
        deliveries=Deliveries(unit_of_work, post, policy=policy, clock=clock),
    )


@dataclass
class AlertsApp:
    server: GrpcServer
    services: AlertsServices
    connected: Connections
    webhook_client: WebhookClient

    async def close(self) -> None:
        await self.webhook_client.close()
        await self.connected.close()


def build(settings: AlertsSettings, *, clock: Clock = utc_now) -> AlertsApp:
    connected = connections(settings, SERVICE_NAME)
    unit_of_work = connected.unit_of_work
    client = WebhookClient(timeout_seconds=settings.delivery_timeout_seconds)
    services = wire(settings, unit_of_work, client.post, clock=clock)
    server = service_server(
        SERVICE_NAME,
        settings,
        connected,
        registrations=[register(AlertsServicer(services.handling))],
        service_names=[GRPC_SERVICE],
        own_stream=ALERTS_STREAM,
        subscriptions=[
            # Until the other contexts' streams exist these retry; nothing else waits for them.
            Subscription(
                inventory_consumer(settings.alerts_inventory_durable),
                inventory_handlers(services.findings, services.projections),
                unit_of_work,
            ),
            Subscription(
                pricing_consumer(settings.alerts_pricing_durable),
                pricing_handlers(services.findings, services.projections),
                unit_of_work,
            ),
            Subscription(
                marketing_consumer(settings.alerts_marketing_durable),
                marketing_handlers(services.findings, services.projections),
                unit_of_work,
            ),
            Subscription(
                supply_consumer(settings.alerts_supply_durable), supply_handlers(services.findings), unit_of_work
            ),
            Subscription(
                sales_consumer(settings.alerts_sales_durable), sales_handlers(services.projections), unit_of_work
            ),
        ],
        jobs=[
            every("silent terminals", settings.terminal_check_seconds, services.terminal_watch.check),
            every(
                "webhook deliveries",
                settings.delivery_poll_seconds,
                services.deliveries.deliver_due,
                again=lambda attempted: attempted > 0,
            ),
        ],
    )
    return AlertsApp(server, services, connected, client)
