"""``python -m gateway`` as a real process: migrate, start, serve, stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.servers import free_port
from tests.conftest import Infra, create_database_from

REPO = Path(__file__).resolve().parents[2]
# Variables of the test runner that must not leak into the gateway's configuration.
_GATEWAY_VARIABLES = ("DATABASE_URL", "NATS_URL", "HTTP_HOST", "HTTP_PORT", "GATEWAY_BACKENDS", "APP_ENV")


def gateway_env(**values: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _GATEWAY_VARIABLES}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return env | values


@pytest.fixture
def gateway_database(infra: Infra, kit_template: str) -> str:
    return create_database_from(infra, kit_template)


@pytest.fixture
def gateway_process(
    gateway_database: str, nats_url: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    env = gateway_env(APP_ENV="test", DATABASE_URL=gateway_database, NATS_URL=nats_url, HTTP_PORT=str(port))
    migrate = subprocess.run(
        [sys.executable, "-m", "gateway.migrate"], env=env, cwd=REPO, capture_output=True, timeout=120, check=False
    )
    assert migrate.returncode == 0, migrate.stderr.decode()
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "gateway"], env=env, cwd=REPO, stdout=log, stderr=log)
    try:
        yield process, f"http://127.0.0.1:{port}", log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_until_serving(process: subprocess.Popen[bytes], base_url: str, log: Path, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gateway exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"gateway did not answer /healthz within {within}s:\n{log.read_text()}")


def get_until(url: str, status: int, within: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response = httpx.get(url, timeout=5.0)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_the_gateway_process_serves_its_api_and_stops_cleanly_on_sigterm(
    gateway_process: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, base_url, log = gateway_process
    wait_until_serving(process, base_url, log)

    readyz = get_until(f"{base_url}/readyz", 200)
    assert readyz.status_code == 200, readyz.text
    assert readyz.json() == {"status": "ready", "checks": {"postgres": "ok", "nats": "ok"}, "backends": {}}
    assert "server" not in readyz.headers
    openapi = httpx.get(f"{base_url}/openapi.json", timeout=5.0)
    assert openapi.status_code == 200
    assert openapi.json()["info"]["title"] == "Retail platform API"
    assert httpx.get(f"{base_url}/docs", timeout=5.0).status_code == 200
    missing = httpx.get(f"{base_url}/v1/nowhere", timeout=5.0)
    assert (missing.status_code, missing.headers["content-type"]) == (404, "application/problem+json")

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, log.read_text()

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "gateway.access"]
    assert any((line["method"], line["route"], line["status"]) == ("GET", "/readyz", 200) for line in access)
    assert all({"method", "route", "status", "latency_ms", "trace_id", "client_id"} <= line.keys() for line in access)


def test_the_gateway_refuses_to_start_without_a_database_url_and_says_so(nats_url: str) -> None:
    env = gateway_env(APP_ENV="test", NATS_URL=nats_url, HTTP_PORT=str(free_port()))
    result = subprocess.run(
        [sys.executable, "-m", "gateway"], env=env, cwd=REPO, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr.decode()
