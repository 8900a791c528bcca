"""The processes the local stack runs. Each service adds its entry here when it is built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Component:
    """One deployable process of the platform, as the local stack starts it."""

    name: str
    # `python -m <module>` runs it; `python -m <migrate_module>` migrates its database.
    module: str
    migrate_module: str
    protocol: Literal["http", "grpc"]
    # "package.module:function" — an async loader of this component's part of the demo data.
    demo_loader: str | None = None
    # An HTTP component is ready once this path answers 200.
    ready_path: str = "/readyz"

    @property
    def database(self) -> str:
        return f"retail_{self.name}"


GATEWAY = Component(
    name="gateway",
    module="gateway",
    migrate_module="gateway.migrate",
    protocol="http",
    demo_loader="gateway.operations.demo:load_demo",
)

INVENTORY = Component(
    name="inventory",
    module="services.inventory",
    migrate_module="services.inventory.migrate",
    protocol="grpc",
    demo_loader="services.inventory.demo:load_demo",
)

MEMBER = Component(
    name="member",
    module="services.member",
    migrate_module="services.member.migrate",
    protocol="grpc",
    demo_loader="services.member.demo:load_demo",
)

PRICING = Component(
    name="pricing",
    module="services.pricing",
    migrate_module="services.pricing.migrate",
    protocol="grpc",
    demo_loader="services.pricing.demo:load_demo",
)

MARKETING = Component(
    name="marketing",
    module="services.marketing",
    migrate_module="services.marketing.migrate",
    protocol="grpc",
    demo_loader="services.marketing.demo:load_demo",
)

SUPPLY = Component(
    name="supply",
    module="services.supply",
    migrate_module="services.supply.migrate",
    protocol="grpc",
    demo_loader="services.supply.demo:load_demo",
)

# The operations feed: no demo data of its own, it learns everything from the others' events
# (the demo loads' stock alerts, label syncs given up and journal entries raise its first alerts).
ALERTS = Component(
    name="alerts",
    module="services.alerts",
    migrate_module="services.alerts.migrate",
    protocol="grpc",
)

# Services come first so that the gateway finds its backends when it starts.
SERVICES: tuple[Component, ...] = (INVENTORY, MEMBER, PRICING, MARKETING, SUPPLY, ALERTS)
COMPONENTS: tuple[Component, ...] = (*SERVICES, GATEWAY)

# Not part of the platform: a batch shelf-label station simulator standing in for store
# S001's hardware, so that `make run` shows labels syncing (no database, started with
# `python -m tools.esl_simulators batch ...` by the stack; the pricing demo links its labels).
LABEL_STATION = Component(
    name="label-station",
    module="tools.esl_simulators",
    migrate_module="",
    protocol="http",
    ready_path="/api/v1/labels",
)

# The operations console: a web application for staff, a client of the gateway's HTTP API
# only (no database, no NATS); the stack starts it after the gateway.
CONSOLE = Component(
    name="console",
    module="console",
    migrate_module="",
    protocol="http",
    ready_path="/healthz",
)
