"""`python -m services.inventory`: the inventory gRPC service."""

from __future__ import annotations

import sys

from servicekit.grpc_server import run_service
from services.inventory.bootstrap import SERVICE_NAME, build
from services.inventory.settings import InventorySettings


def main() -> int:
    return run_service(SERVICE_NAME, InventorySettings, build)


if __name__ == "__main__":
    sys.exit(main())
