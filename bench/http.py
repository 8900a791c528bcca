"""Gateway HTTP overhead: wrk against the gateway's /healthz and against a bare uvicorn app."""

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


def bench_http(work: Path, seconds: int) -> dict[str, float]:
    postgres = PostgresServer(work / "postgres")
    nats = NatsServer(work / "nats")
    postgres.start()
    nats.start()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        postgres.create_database("gateway")
        asyncio.run(asyncio.to_thread(migrations.upgrade, postgres.url_for("gateway"), GATEWAY_VERSIONS))
        raw_port, gateway_port = free_port(), free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        raw = serve(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.raw_asgi:app",
                "--port",
                str(raw_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env,
            f"http://127.0.0.1:{raw_port}/healthz",
        )
        servers.append(raw)
        raw_rps = wrk(f"http://127.0.0.1:{raw_port}/healthz", seconds)
        raw.terminate()
        raw.wait(10)
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
        fastapi_rps = wrk(f"http://127.0.0.1:{fastapi_port}/healthz", seconds)
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
        gateway_rps = wrk(f"http://127.0.0.1:{gateway_port}/healthz", seconds)
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
    }
