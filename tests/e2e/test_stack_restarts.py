"""`make run` keeps the stack up: a process killed with -9 comes back serving, and one that
keeps crashing stops the stack with a clear message (issue 11, point 7).

One stack serves the whole scenario (starting one is the expensive part); it runs without
the demo data, which plays no part here, and gives up at the third crash of one process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.stack import RunningStack

MAX_CRASHES = 3


@pytest.fixture
def stack() -> Iterator[RunningStack]:
    folder = Path(tempfile.mkdtemp(prefix="retail-stack-restarts-test-"))
    folder.chmod(0o711)  # as in test_local_stack: reachable for the no-user-namespace fallback
    running = RunningStack(folder / "stack", "--no-demo", "--max-crashes", str(MAX_CRASHES))
    try:
        running.wait_for("stack.json", (folder / "stack" / "stack.json").exists)
        yield running
    finally:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGINT)
        running.process.wait(60)
        shutil.rmtree(folder, ignore_errors=True)


def grpc_serving(url: str) -> bool:
    with grpc.insecure_channel(url.removeprefix("grpc://")) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def postgres_answers(url: str) -> bool:
    async def ask() -> bool:
        try:
            connection = await asyncpg.connect(url, timeout=1)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        try:
            return bool(await connection.fetchval("SELECT true"))
        finally:
            await connection.close()

    return asyncio.run(ask())


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_process_comes_back_serving_and_one_that_keeps_crashing_stops_the_stack(stack: RunningStack) -> None:
    described = json.loads((stack.state_dir / "stack.json").read_text())
    inventory_url = described["services"]["inventory"]
    postgres_url = described["postgres_url"]
    inventory_log = stack.state_dir / "logs" / "inventory.log"

    # PostgreSQL crashes: it comes back on its port and data, and the service recovers with it.
    postmaster = int((stack.state_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)
    restarted_postmaster = stack.pid_after(r"restarted PostgreSQL \(pid (\d+)", 0)
    assert restarted_postmaster != postmaster
    stack.wait_for("PostgreSQL answering again", lambda: postgres_answers(postgres_url))
    stack.wait_for("inventory serving after the PostgreSQL restart", lambda: grpc_serving(inventory_url))

    # A service killed with -9 is restarted, with a line saying how it ended and where its log is.
    inventory = stack.pid_after(r"started inventory \(pid (\d+)", 0)
    for crash in range(1, MAX_CRASHES):
        os.kill(inventory, signal.SIGKILL)
        restarted = stack.pid_after(r"restarted inventory \(pid (\d+)", crash - 1)
        assert restarted != inventory
        assert (
            f"inventory killed by SIGKILL; restarting it in {2 ** (crash - 1)} s (crash {crash} within" in stack.output
        )
        assert f"its log: {inventory_log}" in stack.output
        stack.wait_for("inventory serving again", lambda: grpc_serving(inventory_url))
        inventory = restarted

    # The crash that makes MAX_CRASHES in the window is a crash loop: the stack stops, cleanly.
    others = [
        int(pid)
        for pid in re.findall(r"started (?:member|pricing|gateway|label-station simulator) \(pid (\d+)", stack.output)
    ]
    assert len(others) == 4
    os.kill(inventory, signal.SIGKILL)
    assert stack.process.wait(60) == 1
    stack._reader.join(5)
    assert (
        f"inventory is in a crash loop (CrashLoopBackOff): it crashed {MAX_CRASHES} times within 300 s, "
        f"last killed by SIGKILL; giving up on it and stopping the stack. See its log: {inventory_log}"
    ) in stack.output
    assert stack.output.rstrip().endswith("[stack] stopped")
    assert [pid for pid in [*others, restarted_postmaster] if alive(pid)] == [], "a process outlived the stack"
