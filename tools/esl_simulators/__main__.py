"""Run one shelf-label station simulator from the command line.

    python -m tools.esl_simulators openepaperlink --port 8081 --labels 0000000000000001 0000000000000002
    python -m tools.esl_simulators batch --port 8082 --generate 5000 --api-key dev --checkin-ms 500

Labels check in every ``--checkin-ms`` milliseconds (default 1000), so content pushed by a
client shows up on the simulated labels without a test driving ``tick()``.
"""

from __future__ import annotations

import argparse

import uvicorn

from tools.esl_simulators import StationSimulator
from tools.esl_simulators.batch import BatchSimulator, generate_label_ids
from tools.esl_simulators.openepaperlink import OpenEPaperLinkSimulator, generate_macs


def build_simulator(args: argparse.Namespace) -> StationSimulator:
    """The simulator the command line asks for, with its labels registered."""
    interval = args.checkin_ms / 1000 if args.checkin_ms > 0 else None
    if args.kind == "openepaperlink":
        macs = list(args.labels) + generate_macs(args.generate)
        # Tags check in every --checkin-ms on the wall clock (the firmware's default is 10 minutes).
        return OpenEPaperLinkSimulator(macs, latency=args.latency, checkin_interval=interval or 600.0, wall_clock=True)
    ids = list(args.labels) + generate_label_ids(args.generate)
    return BatchSimulator(ids, api_key=args.api_key, latency=args.latency, checkin_interval=interval)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve the simulator until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tools.esl_simulators", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["openepaperlink", "batch"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--labels", nargs="*", default=[], help="label ids (MACs for openepaperlink)")
    parser.add_argument("--generate", type=int, default=0, help="also register this many generated labels")
    parser.add_argument("--api-key", default="", help="batch only: required X-API-Key")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds of delay per request")
    parser.add_argument("--checkin-ms", type=int, default=1000, help="automatic check-in period, 0 for none")
    args = parser.parse_args(argv)
    simulator = build_simulator(args)
    uvicorn.run(simulator.build_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
