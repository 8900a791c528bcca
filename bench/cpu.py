"""Where the machine's CPU went during a measured load, per operation.

A ratio against a raw baseline says how far a path is from it, not why. On a machine whose
cores are all busy (the benches' usual state: two cores for PostgreSQL, the services, the
gateway and the load generator), throughput is the machine's CPU divided by the CPU one
operation costs, so the bench accounts for that cost by process: each named server, the
PostgreSQL cluster (the postmaster and every backend, also those that ended during the
load), and the rest of the machine (the load generator, NATS, the kernel's network work),
read from ``/proc/stat``. The same account around the baseline (pgbench and PostgreSQL)
shows what a raw operation costs on the same machine in the same run, so the gap between
the two is divided among its owners.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.servers import PostgresServer

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its children: the live ones, and the ended ones it reaped
    (counted in its own ``cutime``/``cstime``), as for a PostgreSQL postmaster and its backends.

    A child reaped while the children are read would be in neither reading (or in both): the
    reading is taken again until the parent reaped nothing during it. An ended child not yet
    reaped still shows its final times, so it is counted once either way.
    """
    for _ in range(100):
        before = _stat_fields(pid)
        total = sum(int(value) for value in before[11:15])
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or entry.name == str(pid):
                continue
            try:
                child = _stat_fields(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue  # gone: the parent's reaped times below tell whether that moved the total
            if child[1] == str(pid):  # the parent's pid
                total += sum(int(value) for value in child[11:15])
        if _stat_fields(pid)[13:15] == before[13:15]:  # no child reaped meanwhile
            return total / _TICKS
    raise RuntimeError(f"the children of {pid} kept ending while their CPU time was read")


def _machine_ticks() -> list[int]:
    """The first line of /proc/stat: all cores' user, nice, system, idle, iowait, … ticks."""
    return [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent on anything but idling or waiting for I/O."""
    ticks = _machine_ticks()
    idle, iowait = ticks[3], ticks[4]
    # guest time is already counted in user time
    return (sum(ticks[:8]) - idle - iowait) / _TICKS


@dataclass
class CpuAccount:
    """CPU used between :meth:`start` and :meth:`stop` by ``servers`` (name → pid), by the
    ``postgres`` cluster (its postmaster and backends), and by the whole machine; with the
    seconds that passed (``wall``) and those the cores sat idle waiting for I/O (``iowait``:
    a disk-bound run shows it here)."""

    servers: Mapping[str, int]
    postgres: PostgresServer | None = None
    _start: dict[str, float] = field(default_factory=dict, init=False)
    used: dict[str, float] = field(default_factory=dict, init=False)
    wall: float = field(default=0.0, init=False)
    iowait: float = field(default=0.0, init=False)

    def _read(self) -> dict[str, float]:
        readings = {name: cpu_seconds(pid) for name, pid in self.servers.items()}
        if self.postgres is not None and self.postgres.process is not None:
            readings["postgres"] = tree_cpu_seconds(self.postgres.process.pid)
        readings["machine"] = machine_busy_seconds()
        return readings

    def start(self) -> CpuAccount:
        self._start = self._read()
        self.wall, self.iowait = time.monotonic(), _machine_ticks()[4] / _TICKS
        return self

    def stop(self) -> CpuAccount:
        end = self._read()
        self.used = {name: end[name] - self._start[name] for name in end}
        named = sum(value for name, value in self.used.items() if name != "machine")
        self.used["rest"] = max(0.0, self.used["machine"] - named)
        self.wall, self.iowait = time.monotonic() - self.wall, _machine_ticks()[4] / _TICKS - self.iowait
        return self

    def busy_vs_all_cores(self) -> float:
        """The machine's CPU time over what all its cores could have given meanwhile."""
        return self.used["machine"] / (self.wall * (os.cpu_count() or 1)) if self.wall > 0 else 0.0

    def __enter__(self) -> CpuAccount:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def per_operation_ms(self, operations: float, unit: str, *, prefix: str = "") -> dict[str, float]:
        """``[{prefix}_]{name}_cpu_ms_per_{unit}`` for each account (servers, ``postgres``, ``rest``
        of the machine, whole ``machine``), ``operations`` being how many were done."""
        start = f"{prefix}_" if prefix else ""
        return {
            f"{start}{name}_cpu_ms_per_{unit}": 1000 * value / operations if operations > 0 else 0.0
            for name, value in self.used.items()
        }
