"""`make run` end to end: the stack comes up, answers, stops cleanly and restarts without duplicating data,
and the README's first-five-minutes walk-through runs against it as printed."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import asyncpg
import pytest

from tests.conftest import Infra, run_in_fresh_loop
from tests.support.messaging import restore_streams, snapshot_streams
from tests.support.readme_walkthrough import CHECKS, README, check_walkthrough, run_walkthrough, walkthrough_blocks

# Start-up with every service's demo load (supply's settles a month of sales), on 2 shared cores.
STACK_READY_SECONDS = 240


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: others may enter this one (0711), as the `nobody` PostgreSQL runs
    # as needs where root has no user namespaces (see devstack.servers).
    folder = Path(tempfile.mkdtemp(prefix="retail-stack-test-"))
    folder.chmod(0o711)
    yield folder / "stack"
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def local_stack(
    state_dir: Path, servers: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], dict[str, object], list[str]]]:
    """Run `python -m devstack run`, wait for stack.json, yield, then Ctrl-C it."""
    (state_dir / "stack.json").unlink(missing_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "NATS_URL")}
    env.update(servers or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "run", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + STACK_READY_SECONDS
        while not (state_dir / "stack.json").exists():
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                pytest.fail("the stack exited before it was ready:\n" + "".join(lines))
            lines.append(line)
            assert time.monotonic() < deadline, f"the stack was not ready within {STACK_READY_SECONDS} s:\n" + "".join(
                lines
            )
        yield process, json.loads((state_dir / "stack.json").read_text()), lines
    finally:
        process.send_signal(signal.SIGINT)
        # Not communicate(timeout=…): it reads the pipe's descriptor and would lose what
        # readline() above already buffered (the lines printed just after stack.json).
        process.wait(timeout=60)
        lines.append(process.stdout.read())


def processes_using(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the stack's loopback URL
        return response.status, json.loads(response.read())


def registered_clients(postgres_url: str) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(postgres_url.rsplit("/", 1)[0] + "/retail_gateway")
        try:
            return int(await connection.fetchval("SELECT count(*) FROM client_registration"))
        finally:
            await connection.close()

    return run_in_fresh_loop(count)


SUPPLY_TABLES = ("supplier", "contract", "purchase_order", "goods_receipt", "statement", "accrual")


def supply_rows(postgres_url: str) -> dict[str, int]:
    """Rows of supply's demo tables (a second run must not add any)."""

    async def count() -> dict[str, int]:
        connection = await asyncpg.connect(postgres_url.rsplit("/", 1)[0] + "/retail_supply")
        try:
            query = " UNION ALL ".join(f"SELECT '{table}', count(*) FROM {table}" for table in SUPPLY_TABLES)
            return {row[0]: row[1] for row in await connection.fetch(query)}
        finally:
            await connection.close()

    return run_in_fresh_loop(count)


def wait_for_acknowledged_labels(postgres_url: str, timeout: float = 30.0) -> int:
    """Labels of the demo store that the simulated station has confirmed showing (polls until some are)."""

    async def count() -> int:
        connection = await asyncpg.connect(postgres_url.rsplit("/", 1)[0] + "/retail_pricing")
        try:
            return int(await connection.fetchval("SELECT count(*) FROM label WHERE state = 'acknowledged'"))
        finally:
            await connection.close()

    deadline = time.monotonic() + timeout
    while (acknowledged := run_in_fresh_loop(count)) == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    return acknowledged


def test_make_run_serves_ready_stops_clean_and_keeps_its_data_across_restarts(state_dir: Path) -> None:
    with local_stack(state_dir) as (_, stack, first_output):
        status, readiness = get(f"{stack['gateway_url']}/readyz")
        assert (status, readiness["status"]) == (200, "ready")
        assert readiness["backends"]["inventory"] == "ok"  # type: ignore[index]
        assert set(cast(dict[str, str], stack["services"])) == {
            "inventory",
            "member",
            "pricing",
            "marketing",
            "supply",
            "alerts",
        }
        assert stack["demo"]["inventory"]["stock_levels_created"] > 0  # type: ignore[index]
        assert readiness["backends"]["member"] == "ok"  # type: ignore[index]
        assert stack["demo"]["member"]["members"] > 0  # type: ignore[index]
        assert readiness["backends"]["pricing"] == "ok"  # type: ignore[index]
        marketing_demo = stack["demo"]["marketing"]  # type: ignore[index]
        assert marketing_demo["campaign"]["issued"] > 0
        assert marketing_demo["redemptions"]
        assert marketing_demo["redemption_conflicts"]
        pricing_demo = stack["demo"]["pricing"]  # type: ignore[index]
        assert pricing_demo["book_entries"] > 0
        assert pricing_demo["labels_linked"] > 0
        assert pricing_demo["label_station"] == stack["label_station_url"]
        assert wait_for_acknowledged_labels(str(stack["postgres_url"])) > 0, "no demo label synced with the station"
        assert get(str(stack["openapi_url"]))[0] == 200
        assert get(f"{stack['console_url']}/healthz")[0] == 200
        demo = stack["demo"]["gateway"]  # type: ignore[index]
        assert set(demo["credentials"]) >= {"app", "pos_terminal", "supplier_user", "headquarters", "store_guide"}
        supply_demo = stack["demo"]["supply"]  # type: ignore[index]
        assert sorted(set(supply_demo["suppliers"].values())) == ["concession", "consignment", "purchase"]
        assert supply_demo["open_purchase_orders"]
        # Last month settled: one issued statement per supplier (its lines and total checked by supply's tests).
        issued = supply_demo["issued_statements"]
        assert sorted(row["supplier_id"] for row in issued) == sorted(supply_demo["suppliers"])
        assert {row["status"] for row in issued} == {"issued"}
        assert all(row["lines"] > 0 for row in issued)
        # The supplier portal's demo sign-in is a demo supplier's user, the one the demo's orders wait for.
        portal_user = demo["credentials"]["supplier_user"]
        assert portal_user["supplier_id"] == supply_demo["portal"]["supplier_id"] in supply_demo["suppliers"]
        assert portal_user["client_id"] == supply_demo["portal"]["client_id"]
        clients_after_first_run = registered_clients(str(stack["postgres_url"]))
        supply_after_first_run = supply_rows(str(stack["postgres_url"]))
        gateway_pid = int(re.search(r"started gateway \(pid (\d+)\)", "".join(first_output)).group(1))  # type: ignore[union-attr]
    assert "[stack] stopped" in "".join(first_output)
    assert re.search(r"console sign-in as headquarters: HQ-\S+ / \S+", "".join(first_output))
    assert re.search(r"console sign-in as store manager of store S\d+: \S+ / \S+", "".join(first_output))
    assert processes_using(str(state_dir)) == [], "a server outlived Ctrl-C"
    assert not Path(f"/proc/{gateway_pid}").exists(), "the gateway outlived Ctrl-C"
    assert clients_after_first_run == demo["clients_registered"] > 0

    with local_stack(state_dir) as (_, stack_again, second_output):
        assert get(f"{stack_again['gateway_url']}/readyz")[0] == 200
        assert registered_clients(str(stack_again["postgres_url"])) == clients_after_first_run
        assert supply_rows(str(stack_again["postgres_url"])) == supply_after_first_run
        assert stack_again["gateway_url"] == stack["gateway_url"], "ports should stay stable across runs"
    assert not any("loading demo data" in line for line in second_output)
    assert processes_using(str(state_dir)) == []


@pytest.fixture(scope="module")
def stack_on_test_servers(infra: Infra) -> Iterator[tuple[Path, dict[str, object], list[str]]]:
    """One `make run` on the test run's PostgreSQL and NATS, shared by this module's tests that
    only read from it or add their own data: starting a stack (demo load included) is the
    dearest step of the suite. Its state lives in `.local` of a folder, as in a checkout."""
    folder = Path(tempfile.mkdtemp(prefix="retail-stack-test-"))
    servers = {"DATABASE_URL": infra.postgres_admin_url, "NATS_URL": infra.nats_url}
    before = run_in_fresh_loop(lambda: snapshot_streams(infra.nats_url))
    try:
        with local_stack(folder / ".local", servers) as (_, stack, output):
            yield folder / ".local", stack, output
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        # The demo's events (goods receipts, item changes, …) and the services' durables must not
        # reach a later test's service started with a default durable name on the same server.
        run_in_fresh_loop(lambda: restore_streams(infra.nats_url, before))


def test_make_run_uses_existing_servers_named_by_the_environment(
    stack_on_test_servers: tuple[Path, dict[str, object], list[str]], infra: Infra
) -> None:
    state_dir, stack, output = stack_on_test_servers
    assert get(f"{stack['gateway_url']}/readyz")[0] == 200
    assert stack["nats_url"] == infra.nats_url
    assert registered_clients(str(stack["postgres_url"])) > 0
    text = "".join(output)
    assert "using PostgreSQL from DATABASE_URL" in text
    assert "using NATS from NATS_URL" in text
    assert "starting PostgreSQL" not in text
    assert "starting NATS" not in text
    assert not (state_dir / "postgres").exists()
    assert not (state_dir / "nats").exists()


def test_readme_first_five_minutes_run_as_printed_against_make_run(
    stack_on_test_servers: tuple[Path, dict[str, object], list[str]],
) -> None:
    for tool in ("bash", "curl", "python3"):
        assert shutil.which(tool), f"the README walk-through needs {tool} on PATH"
    blocks = walkthrough_blocks(README.read_text())
    assert len(blocks) == len(CHECKS), "the README's walk-through and the CHECKS of its test must change together"
    state_dir, _, _ = stack_on_test_servers

    outputs = run_walkthrough(blocks, checkout=state_dir.parent)

    check_walkthrough(blocks, outputs)
