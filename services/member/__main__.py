"""`python -m services.member`: the member gRPC service."""

from __future__ import annotations

import sys

from servicekit.grpc_server import run_service
from services.member.bootstrap import SERVICE_NAME, build
from services.member.settings import MemberSettings


def main() -> int:
    return run_service(SERVICE_NAME, MemberSettings, build)


if __name__ == "__main__":
    sys.exit(main())
