"""`python -m devstack run`: the local stack behind `make run` (`--help` lists its options)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The stack forks servers after it has used gRPC (health checks): keep gRPC's fork handlers out.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from devstack.stack import run
from devstack.supervision import RestartPolicy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_command = commands.add_parser("run", help="start PostgreSQL, NATS, every service and the gateway")
    run_command.add_argument("--state-dir", type=Path, default=Path(".local"), help="where state and logs live")
    defaults = RestartPolicy()
    run_command.add_argument(
        "--max-crashes",
        type=int,
        default=defaults.max_crashes,
        help="give up (and stop the stack) when a process crashes this often within --crash-window",
    )
    run_command.add_argument(
        "--crash-window", type=float, default=defaults.window, help="seconds over which crashes are counted"
    )
    run_command.add_argument(
        "--cluster",
        action="store_true",
        help="the production topology: a 3-node NATS cluster and two processes of every component behind a balancer",
    )
    run_command.add_argument(
        "--no-demo", action="store_true", help="do not load the demo retailer (the databases stay as migrated)"
    )
    args = parser.parse_args(argv)
    try:
        policy = RestartPolicy(max_crashes=args.max_crashes, window=args.crash_window)
    except ValueError as exc:
        parser.error(str(exc))
    state_dir = args.state_dir.resolve()
    stack = None
    if args.cluster:
        from devstack.cluster import ClusterStack

        stack = ClusterStack(state_dir)
    return run(state_dir, policy, with_demo=not args.no_demo, stack=stack)


if __name__ == "__main__":
    sys.exit(main())
