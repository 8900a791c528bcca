"""Faults under load in the production topology (`make run-cluster`, issue 19).

One cluster (three NATS nodes with every stream replicated three times and fsync on
every write, two processes of every service and of the gateway behind balancers) serves
the whole scenario. A POS terminal streams sales batches through the gateway's balancer
the whole time, resending a batch the way a till does when the answer is not 200 (sales
already journaled come back as duplicates). Meanwhile, one after another:

1. a NATS node is killed with -9 (the stack's supervisor starts it again);
2. then the node leading the SALES stream;
3. then one process of every service and one gateway process, killed with -9;
4. then the NATS node a gateway publishes through is frozen (SIGSTOP) for longer than its
   peers take to drop its routes (the routes' ping interval × ping max, read from the
   manifests), and resumed; the till must be answered while it is frozen;
5. then PostgreSQL is frozen for 10 s and resumed.

Afterwards every sale the till saw acknowledged is in the journal once, inventory applied
each exactly once (inbox, sale movements and levels against the ledger), and the till
never saw a 500. What each fault cost (sales acknowledged during it, resends, how long
until the next acknowledgement) is printed and written to the test report folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest

from bench.pos_ingest import INVENTORY_SEED, LINES_PER_SALE, OPENING_ON_HAND, STORE, TERMINAL, register_clients
from devstack.cluster import production_jetstream
from devstack.components import SERVICES
from gateway.bootstrap import SERVICE_NAME as GATEWAY_CLIENT_NAME
from servicekit.messaging import connect_nats
from tests.support.faults import frozen
from tests.support.stack import RunningStack

REPORTS = Path(__file__).resolve().parents[2] / ".local" / "test-reports"
SALES_PER_BATCH = 10
UNITS_PER_LINE = 2
ACKS_PER_PHASE = 15  # batches acknowledged between two faults
POSTGRES_FREEZE_SECONDS = 10.0  # the fault itself, not a wait for something to happen
CLUSTER_START_SECONDS = 420.0
CLUSTER_ARGS = ("--cluster", "--no-demo", "--max-crashes", "20")


class RunningCluster(RunningStack):
    """`python -m devstack run --cluster` in the background."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir, *CLUSTER_ARGS, env={"APP_ENV": "local"})

    def pid_of(self, name: str) -> int:
        """The current pid of a component's process (``inventory-1``), from the stack's output."""
        pids = re.findall(rf"(?:started|restarted) {re.escape(name)} \(pid (\d+)", self.output)
        assert pids, f"{name} never started:\n{self.output}"
        return int(pids[-1])

    def ports(self) -> dict[str, int]:
        return cast(dict[str, int], json.loads((self.state_dir / "ports.json").read_text()))


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningCluster]:
    folder = Path(tempfile.mkdtemp(prefix="retail-cluster-faults-"))
    folder.chmod(0o711)  # as in test_local_stack: reachable for the no-user-namespace fallback
    running = RunningCluster(folder / "cluster")
    try:
        running.wait_for("stack.json", (folder / "cluster" / "stack.json").exists, CLUSTER_START_SECONDS)
        yield running
    finally:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGINT)
        try:
            running.process.wait(90)
        except subprocess.TimeoutExpired:
            running.process.kill()
        shutil.rmtree(folder, ignore_errors=True)


def nats_node_pid(state_dir: Path, node: int) -> int:
    """The pid of NATS node ``node``, found by its configuration file on the command line."""
    config = str(state_dir / f"nats-{node}" / "nats.conf")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if config.encode() in command and (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            return int(proc.name)
    raise AssertionError(f"NATS node {node} is not running")


def node_serving(ports: dict[str, int], client_name: str) -> int:
    """The index of a NATS node holding a connection of the client named ``client_name``."""
    for node in range(3):
        answer = httpx.get(f"http://127.0.0.1:{ports[f'nats-{node}-monitor']}/connz", params={"limit": 1024}, timeout=2)
        if any(connection.get("name") == client_name for connection in answer.json().get("connections", [])):
            return node
    raise AssertionError(f"no NATS node serves a client named {client_name}")


def stream_leader(ports: dict[str, int], stream: str) -> int:
    """The index of the NATS node leading ``stream``, asked of any node that answers."""
    for node in range(3):
        try:
            answer = httpx.get(
                f"http://127.0.0.1:{ports[f'nats-{node}-monitor']}/jsz",
                params={"streams": "true", "config": "true"},
                timeout=2,
            )
        except httpx.TransportError:
            continue
        for account in answer.json().get("account_details", []):
            for detail in account.get("stream_detail", []):
                leader = detail.get("cluster", {}).get("leader")
                if detail["name"] == stream and leader:
                    return int(str(leader).removeprefix("nats-"))
    raise AssertionError(f"no node names a leader of {stream}")


@dataclass
class Till:
    """A POS terminal uploading batches of fresh sales and resending each until it is answered 200."""

    base_url: str
    token: str
    acknowledged: list[str] = field(default_factory=list)
    batches: int = 0
    resends: int = 0
    answers: dict[int, int] = field(default_factory=dict)  # status → count, 200 included
    last_ack_at: float = 0.0
    ack_times: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def sale(self, sale_id: str) -> dict[str, Any]:
        return {
            "sale_id": sale_id,
            "store_id": STORE,
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "lines": [
                {"sku": f"SKU-{n}", "quantity": str(UNITS_PER_LINE), "unit_price": "12.50", "discount": "0.00"}
                for n in range(1, LINES_PER_SALE + 1)
            ],
        }

    def first_ack_after(self, moment: float) -> float:
        return next(at for at in list(self.ack_times) if at > moment)

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            while not self.stop.is_set():
                sales = [self.sale(f"{TERMINAL}-{uuid.uuid4().hex[:16]}") for _ in range(SALES_PER_BATCH)]
                self.upload(http, sales)

    def upload(self, http: httpx.Client, sales: list[dict[str, Any]]) -> None:
        """Send until answered 200 (a new Idempotency-Key each time: the sales carry their own ids)."""
        first = True
        while True:
            if not first:
                self.resends += 1
            first = False
            headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": uuid.uuid4().hex}
            try:
                answer = http.post("/v1/pos/sales/batch", json={"sales": sales}, headers=headers)
            except httpx.TransportError:
                self.answers[0] = self.answers.get(0, 0) + 1
                time.sleep(0.2)  # a till's pause before resending, not a wait for an event
                continue
            self.answers[answer.status_code] = self.answers.get(answer.status_code, 0) + 1
            if answer.status_code == 200:
                results = answer.json()["results"]
                if any(result["status"] == "rejected" for result in results):
                    self.errors.append(f"sales rejected: {answer.text[:500]}")
                self.acknowledged.extend(
                    result["sale_id"] for result in results if result["status"] in ("accepted", "duplicate")
                )
                self.batches += 1
                self.last_ack_at = time.monotonic()
                self.ack_times.append(self.last_ack_at)
                return
            if answer.status_code >= 500 and answer.status_code != 503:
                self.errors.append(f"{answer.status_code}: {answer.text[:500]}")
            if answer.status_code == 503 and "Retry-After" not in answer.headers:
                self.errors.append(f"503 without Retry-After: {answer.text[:300]}")
            time.sleep(min(float(answer.headers.get("Retry-After", "0.5")), 1.0))


@dataclass
class Phase:
    """What one fault cost the till."""

    fault: str
    started_at: float
    batches_before: int
    resends_before: int
    fault_seconds: float = 0.0  # how long the fault itself lasted (a freeze), ~0 for a kill
    batches_while_faulted: int = 0  # acknowledged while the node or database was frozen
    first_ack_after_fault_s: float = 0.0  # from the fault's start to the next acknowledgement
    batches_during: int = 0  # from the fault's start until ACKS_PER_PHASE after the first acknowledgement
    resends_during: int = 0


def wait_for_batches(till: Till, count: int, cluster: RunningCluster, within: float = 240.0) -> None:
    target = till.batches + count
    cluster.wait_for(f"{count} more acknowledged batches", lambda: till.batches >= target, within)


def fault(till: Till, cluster: RunningCluster, name: str, act: Callable[[], None], phases: list[Phase]) -> None:
    phase = Phase(name, time.monotonic(), till.batches, till.resends)
    act()
    phase.fault_seconds = round(time.monotonic() - phase.started_at, 2)
    phase.batches_while_faulted = till.batches - phase.batches_before
    cluster.wait_for(f"an acknowledgement after {name}", lambda: till.last_ack_at > phase.started_at, 240.0)
    phase.first_ack_after_fault_s = round(till.first_ack_after(phase.started_at) - phase.started_at, 2)
    wait_for_batches(till, ACKS_PER_PHASE, cluster)
    phase.batches_during = till.batches - phase.batches_before
    phase.resends_during = till.resends - phase.resends_before
    phases.append(phase)


async def inventory_state(url: str) -> dict[str, Any]:
    connection = await asyncpg.connect(url)
    try:
        sold = await connection.fetchval(
            "SELECT sum(on_hand) FROM stock_level WHERE location_id = $1 AND sku LIKE 'SKU-%'", STORE
        )
        return {
            "applied": int((Decimal(OPENING_ON_HAND * LINES_PER_SALE) - sold) / (UNITS_PER_LINE * LINES_PER_SALE)),
            "inbox": await connection.fetchval(
                "SELECT count(*) FROM inbox WHERE subject LIKE 'retail.sales.v1.sale_recorded.%'"
            ),
            "sale_movements": await connection.fetchval(
                "SELECT count(*) FROM stock_movement WHERE kind = 'sale' AND location_id = $1", STORE
            ),
            "levels_off_ledger": await connection.fetchval(
                "SELECT count(*) FROM stock_level s WHERE s.on_hand <> (SELECT coalesce(sum(on_hand_delta), 0) "
                "FROM stock_movement m WHERE m.sku = s.sku AND m.location_id = s.location_id)"
            ),
            "discrepancies": await connection.fetchval("SELECT count(*) FROM stock_discrepancy"),
        }
    finally:
        await connection.close()


async def journaled_sale_ids(nats_url: str) -> list[str]:
    """The sale id of every message in the SALES stream (the journal), read with an ordered consumer."""
    client = await connect_nats(nats_url, name="cluster-faults-test")
    try:
        js = client.jetstream()
        total = (await js.stream_info("SALES")).state.messages
        subscription = await js.subscribe("retail.sales.v1.>", ordered_consumer=True, stream="SALES")
        ids = []
        for _ in range(total):
            message = await subscription.next_msg(timeout=10)
            ids.append(message.headers.get("Nats-Msg-Id", "") if message.headers else "")
        await subscription.unsubscribe()
        return ids
    finally:
        await client.close()


def test_no_acknowledged_sale_is_lost_or_applied_twice_through_node_process_and_database_faults(
    cluster: RunningCluster,
) -> None:
    ports = cluster.ports()
    admin = json.loads((cluster.state_dir / "stack.json").read_text())["postgres_url"]
    base = admin.rpartition("/")[0]
    gateway_db, inventory_db = f"{base}/retail_gateway", f"{base}/retail_inventory"
    nats_url = ",".join(f"nats://127.0.0.1:{ports[f'nats-{n}']}" for n in range(3))
    secret = uuid.uuid4().hex
    asyncio.run(register_clients(gateway_db, secret, uuid.uuid4().hex))

    async def seed() -> None:
        connection = await asyncpg.connect(inventory_db)
        try:
            await connection.execute(INVENTORY_SEED)
        finally:
            await connection.close()

    asyncio.run(seed())
    gateway_url = f"http://127.0.0.1:{ports['gateway']}"
    grant = {"grant_type": "client_credentials", "client_id": TERMINAL, "client_secret": secret}
    token = httpx.post(f"{gateway_url}/v1/auth/token", data=grant, timeout=30).json()["access_token"]

    till = Till(gateway_url, token)
    uploader = threading.Thread(target=till.run, daemon=True)
    uploader.start()
    phases: list[Phase] = []
    try:
        wait_for_batches(till, ACKS_PER_PHASE, cluster)
        fault(
            till,
            cluster,
            "kill -9 NATS node nats-1",
            lambda: os.kill(nats_node_pid(cluster.state_dir, 1), signal.SIGKILL),
            phases,
        )
        cluster.wait_for("nats-1 restarted", lambda: "restarted NATS nats-1" in cluster.output, 120)

        def kill_sales_leader() -> None:
            os.kill(nats_node_pid(cluster.state_dir, stream_leader(ports, "SALES")), signal.SIGKILL)

        fault(till, cluster, "kill -9 the SALES stream leader", kill_sales_leader, phases)

        def kill_replicas() -> None:
            for component in (*(service.name for service in SERVICES), "gateway"):
                os.kill(cluster.pid_of(f"{component}-1"), signal.SIGKILL)

        fault(till, cluster, "kill -9 one process of every service and one gateway", kill_replicas, phases)

        # The node a gateway publishes the journal through: its clients must notice and move.
        frozen_node = node_serving(ports, GATEWAY_CLIENT_NAME)

        def freeze_nats_node() -> None:
            with frozen(nats_node_pid(cluster.state_dir, frozen_node)):
                time.sleep(production_jetstream().route_silence_seconds + 5)  # the fault's length

        fault(
            till,
            cluster,
            f"a gateway's NATS node nats-{frozen_node} frozen past its route pings",
            freeze_nats_node,
            phases,
        )

        def freeze_postgres() -> None:
            postmaster = int((cluster.state_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
            with frozen(postmaster):
                time.sleep(POSTGRES_FREEZE_SECONDS)  # the fault's length

        fault(till, cluster, f"PostgreSQL frozen {POSTGRES_FREEZE_SECONDS:.0f} s", freeze_postgres, phases)
    finally:
        till.stop.set()
        uploader.join(120)

    acknowledged = set(till.acknowledged)
    (node_freeze,) = [phase for phase in phases if "frozen past its route pings" in phase.fault]
    # The cluster keeps answering the till while one node (one a gateway publishes through) is frozen.
    assert node_freeze.batches_while_faulted > 0, node_freeze
    assert till.errors == []
    assert 500 not in till.answers
    assert len(acknowledged) == len(till.acknowledged) == till.batches * SALES_PER_BATCH

    # Every acknowledged sale is in the journal exactly once.
    journal = asyncio.run(journaled_sale_ids(nats_url))
    in_journal = [sale_id for sale_id in journal if sale_id in acknowledged]
    assert sorted(set(in_journal)) == sorted(acknowledged)
    assert len(in_journal) == len(acknowledged), "an acknowledged sale is in the journal twice"

    # ... and inventory applied each exactly once, whichever replica took it.
    last = -1

    def caught_up() -> bool:
        nonlocal last
        state = asyncio.run(inventory_state(inventory_db))
        last = state["applied"]
        return bool(state["applied"] >= len(journal))

    cluster.wait_for(f"inventory applying {len(journal)} sales (at {last})", caught_up, 300.0)
    state = asyncio.run(inventory_state(inventory_db))
    assert state == {
        "applied": len(journal),
        "inbox": len(journal),
        "sale_movements": len(journal) * LINES_PER_SALE,
        "levels_off_ledger": 0,
        "discrepancies": 0,
    }

    # Every other consumer of the journal handled each journaled sale exactly once too (its inbox).
    async def handled_by(database: str) -> tuple[int, int]:
        connection = await asyncpg.connect(f"{base}/{database}")
        try:
            row = await connection.fetchrow(
                "SELECT count(*) AS handled, count(DISTINCT event_id) AS distinct_sales FROM inbox "
                "WHERE subject LIKE 'retail.sales.v1.sale_recorded.%'"
            )
            return int(row["handled"]), int(row["distinct_sales"])
        finally:
            await connection.close()

    handled: dict[str, tuple[int, int]] = {}
    for database in ("retail_member", "retail_marketing", "retail_supply", "retail_alerts"):

        def caught_up_with_journal(database: str = database) -> bool:
            handled[database] = asyncio.run(handled_by(database))
            return handled[database][0] >= len(journal)

        cluster.wait_for(f"{database} handling the journal ({handled})", caught_up_with_journal, 300.0)
        assert handled[database] == (len(journal), len(journal)), database

    report = {
        "sales_acknowledged": len(acknowledged),
        "batches": till.batches,
        "resends": till.resends,
        "answers": {str(status): count for status, count in sorted(till.answers.items())},
        "phases": [{k: v for k, v in phase.__dict__.items() if k != "started_at"} for phase in phases],
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "cluster-faults.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
