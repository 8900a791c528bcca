"""`python -m devstack run [--state-dir DIR]`: the local stack behind `make run`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The stack forks servers after it has used gRPC (health checks): keep gRPC's fork handlers out.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from devstack.stack import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_command = commands.add_parser("run", help="start PostgreSQL, NATS, every service and the gateway")
    run_command.add_argument("--state-dir", type=Path, default=Path(".local"), help="where state and logs live")
    args = parser.parse_args(argv)
    return run(args.state_dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
