"""API clients for the local stack: app back ends, a POS client per till, supplier users, staff.

Each client's binding is what the gateway enforces: a till writes only its store's sales,
a supplier user reads only its supplier's data, store staff see only their store.
"""

from __future__ import annotations

from demodata._random import hashed_bytes
from demodata.model import ClientKind, DemoClient, Location, StaffRole, Supplier


def demo_secret(seed: int, client_id: str) -> str:
    """A reproducible secret for a demo client: local development only, never production."""
    return "demo-" + hashed_bytes(seed, "client-secret", client_id, size=16).hex()


def build_clients(seed: int, stores: tuple[Location, ...], suppliers: tuple[Supplier, ...]) -> tuple[DemoClient, ...]:
    """Ids: ``APP-BACKEND``, ``MINIPROGRAM-BACKEND``, ``HQ-OPS01``, the tills (``S001-POS01``),
    ``S001-MGR01`` and ``S001-GUIDE01`` per store, ``SUP001-USER01`` per supplier."""

    def client(
        client_id: str,
        kind: ClientKind,
        display_name: str,
        *,
        store_id: str | None = None,
        supplier_id: str | None = None,
        staff_role: StaffRole | None = None,
    ) -> DemoClient:
        return DemoClient(
            client_id, kind, display_name, demo_secret(seed, client_id), store_id, supplier_id, staff_role
        )

    clients = [
        client("APP-BACKEND", ClientKind.APP_BACKEND, "禾悦到家 App 后端"),
        client("MINIPROGRAM-BACKEND", ClientKind.APP_BACKEND, "禾悦到家小程序后端"),
        client("HQ-OPS01", ClientKind.STAFF, "总部运营", staff_role=StaffRole.HEADQUARTERS),
    ]
    for store in stores:
        store_id = store.location_id
        clients.extend(
            client(terminal_id, ClientKind.POS_TERMINAL, f"{store.name} 收银机{terminal_id[-2:]}", store_id=store_id)
            for terminal_id in store.pos_terminal_ids
        )
        clients.append(
            client(
                f"{store_id}-MGR01",
                ClientKind.STAFF,
                f"{store.name} 店长",
                store_id=store_id,
                staff_role=StaffRole.STORE_MANAGER,
            )
        )
        clients.append(
            client(
                f"{store_id}-GUIDE01",
                ClientKind.STAFF,
                f"{store.name} 导购",
                store_id=store_id,
                staff_role=StaffRole.STORE_GUIDE,
            )
        )
    clients.extend(
        client(
            f"{supplier.supplier_id}-USER01",
            ClientKind.SUPPLIER_USER,
            f"{supplier.name} 门户账号",
            supplier_id=supplier.supplier_id,
        )
        for supplier in suppliers
    )
    return tuple(clients)
