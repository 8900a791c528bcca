"""The gateway's added latency: the same inventory calls through the gateway and straight over gRPC.

With one call in flight (pure latency: no queueing anywhere) and with :data:`CONNECTIONS`
(modest concurrency; on a two-core machine already enough to keep the Python services
busy, so queueing shows), one after the other on the same inventory process and database:

* ``wrk`` (its own process) against ``GET /v1/stock/{sku}`` and ``POST /v1/reservations``
  (one unit at ``ONLINE01``, a fresh ``Idempotency-Key`` each) on the real gateway: token
  check, scope, rate limit, idempotency record, access log, the gRPC call, JSON mapping;
* ``python -m bench.grpc_latency`` (its own process, ``grpc.aio`` like the gateway's own
  client) making the same ``GetSkuAvailability`` and ``ReserveStock`` calls directly.

Both draw the SKU at random from ``LAT00001`` … so neither path enjoys a hotter row.
Printed per concurrency: p50 and p99 of each both ways, and the difference (what the
gateway adds). Both load generators run closed loops (a connection sends its next call
when the answer arrived), so their figures compare like for like.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.grpc_latency import LOCATION, TTL_SECONDS

CONNECTIONS = 8
LATENCY_SKUS = 1_000

WRK_SCRIPT = """
local counter = 0
local prefix, mode, skus, headers
function setup(thread)
  thread:set("tid", tostring(math.random(1, 1000000000)))
end
function init(args)
  mode = args[1]
  skus = tonumber(args[2])
  prefix = "lat-" .. tid .. "-" .. tostring(os.time())
  headers = {["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"), ["Content-Type"] = "application/json"}
end
request = function()
  counter = counter + 1
  local sku = string.format("LAT%05d", math.random(1, skus))
  if mode == "read" then
    return wrk.format("GET", "/v1/stock/" .. sku, headers)
  end
  headers["Idempotency-Key"] = prefix .. "-" .. counter
  local body = '{"sku":"' .. sku .. '","quantity":"1","location_id":"LOCATION","ttl_seconds":TTL}'
  return wrk.format("POST", "/v1/reservations", headers, body)
end
""".replace("LOCATION", LOCATION).replace("TTL", str(TTL_SECONDS))


def latency_ms(output: str, percentile: str) -> float:
    """A percentile from wrk's ``--latency`` distribution, in milliseconds."""
    found = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if found is None:
        raise SystemExit(f"no {percentile}% latency in wrk's output:\n{output}")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_latency(base_url: str, script: Path, mode: str, seconds: int, token: str, connections: int) -> dict[str, float]:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (make bench installs it from Debian's packages when run as root)")
    output = subprocess.run(
        [
            binary,
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            base_url,
            "--",
            mode,
            str(LATENCY_SKUS),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_TOKEN": token},
    ).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk saw errors ({mode} through the gateway):\n{output}")
    return {
        "calls_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency_ms(output, "50"),
        "p99_ms": latency_ms(output, "99"),
    }


def direct_latency(grpc_target: str, mode: str, seconds: int, owner: str, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.grpc_latency",
            grpc_target,
            mode,
            str(seconds),
            str(connections),
            str(LATENCY_SKUS),
            owner,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    if figures["errors"]:
        raise SystemExit(f"direct gRPC {mode} calls failed: {figures}")
    return figures


def measure(base_url: str, token: str, grpc_target: str, owner: str, work: Path, seconds: int) -> dict[str, float]:
    """p50/p99 of a read and of a reservation through the gateway and directly, and the differences."""
    script = work / "latency.lua"
    script.write_text(WRK_SCRIPT)
    figures: dict[str, float] = {}
    for mode in ("read", "reserve"):
        for connections in (1, CONNECTIONS):
            through = wrk_latency(base_url, script, mode, seconds, token, connections)
            direct = direct_latency(grpc_target, mode, seconds, owner, connections)
            name = f"{mode}_{connections}_in_flight"
            for percentile in ("p50", "p99"):
                figures[f"{name}_gateway_{percentile}_ms"] = through[f"{percentile}_ms"]
                figures[f"{name}_direct_grpc_{percentile}_ms"] = direct[f"{percentile}_ms"]
                figures[f"{name}_gateway_adds_{percentile}_ms"] = (
                    through[f"{percentile}_ms"] - direct[f"{percentile}_ms"]
                )
    return figures
