"""What every benchmark measures against — PostgreSQL alone running a custom pgbench script, and
a helper module's one printed figure (a raw client doing the same work without the platform) —
and the service process it measures.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.servers import PostgresServer, free_port, postgres_bin_dir


@dataclass(frozen=True)
class PgbenchRun:
    tps: float
    transactions: int


def pgbench(
    postgres: PostgresServer, database: str, script: Path, seconds: int, clients: int, *, prepared: bool = False
) -> PgbenchRun:
    """Run ``script`` for ``seconds`` over ``clients`` connections (on at most two threads); with
    ``prepared``, as prepared statements (the way the services' asyncpg sends them)."""
    result = subprocess.run(
        [
            str(postgres_bin_dir() / "pgbench"),
            "-n",
            *(["-M", "prepared"] if prepared else []),
            "-h",
            "127.0.0.1",
            "-p",
            str(postgres.port),
            "-U",
            "postgres",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(seconds),
            "-f",
            str(script),
            database,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    tps = float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    transactions = int(re.search(r"number of transactions actually processed: (\d+)", result.stdout).group(1))  # type: ignore[union-attr]
    return PgbenchRun(tps, transactions)


def python_module(*args: str) -> float:
    """The figure a ``python -m`` helper prints on its last line."""
    output = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, check=True).stdout
    return float(output.strip().splitlines()[-1])


@contextlib.contextmanager
def grpc_service(
    module: str, env: Mapping[str, str], database_url: str, log_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A service's ``python -m`` on a free local port (pool of 20), its log in ``log_path``, for the
    context's duration; yields the process and its gRPC port."""
    grpc_port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env={
                **env,
                "DATABASE_URL": database_url,
                "GRPC_PORT": str(grpc_port),
                "GRPC_HOST": "127.0.0.1",
                "DB_POOL_SIZE": "20",
            },
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            yield process, grpc_port
        finally:
            process.terminate()
            process.wait(20)


@contextlib.contextmanager
def gateway_process(
    env: Mapping[str, str], database_url: str, backends: Mapping[str, int], log_path: Path
) -> Iterator[str]:
    """``python -m gateway`` on a free port in front of ``backends`` (name → local gRPC port), its rate
    limits out of the way, yielding its base URL once every backend reports serving."""
    import json
    import time
    import urllib.request

    http_port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env={
                **env,
                "DATABASE_URL": database_url,
                "HTTP_PORT": str(http_port),
                "DB_POOL_SIZE": "20",
                "GATEWAY_BACKENDS": ",".join(f"{name}=127.0.0.1:{port}" for name, port in backends.items()),
                "RATE_LIMIT_PER_SECOND": "1000000",
                "RATE_LIMIT_BURST": "1000000",
            },
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{http_port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"the gateway exited with code {process.returncode}; see {log_path}")
                try:
                    with urllib.request.urlopen(f"{base}/readyz", timeout=2) as answer:  # noqa: S310 - loopback
                        if all(state == "ok" for state in json.loads(answer.read())["backends"].values()):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"the gateway's backends were not serving within 90 s; see {log_path}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            process.wait(20)


PROFILE_ENV = "BENCH_PROFILE"


@contextlib.contextmanager
def profiled(label: str, processes: Mapping[str, int]) -> Iterator[None]:
    """With ``BENCH_PROFILE`` set to a folder, py-spy samples each server process (name → pid)
    while the context runs and leaves ``<folder>/<label>-<name>.txt`` (collapsed stacks, one
    line per distinct stack with its sample count; ``python -m bench.profile_summary`` reads
    them, and flame graph tools such as speedscope open them). Without it, nothing happens.

    py-spy attaches from outside (ptrace), so the measured process runs unmodified; sampling
    slows it a little, so a profiled run's rates are not the ones to compare.
    """
    folder = os.environ.get(PROFILE_ENV)
    if not folder:
        yield
        return
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(binary).exists():
        raise SystemExit("BENCH_PROFILE needs py-spy (it is in requirements.txt: make venv)")
    Path(folder).mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(Path(folder) / f"{label}-{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in processes.items()
    ]
    try:
        yield
    finally:
        for recorder in recorders:  # py-spy writes its output when interrupted
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            recorder.wait(30)
