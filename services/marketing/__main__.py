"""`python -m services.marketing`: the marketing gRPC service."""

from __future__ import annotations

import sys

from servicekit.grpc_server import run_service
from services.marketing.bootstrap import SERVICE_NAME, build
from services.marketing.settings import MarketingSettings


def main() -> int:
    return run_service(SERVICE_NAME, MarketingSettings, build)


if __name__ == "__main__":
    sys.exit(main())
