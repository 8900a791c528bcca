"""The inventory service's one composition root (the shape every service shares: :mod:`servicekit.composition`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from retail.inventory.v1 import inventory_service_pb2

from servicekit.composition import Connections, connections, service_server
from servicekit.eventing import Subscription
from servicekit.grpc_server import GrpcServer
from servicekit.lifecycle import every
from services.inventory.entrypoints.catalogue_consumer import catalogue_consumer, catalogue_handlers
from services.inventory.entrypoints.grpc_api import InventoryServicer, register
from services.inventory.entrypoints.sales_consumer import INVENTORY_STREAM, SALES_CONSUMER, sales_handlers
from services.inventory.entrypoints.supply_consumer import supply_consumer, supply_handlers
from services.inventory.entrypoints.wire import STORED_REPLIES
from services.inventory.service_layer.command_handlers import InventoryCommands
from services.inventory.service_layer.handlers import InventoryService
from services.inventory.service_layer.replenishment import DemandFits, PlanningPolicy, ReplenishmentPlanner
from services.inventory.service_layer.sales_anomalies import SalesAnomalyDetector
from services.inventory.service_layer.supply import SupplyIntake
from services.inventory.service_layer.transfers import TransferSaga
from services.inventory.settings import InventorySettings

log = logging.getLogger("inventory")
SERVICE_NAME = "inventory"
GRPC_SERVICE = inventory_service_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name


@dataclass
class InventoryApp:
    server: GrpcServer
    service: InventoryService
    connected: Connections
    planner: ReplenishmentPlanner
    sales_anomalies: SalesAnomalyDetector
    fit_executor: ThreadPoolExecutor

    async def close(self) -> None:
        self.fit_executor.shutdown(wait=False, cancel_futures=True)
        await self.connected.close()


def build(settings: InventorySettings) -> InventoryApp:
    connected = connections(settings, SERVICE_NAME)
    unit_of_work = connected.unit_of_work
    service = InventoryService(unit_of_work, STORED_REPLIES.reservation, max_batch=settings.reservation_batch_max)
    commands = InventoryCommands(unit_of_work, service, TransferSaga(), STORED_REPLIES)
    # Demand fits take seconds of CPU: on threads of their own, never on the event loop.
    fit_executor = ThreadPoolExecutor(max_workers=settings.forecast_workers, thread_name_prefix="demand-fit")
    planner = ReplenishmentPlanner(
        unit_of_work,
        DemandFits(unit_of_work, fit_executor),
        PlanningPolicy(
            default_lead_time_days=settings.replenishment_lead_time_days,
            review_period_days=settings.replenishment_review_period_days,
            service_level=settings.replenishment_service_level,
            overstock_cover_days=settings.overstock_cover_days,
        ),
    )
    # Each closed day is judged against the fit made as of that day: a cache of its own, so
    # replenishment's fit of today is not thrown out for it every run.
    sales_anomalies = SalesAnomalyDetector(unit_of_work, DemandFits(unit_of_work, fit_executor))

    server = service_server(
        SERVICE_NAME,
        settings,
        connected,
        registrations=[register(InventoryServicer(commands, service, planner=planner))],
        service_names=[GRPC_SERVICE],
        own_stream=INVENTORY_STREAM,
        subscriptions=[
            Subscription(SALES_CONSUMER, sales_handlers(service), unit_of_work),
            # Until pricing has declared its stream this one retries; nothing else waits for it.
            Subscription(
                catalogue_consumer(settings.catalogue_consumer_durable), catalogue_handlers(service), unit_of_work
            ),
            # Likewise until supply has declared its stream.
            Subscription(
                supply_consumer(settings.supply_consumer_durable), supply_handlers(SupplyIntake()), unit_of_work
            ),
        ],
        jobs=[
            every("reservation expiry", settings.reservation_sweep_seconds, service.expire_due, again=bool),
            # Every selling location planned each interval (the first run after one interval), then its
            # closed days not yet judged for sales anomalies; 0 is off.
            every(
                "replenishment run",
                settings.replenishment_interval_seconds,
                _replenishment_run(planner, sales_anomalies),
                first_run_now=False,
            ),
        ],
    )
    return InventoryApp(server, service, connected, planner, sales_anomalies, fit_executor)


def _replenishment_run(
    planner: ReplenishmentPlanner, sales_anomalies: SalesAnomalyDetector
) -> Callable[[], Awaitable[None]]:
    async def step() -> None:
        report = await planner.run()
        log.info(
            "replenishment run finished",
            extra={
                "locations": len(report.locations),
                "suggestions_published": report.suggestions_published,
                "alerts_published": report.alerts_published,
                "skipped": report.skipped,
            },
        )
        anomalies = await sales_anomalies.run()
        log.info(
            "sales anomaly run finished",
            extra={
                "days_evaluated": len(anomalies.evaluated),
                "anomalies_raised": len(anomalies.raised),
                "skipped": anomalies.skipped,
            },
        )

    return step
