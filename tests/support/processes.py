"""A service run as its own operating-system process, to be killed with SIGKILL mid-work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


class ServiceProcess:
    """``python -m <module>`` with ``env``, its output appended to ``log``."""

    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        self.module, self.env, self.log = module, env, log
        self.process: subprocess.Popen[bytes] | None = None

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
