"""`python -m services.supply`: the supply gRPC service."""

from __future__ import annotations

import sys

from servicekit.grpc_server import run_service
from services.supply.bootstrap import SERVICE_NAME, build
from services.supply.settings import SupplySettings


def main() -> int:
    return run_service(SERVICE_NAME, SupplySettings, build)


if __name__ == "__main__":
    sys.exit(main())
