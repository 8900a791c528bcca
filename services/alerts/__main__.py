"""`python -m services.alerts`: the alerts gRPC service."""

from __future__ import annotations

import sys

from servicekit.grpc_server import run_service
from services.alerts.bootstrap import SERVICE_NAME, build
from services.alerts.settings import AlertsSettings


def main() -> int:
    return run_service(SERVICE_NAME, AlertsSettings, build)


if __name__ == "__main__":
    sys.exit(main())
