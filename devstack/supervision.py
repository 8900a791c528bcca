"""Restarting what crashed in the local stack, as Kubernetes restarts a crashed container.

A process that exits on its own (or is killed) is started again after a delay that doubles
with each recent crash. One that crashes ``max_crashes`` times within ``window`` seconds is
in a crash loop: the supervisor gives up (Kubernetes would show ``CrashLoopBackOff``) and
the stack stops, saying which process and where its log is. The clock is injectable, so the
policy is tested without waiting.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class RestartPolicy:
    """When a crashed process is started again, and when the stack gives up on it."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    # The crash that makes `max_crashes` within `window` seconds is not restarted.
    max_crashes: int = 5
    window: float = 300.0

    def __post_init__(self) -> None:
        if self.max_crashes < 1 or self.window <= 0 or not 0 <= self.first_delay <= self.max_delay:
            raise ValueError(f"not a usable restart policy: {self}")

    def delay_after(self, recent_crashes: int) -> float:
        """Seconds to wait before restarting a process that crashed ``recent_crashes`` times lately."""
        return float(min(self.max_delay, self.first_delay * 2 ** (recent_crashes - 1)))


class Supervised(Protocol):
    """A process the supervisor watches and restarts."""

    @property
    def name(self) -> str: ...

    @property
    def log_path(self) -> Path: ...

    def exit_code(self) -> int | None:
        """The exit code once the process has ended (negative: the signal that killed it), else None."""

    def restart(self) -> str:
        """Start the process again; returns what to say about it (pid, address). Raises
        RuntimeError when it could not start (then it counts as a crash)."""


class CrashLoop(RuntimeError):
    """A process crashed too often in too short a time; the stack gives up on it."""

    def __init__(self, name: str, crashes: int, window: float, last_exit: str, log_path: Path) -> None:
        super().__init__(
            f"{name} is in a crash loop (CrashLoopBackOff): it crashed {crashes} times within {window:g} s, "
            f"last {last_exit}; giving up on it and stopping the stack. See its log: {log_path}"
        )
        self.name = name
        self.log_path = log_path


def describe_exit(code: int) -> str:
    """'exited with code 3', or 'killed by SIGKILL' for a negative code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class _Watch:
    supervised: Supervised
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None


class Supervisor:
    """Watches processes, restarts each one that ended with backoff, gives up on a crash loop."""

    def __init__(
        self,
        policy: RestartPolicy,
        say: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.say = say
        self.clock = clock
        self._watches: list[_Watch] = []

    def watch(self, supervised: Supervised) -> None:
        self._watches.append(_Watch(supervised))

    def check(self) -> float:
        """Note what ended since the last check and restart what is due.

        Returns the seconds until the next restart is due (at most a second), so the caller
        can wait that long; raises CrashLoop when a process crashed too often."""
        for watch in self._watches:
            if watch.restart_at is None:
                code = watch.supervised.exit_code()
                if code is not None:
                    self._crashed(watch, describe_exit(code))
            if watch.restart_at is not None and self.clock() >= watch.restart_at:
                watch.restart_at = None
                name = watch.supervised.name
                try:
                    started = watch.supervised.restart()
                except RuntimeError as exc:
                    self._crashed(watch, f"failed to start again ({exc})")
                else:
                    self.say(f"restarted {name} ({started})")
        due = [watch.restart_at for watch in self._watches if watch.restart_at is not None]
        return max(0.0, min([1.0, *(at - self.clock() for at in due)]))

    def _crashed(self, watch: _Watch, how: str) -> None:
        now = self.clock()
        watch.crashes.append(now)
        while watch.crashes[0] <= now - self.policy.window:
            watch.crashes.popleft()
        crashes = len(watch.crashes)
        supervised = watch.supervised
        if crashes >= self.policy.max_crashes:
            raise CrashLoop(supervised.name, crashes, self.policy.window, how, supervised.log_path)
        delay = self.policy.delay_after(crashes)
        watch.restart_at = now + delay
        self.say(
            f"{supervised.name} {how}; restarting it in {delay:g} s (crash {crashes} within {self.policy.window:g} s; "
            f"the stack gives up at {self.policy.max_crashes}); its log: {supervised.log_path}"
        )
