"""`python -m devstack run` as a background process for end-to-end tests of the local stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import cast

import pytest

DEVSTACK_RUN = (sys.executable, "-m", "devstack", "run")


class RunningStack:
    """`python -m devstack run <args>` in the background, its output collected line by line."""

    def __init__(self, state_dir: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        environ = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "NATS_URL")}
        self.state_dir = state_dir
        self.process = subprocess.Popen(
            [*DEVSTACK_RUN, "--state-dir", str(state_dir), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, what: str, condition: Callable[[], object], within: float = 120.0) -> object:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            if self.process.poll() is not None and not found:
                self._reader.join(5)
                pytest.fail(f"the stack exited (code {self.process.returncode}) waiting for {what}:\n{self.output}")
            time.sleep(0.1)
        pytest.fail(f"no {what} within {within} s:\n{self.output}")

    def pid_after(self, pattern: str, seen: int) -> int:
        """The pid in the first line matching ``pattern`` after the first ``seen`` matches."""

        def found() -> int | None:
            pids = [int(match) for match in re.findall(pattern, self.output)]
            return pids[seen] if len(pids) > seen else None

        return cast(int, self.wait_for(f"line {seen + 1} matching {pattern!r}", found))
