"""Faults a test can inject into the test run's own servers, and always take back."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (PostgreSQL's backends, checkpointer, ...), children first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name in parentheses may hold spaces: the parent pid follows its ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children.get(child, []))
    return found


@contextlib.contextmanager
def frozen(process: subprocess.Popen[bytes] | int | None) -> Iterator[None]:
    """The server ``process`` (a child of ours, or any pid) and every process it started stopped
    with SIGSTOP, as a paused VM or a hung host looks to its clients: connections stay open and
    nothing is answered. Resumed with SIGCONT on the way out, whatever happened inside.

    The server is stopped first, so it cannot start a process that the list then misses
    (PostgreSQL's backends are each their own process group, hence one signal each).
    """
    if process is None or (isinstance(process, subprocess.Popen) and process.poll() is not None):
        raise AssertionError("the server to freeze is not running")
    top = process if isinstance(process, int) else process.pid
    stopped: list[int] = []
    try:
        os.kill(top, signal.SIGSTOP)
        stopped.append(top)
        for pid in descendants(top):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in reversed(stopped):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
