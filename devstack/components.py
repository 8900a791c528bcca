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

    @property
    def database(self) -> str:
        return f"retail_{self.name}"


GATEWAY = Component(
    name="gateway",
    module="gateway",
    migrate_module="gateway.migrate",
    protocol="http",
    demo_loader="gateway.demo:load_demo",
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

# Services come first so that the gateway finds its backends when it starts.
SERVICES: tuple[Component, ...] = (INVENTORY, MEMBER)
COMPONENTS: tuple[Component, ...] = (*SERVICES, GATEWAY)
