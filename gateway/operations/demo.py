"""The gateway's part of the demo retailer: its API client registrations.

Called by the local stack (`make run`) only. The demo secrets are derived from the demo
seed, so they are public by construction: they exist for the local development stack
and are never registered in any other environment.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from demodata import DemoRetailer
from demodata.model import ClientKind as DemoClientKind
from demodata.model import DemoClient
from gateway.adapters.client_registry import ClientRegistry
from gateway.domain.clients import ClientKind, ClientRegistration, StaffRole, hash_client_secret
from gateway.domain.scopes import default_scopes
from servicekit.db import create_engine
from servicekit.settings import Environment

_KIND = {
    DemoClientKind.APP_BACKEND: ClientKind.APP,
    DemoClientKind.POS_TERMINAL: ClientKind.POS_TERMINAL,
    DemoClientKind.SUPPLIER_USER: ClientKind.SUPPLIER_USER,
    DemoClientKind.STAFF: ClientKind.STAFF,
}


def registration_for(client: DemoClient, secret_hash: str) -> ClientRegistration:
    kind = _KIND[client.kind]
    staff_role = StaffRole(client.staff_role.value) if client.staff_role else None
    return ClientRegistration(
        client_id=client.client_id,
        kind=kind,
        display_name=client.display_name,
        secret_hash=secret_hash,
        scopes=default_scopes(kind, staff_role),
        store_id=client.store_id,
        # A till's client id is its terminal id (S001-POS01).
        terminal_id=client.client_id if kind is ClientKind.POS_TERMINAL else None,
        supplier_id=client.supplier_id,
        staff_role=staff_role,
    )


def credential(client: DemoClient) -> dict[str, str]:
    binding = {"store_id": client.store_id, "supplier_id": client.supplier_id, "staff_role": client.staff_role}
    return {
        "client_id": client.client_id,
        "client_secret": client.secret,
        "kind": _KIND[client.kind].value,
        **{key: str(value) for key, value in binding.items() if value is not None},
    }


async def load_demo(database_url: str, retailer: DemoRetailer, state_dir: Path) -> dict[str, Any]:
    """Register every demo client (idempotent) and return one credential per kind of client."""
    environment = Environment(os.environ.get("APP_ENV", "local"))
    if not environment.allows_dev_secrets:
        raise RuntimeError(f"demo clients have public secrets; refusing to register them with APP_ENV={environment}")
    engine = create_engine(database_url, pool_size=2, max_overflow=0, application_name="demo-loader")
    registry = ClientRegistry(engine)
    try:
        for client in retailer.clients:
            # scrypt is deliberately slow; keep the event loop free while hashing.
            secret_hash = await asyncio.to_thread(hash_client_secret, client.secret)
            await registry.register(registration_for(client, secret_hash))
    finally:
        await engine.dispose()
    examples: dict[str, dict[str, str]] = {}
    for client in retailer.clients:
        label = client.staff_role.value if client.staff_role else _KIND[client.kind].value
        examples.setdefault(label, credential(client))
    return {
        "clients_registered": len(retailer.clients),
        "credentials": examples,
        "note": "local-stack demo secrets; `python -m demodata --jsonl DIR` writes every demo client",
    }
