"""`python -m services.pricing`: the pricing gRPC service."""

from __future__ import annotations

import sys

from servicekit.grpc_server import run_service
from services.pricing.bootstrap import SERVICE_NAME, build
from services.pricing.settings import PricingSettings


def main() -> int:
    return run_service(SERVICE_NAME, PricingSettings, build)


if __name__ == "__main__":
    sys.exit(main())
