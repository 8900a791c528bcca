"""Gateway HTTP overhead: wrk against the gateway's /healthz and against a bare uvicorn app.

Beside requests per second, the server process's CPU time per request (user + system, read
from /proc around each wrk run): on a shared two-core machine the rates move with whatever
else runs, while CPU per request moves much less, so ``bare_fastapi_cpu_vs_gateway`` (the
bare framework's CPU per request over the gateway's) is the steadier form of the same ratio.

The gateway's fixed cost per request (issue 17), the same commands run alternately on the
two-core development machine while other work shared it; ranges over the runs:

- CPU per ``/healthz``: 297-370 us before, 141-165 us after; ``bare_fastapi_cpu_vs_gateway``
  0.27 before, 0.58-0.66 after (the bare app: 84-103 us).
- ``gateway_vs_bare_fastapi`` (rates): 0.21-0.41 before, 0.35-0.95 after (most runs 0.5-0.7).
- CPU per authenticated ``GET /v1/stock/{sku}`` (a bearer token, the inventory service over
  gRPC): 1,462-2,732 us before, 889-1,367 us after; the rate is bound by the inventory
  service's own CPU (1.7-3.4 ms per read), not the gateway's.

Before: three stacked ASGI middlewares plus OpenTelemetry's ASGI instrumentation (it
collected request attributes and scanned every route for the span name on every request,
sampled or not: about a third of /healthz's samples in py-spy), the ``Resources`` dependency
run in a worker thread (12% of a read's samples), a gRPC stub built per request and every
token's HMAC and JSON parsed again. After: one ASGI layer (``gateway/http/middleware.py``),
those fixed, and ``gc.freeze()`` once the gateway is built.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.baseline import profiled
from bench.cpu import cpu_seconds
from devstack.servers import NatsServer, PostgresServer, free_port
from servicekit import migrations

GATEWAY_VERSIONS = Path(__file__).resolve().parent.parent / "gateway" / "migrations" / "versions"


def wrk(url: str, seconds: int, connections: int = 32) -> float:
    """Requests per second wrk reaches against ``url`` (wrk runs as its own process)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (make bench installs it from Debian's packages when run as root)")
    output = subprocess.run(
        [binary, "-t2", f"-c{connections}", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"wrk saw errors from {url}:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]


def wrk_cpu(url: str, seconds: int, process: subprocess.Popen[bytes]) -> tuple[float, float]:
    """Requests per second and the server's CPU microseconds per request, over one wrk run."""
    before = cpu_seconds(process.pid)
    rps = wrk(url, seconds)
    return rps, 1e6 * (cpu_seconds(process.pid) - before) / (rps * seconds)


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def serve(args: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(url, process)
    return process


def raw_asgi_rps(seconds: int, connections: int = 32) -> float:
    """Requests/s wrk gets from the bare ASGI app on uvicorn (``bench/raw_asgi.py``, a constant
    JSON, no middleware): the floor of any Python HTTP path on this machine."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    command = [sys.executable, "-m", "uvicorn", "bench.raw_asgi:app", "--port", str(port)]
    server = serve(
        [*command, "--no-access-log", "--log-level", "warning"], {**os.environ, "PYTHONUNBUFFERED": "1"}, url
    )
    try:
        return wrk(url, seconds, connections)
    finally:
        server.terminate()
        server.wait(10)


def bench_http(work: Path, seconds: int) -> dict[str, float]:
    postgres = PostgresServer(work / "postgres")
    nats = NatsServer(work / "nats")
    postgres.start()
    nats.start()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        postgres.create_database("gateway")
        asyncio.run(asyncio.to_thread(migrations.upgrade, postgres.url_for("gateway"), GATEWAY_VERSIONS))
        gateway_port = free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        raw_rps = raw_asgi_rps(seconds)
        fastapi_port = free_port()
        bare = serve(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.raw_asgi:bare_fastapi",
                "--factory",
                "--port",
                str(fastapi_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env,
            f"http://127.0.0.1:{fastapi_port}/healthz",
        )
        servers.append(bare)
        fastapi_rps, fastapi_cpu_us = wrk_cpu(f"http://127.0.0.1:{fastapi_port}/healthz", seconds, bare)
        bare.terminate()
        bare.wait(10)
        gateway_env = {
            **env,
            "APP_ENV": "local",
            "HTTP_PORT": str(gateway_port),
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": postgres.url_for("gateway"),
            "NATS_URL": nats.url,
        }
        gateway = serve([sys.executable, "-m", "gateway"], gateway_env, f"http://127.0.0.1:{gateway_port}/healthz")
        servers.append(gateway)
        with profiled("http-healthz", {"gateway": gateway.pid}):
            gateway_rps, gateway_cpu_us = wrk_cpu(f"http://127.0.0.1:{gateway_port}/healthz", seconds, gateway)
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.wait(10)
        nats.stop()
        postgres.stop()
    return {
        "raw_uvicorn_rps": raw_rps,
        "bare_fastapi_rps": fastapi_rps,
        "gateway_healthz_rps": gateway_rps,
        "gateway_vs_raw_uvicorn": gateway_rps / raw_rps,
        "gateway_vs_bare_fastapi": gateway_rps / fastapi_rps,
        "bare_fastapi_cpu_us_per_request": fastapi_cpu_us,
        "gateway_cpu_us_per_request": gateway_cpu_us,
        "bare_fastapi_cpu_vs_gateway": fastapi_cpu_us / gateway_cpu_us,
    }
