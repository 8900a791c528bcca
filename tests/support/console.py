"""The operations console as a real process, pointed at a running platform's gateway."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from devstack.servers import free_port
from tests.e2e.test_gateway_process import REPO, gateway_env


@contextmanager
def running_console(gateway_url: str, log_path: Path, **settings: str) -> Iterator[str]:
    """Start ``python -m console`` against ``gateway_url``; yield its base URL; stop it after."""
    port = free_port()
    env = gateway_env(APP_ENV="test", GATEWAY_URL=gateway_url, HTTP_PORT=str(port), LOG_LEVEL="WARNING", **settings)
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "console"], env=env, cwd=REPO, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the console exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the console did not answer within 30 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
