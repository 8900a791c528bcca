"""What a running gateway holds on to, and how route code reaches it.

Built by :mod:`gateway.bootstrap` when the app starts and closed when it stops; a route
declares ``resources: Resources`` to get it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import grpc
from fastapi import Depends, Request
from retail.alerts.v1 import alerts_service_pb2_grpc
from retail.inventory.v1 import inventory_service_pb2, inventory_service_pb2_grpc
from retail.marketing.v1 import marketing_service_pb2_grpc
from retail.member.v1 import member_service_pb2, member_service_pb2_grpc
from retail.pricing.v1 import pricing_service_pb2, pricing_service_pb2_grpc
from retail.supply.v1 import supply_service_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.backends import BackendChannels
from gateway.adapters.client_registry import ClientRegistry
from gateway.adapters.coalesced_calls import (
    CoalescedCalls,
    basket_prices,
    member_resolutions,
    stock_reservations,
)
from gateway.adapters.sales_journal import SalesJournal
from gateway.http import problems
from gateway.idempotency.records import IdempotencyRecords
from gateway.operations.readiness import Readiness
from gateway.security.authentication import Authenticator
from gateway.security.rate_limits import RateLimiter
from gateway.settings import GatewaySettings
from servicekit.nats_connection import NatsConnection

StubT = TypeVar("StubT")
CallsT = TypeVar("CallsT")


@dataclass(frozen=True)
class GatewayResources:
    """The gateway's connections and the adapters built on them."""

    settings: GatewaySettings
    engine: AsyncEngine
    nats: NatsConnection
    backends: BackendChannels
    clients: ClientRegistry
    readiness: Readiness
    authenticator: Authenticator
    rate_limiter: RateLimiter
    idempotency: IdempotencyRecords
    sales_journal: SalesJournal
    # Generated stubs by (backend, stub class): building one creates a callable per RPC of
    # the service, too much to do on every request; the channels live as long as this.
    _stubs: dict[tuple[str, Any], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def grpc_deadline(self) -> float:
        """Seconds every backend call may take (the channels apply it to every call that names none)."""
        return self.settings.grpc_deadline_seconds

    def backend(self, name: str, stub: Callable[[grpc.aio.Channel], StubT]) -> StubT:
        """The generated ``stub`` of backend ``name`` (``"inventory"``), its calls bounded by the
        backend deadline; 503 when this gateway is not configured with that backend."""
        cached: StubT | None = self._stubs.get((name, stub))
        if cached is not None:
            return cached
        try:
            channel = self.backends[name]
        except KeyError:
            raise problems.ProblemError(problems.SERVICE_UNAVAILABLE, f"the {name} service is not configured") from None
        made = self._stubs[(name, stub)] = stub(channel)
        return made

    @property
    def inventory_service(self) -> inventory_service_pb2_grpc.InventoryServiceAsyncStub:
        return self.backend("inventory", inventory_service_pb2_grpc.InventoryServiceStub)

    @property
    def member_service(self) -> member_service_pb2_grpc.MemberServiceAsyncStub:
        return self.backend("member", member_service_pb2_grpc.MemberServiceStub)

    @property
    def member_resolutions(self) -> CoalescedCalls[member_service_pb2.Identity, str]:
        """Identity → member id, coalesced into ``ResolveMembers`` calls (one per gateway, like its stubs)."""
        return self._coalesced("member", member_resolutions, self.member_service)

    @property
    def stock_reservations(
        self,
    ) -> CoalescedCalls[inventory_service_pb2.ReserveStockRequest, inventory_service_pb2.Reservation]:
        """``ReserveStock`` request → reservation, coalesced into ``ReserveStocks`` calls."""
        return self._coalesced("inventory", stock_reservations, self.inventory_service)

    def _coalesced(self, name: str, make: Callable[[StubT], CallsT], stub: StubT) -> CallsT:
        cached: CallsT | None = self._stubs.get((name, make))
        if cached is None:
            cached = self._stubs[(name, make)] = make(stub)
        return cached

    @property
    def pricing_service(self) -> pricing_service_pb2_grpc.PricingServiceAsyncStub:
        return self.backend("pricing", pricing_service_pb2_grpc.PricingServiceStub)

    @property
    def basket_prices(
        self,
    ) -> CoalescedCalls[pricing_service_pb2.PriceBasketRequest, pricing_service_pb2.PriceBasketResponse]:
        """A basket → its prices, coalesced into ``PriceBaskets`` calls."""
        return self._coalesced("pricing", basket_prices, self.pricing_service)

    @property
    def marketing_service(self) -> marketing_service_pb2_grpc.MarketingServiceAsyncStub:
        return self.backend("marketing", marketing_service_pb2_grpc.MarketingServiceStub)

    @property
    def supply_service(self) -> supply_service_pb2_grpc.SupplyServiceAsyncStub:
        return self.backend("supply", supply_service_pb2_grpc.SupplyServiceStub)

    @property
    def alerts_service(self) -> alerts_service_pb2_grpc.AlertsServiceAsyncStub:
        return self.backend("alerts", alerts_service_pb2_grpc.AlertsServiceStub)


def resources_of(request: Request) -> GatewayResources:
    """The running gateway's resources; 503 ``not-ready`` while it starts or stops."""
    resources = getattr(request.app.state, "resources", None)
    if not isinstance(resources, GatewayResources):
        raise problems.ProblemError(problems.NOT_READY, "the gateway is starting or stopping; retry shortly")
    return resources


async def gateway_resources(request: Request) -> GatewayResources:
    # async: a plain function dependency would be run in a worker thread on every request.
    return resources_of(request)


Resources = Annotated[GatewayResources, Depends(gateway_resources)]
