"""A service run as its own operating-system process, to be killed with SIGKILL mid-work."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.servers import free_port


class ServiceProcess:
    """``python -m <module>`` with ``env``, its output appended to ``log``."""

    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        self.module, self.env, self.log = module, env, log
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def grpc_service(
        cls, module: str, *, database_url: str, nats_url: str, log: Path, **settings: str
    ) -> tuple[ServiceProcess, int]:
        """A gRPC service of this repository on a free loopback port (returned with it), in the test
        environment, with ``settings`` as further environment variables (durables, intervals, …)."""
        port = free_port()
        env = {
            **os.environ,
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "NATS_URL": nats_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(port),
            "LOG_LEVEL": "WARNING",
            **settings,
        }
        return cls(module, env, log), port

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module], env=self.env, stdout=output, stderr=output
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as when a node dies."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


async def serving(port: int, within: float = 60.0) -> None:
    """Wait until the gRPC server on ``port`` reports SERVING (after a start or a restart)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        async with asyncio.timeout(within):
            while True:
                try:
                    status = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if status.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)
