"""devstack.supervision: a crashed process of `make run` comes back with backoff; a crash loop stops the stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devstack.supervision import CrashLoop, RestartPolicy, Supervisor

POLICY = RestartPolicy(first_delay=1.0, max_delay=8.0, max_crashes=5, window=60.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeProcess:
    """A process that runs until the test crashes it; ``starts`` says whether each restart works."""

    name: str = "inventory"
    log_path: Path = Path(".local/logs/inventory.log")
    code: int | None = None
    restarts: int = 0
    refuse_to_start: list[str] = field(default_factory=list)

    def exit_code(self) -> int | None:
        return self.code

    def restart(self) -> str:
        if self.refuse_to_start:
            raise RuntimeError(self.refuse_to_start.pop(0))
        self.restarts += 1
        self.code = None
        return f"pid {4000 + self.restarts}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def supervisor(clock: Clock, said: list[str]) -> Supervisor:
    return Supervisor(POLICY, said.append, clock)


def crash_and_wait_for_restart(process: FakeProcess, supervisor: Supervisor, clock: Clock, code: int = -9) -> float:
    """Crash the process and advance the clock just until the supervisor starts it again; the delay it waited."""
    process.code = code
    restarts = process.restarts
    crashed_at = clock.now
    supervisor.check()
    while process.restarts == restarts:
        clock.now += 0.25
        supervisor.check()
    return clock.now - crashed_at


def test_a_running_process_is_left_alone(supervisor: Supervisor, said: list[str]) -> None:
    process = FakeProcess()
    supervisor.watch(process)
    assert supervisor.check() == 1.0
    assert (process.restarts, said) == (0, [])


def test_a_crashed_process_is_restarted_after_a_delay_that_doubles_with_each_recent_crash(
    supervisor: Supervisor, clock: Clock
) -> None:
    process = FakeProcess()
    supervisor.watch(process)
    delays = [crash_and_wait_for_restart(process, supervisor, clock) for _ in range(4)]
    assert delays == [1.0, 2.0, 4.0, 8.0]


def test_the_delay_is_capped(clock: Clock, said: list[str]) -> None:
    supervisor = Supervisor(
        RestartPolicy(first_delay=1.0, max_delay=3.0, max_crashes=10, window=600), said.append, clock
    )
    process = FakeProcess()
    supervisor.watch(process)
    delays = [crash_and_wait_for_restart(process, supervisor, clock) for _ in range(4)]
    assert delays == [1.0, 2.0, 3.0, 3.0]


def test_nothing_is_restarted_before_its_delay_and_check_says_how_long_to_wait(
    supervisor: Supervisor, clock: Clock
) -> None:
    process = FakeProcess(code=1)
    supervisor.watch(process)
    assert supervisor.check() == 1.0
    clock.now += 0.75
    assert supervisor.check() == 0.25
    assert process.restarts == 0
    clock.now += 0.25
    supervisor.check()
    assert process.restarts == 1


def test_each_restart_is_logged_with_the_exit_and_where_the_log_is(
    supervisor: Supervisor, clock: Clock, said: list[str]
) -> None:
    process = FakeProcess()
    supervisor.watch(process)
    crash_and_wait_for_restart(process, supervisor, clock, code=-9)
    crash_and_wait_for_restart(process, supervisor, clock, code=3)
    assert said == [
        "inventory killed by SIGKILL; restarting it in 1 s (crash 1 within 60 s; the stack gives up at 5); "
        "its log: .local/logs/inventory.log",
        "restarted inventory (pid 4001)",
        "inventory exited with code 3; restarting it in 2 s (crash 2 within 60 s; the stack gives up at 5); "
        "its log: .local/logs/inventory.log",
        "restarted inventory (pid 4002)",
    ]


def test_repeated_crashes_within_the_window_are_a_crash_loop_and_the_supervisor_gives_up(
    supervisor: Supervisor, clock: Clock
) -> None:
    process = FakeProcess()
    supervisor.watch(process)
    for _ in range(4):
        crash_and_wait_for_restart(process, supervisor, clock)
    process.code = 2
    with pytest.raises(CrashLoop) as gave_up:
        supervisor.check()
    assert str(gave_up.value) == (
        "inventory is in a crash loop (CrashLoopBackOff): it crashed 5 times within 60 s, last exited with code 2; "
        "giving up on it and stopping the stack. See its log: .local/logs/inventory.log"
    )
    assert process.restarts == 4


def test_crashes_further_apart_than_the_window_never_give_up_and_the_delay_starts_over(
    supervisor: Supervisor, clock: Clock
) -> None:
    process = FakeProcess()
    supervisor.watch(process)
    for _ in range(10):
        assert crash_and_wait_for_restart(process, supervisor, clock) == 1.0
        clock.now += POLICY.window
    assert process.restarts == 10


def test_a_process_that_fails_to_start_again_counts_as_a_crash_and_is_tried_later(
    supervisor: Supervisor, clock: Clock, said: list[str]
) -> None:
    process = FakeProcess(refuse_to_start=["server exited with code 1"])
    supervisor.watch(process)
    assert crash_and_wait_for_restart(process, supervisor, clock) == 3.0  # 1 s, a failed start, then 2 s
    assert "inventory failed to start again (server exited with code 1); restarting it in 2 s" in said[1]


def test_only_the_crashed_process_is_restarted(supervisor: Supervisor, clock: Clock) -> None:
    crashed, healthy = FakeProcess(name="member"), FakeProcess(name="pricing")
    supervisor.watch(crashed)
    supervisor.watch(healthy)
    crash_and_wait_for_restart(crashed, supervisor, clock)
    assert (crashed.restarts, healthy.restarts) == (1, 0)


@pytest.mark.parametrize(
    "policy",
    [
        {"max_crashes": 0},
        {"window": 0.0},
        {"first_delay": -1.0},
        {"first_delay": 10.0, "max_delay": 5.0},
    ],
)
def test_a_policy_that_could_not_work_is_refused(policy: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="not a usable restart policy"):
        RestartPolicy(**policy)  # type: ignore[arg-type]
