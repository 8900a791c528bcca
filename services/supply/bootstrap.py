"""The supply service's one composition root (the shape every service shares: :mod:`servicekit.composition`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from retail.supply.v1 import supply_service_pb2

from servicekit.clock import Clock, utc_now
from servicekit.composition import Connections, connections, service_server
from servicekit.db import UnitOfWork
from servicekit.eventing import Subscription
from servicekit.grpc_server import GrpcServer
from services.supply.adapters.integration_events import SUPPLY_STREAM
from services.supply.entrypoints.consumers import (
    catalogue_consumer,
    catalogue_handlers,
    replenishment_consumer,
    replenishment_handlers,
)
from services.supply.entrypoints.grpc_api import SupplyServicer, register
from services.supply.entrypoints.settlement_consumers import (
    sales_consumer,
    sales_handlers,
    settlement_consumer,
    settlement_handlers,
)
from services.supply.service_layer.accruals import Accruals
from services.supply.service_layer.purchase_orders import PurchaseOrders
from services.supply.service_layer.receiving import Receiving
from services.supply.service_layer.scorecards import Scorecards
from services.supply.service_layer.statements import Statements
from services.supply.service_layer.suppliers import Suppliers
from services.supply.settings import SupplySettings

SERVICE_NAME = "supply"
GRPC_SERVICE = supply_service_pb2.DESCRIPTOR.services_by_name["SupplyService"].full_name


@dataclass(frozen=True)
class SupplyServices:
    suppliers: Suppliers
    purchase_orders: PurchaseOrders
    receiving: Receiving
    scorecards: Scorecards
    accruals: Accruals
    statements: Statements


def wire(settings: SupplySettings, unit_of_work: Callable[[], UnitOfWork], *, clock: Clock = utc_now) -> SupplyServices:
    """The application services over a unit of work, with the settings' policies."""
    return SupplyServices(
        suppliers=Suppliers(unit_of_work, clock=clock),
        purchase_orders=PurchaseOrders(unit_of_work, clock=clock),
        receiving=Receiving(unit_of_work, clock=clock),
        scorecards=Scorecards(unit_of_work, clock=clock),
        accruals=Accruals(unit_of_work, clock=clock),
        statements=Statements(unit_of_work, clock=clock),
    )


@dataclass
class SupplyApp:
    server: GrpcServer
    services: SupplyServices
    connected: Connections

    async def close(self) -> None:
        await self.connected.close()


def build(settings: SupplySettings, *, clock: Clock = utc_now) -> SupplyApp:
    connected = connections(settings, SERVICE_NAME)
    unit_of_work = connected.unit_of_work
    services = wire(settings, unit_of_work, clock=clock)
    servicer = SupplyServicer(
        suppliers=services.suppliers,
        purchase_orders=services.purchase_orders,
        receiving=services.receiving,
        scorecards=services.scorecards,
        accruals=services.accruals,
        statements=services.statements,
        clock=clock,
    )
    server = service_server(
        SERVICE_NAME,
        settings,
        connected,
        registrations=[register(servicer)],
        service_names=[GRPC_SERVICE],
        own_stream=SUPPLY_STREAM,
        subscriptions=[
            # Until the pricing and inventory streams exist these retry; nothing else waits for them.
            Subscription(
                catalogue_consumer(settings.supply_catalogue_durable),
                catalogue_handlers(services.suppliers),
                unit_of_work,
            ),
            Subscription(
                replenishment_consumer(settings.supply_replenishment_durable),
                replenishment_handlers(services.purchase_orders),
                unit_of_work,
            ),
            Subscription(
                sales_consumer(settings.supply_sales_durable), sales_handlers(services.accruals), unit_of_work
            ),
            Subscription(
                settlement_consumer(settings.supply_settlement_durable),
                settlement_handlers(services.accruals),
                unit_of_work,
            ),
        ],
    )
    return SupplyApp(server, services, connected)
