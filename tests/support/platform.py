"""The whole platform as real processes for end-to-end tests: every service and the gateway,
each with its own migrated database, on the test run's NATS, with a small demo retailer loaded.

What ``make run`` does, minus the shelf-label station: the same ``python -m`` entry points,
the same demo loaders (each service's part of one :class:`~demodata.DemoRetailer`), and one
demo client of every kind (app back end, POS terminal, supplier user, store guide, store
manager, headquarters) to call the gateway with.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from demodata import DemoRetailer, DemoScale
from devstack.servers import free_port
from gateway.operations.demo import load_demo as load_gateway_demo
from services.inventory.demo import load_demo as load_inventory_demo
from services.marketing.demo import load_demo as load_marketing_demo
from services.member.demo import load_demo as load_member_demo
from services.pricing.demo import load_demo as load_pricing_demo
from tests.conftest import Infra, create_database_from, run_in_fresh_loop
from tests.e2e.test_gateway_process import REPO, gateway_env
from tests.support.messaging import restore_streams, snapshot_streams

# Small enough to load in seconds, with every id the API examples name (SKU00030, S001, SUP001).
SMALL_SCALE = dataclasses.replace(
    DemoScale.demo(), store_count=2, sku_count=40, supplier_count=2, member_count=60, history_days=21
)
# Demo credential labels (gateway.operations.demo), one per kind of client and staff role.
CLIENT_LABELS = ("app", "pos_terminal", "supplier_user", "store_guide", "store_manager", "headquarters")
SERVICES = {
    "inventory": "services.inventory",
    "member": "services.member",
    "pricing": "services.pricing",
    "marketing": "services.marketing",
    "supply": "services.supply",
    "alerts": "services.alerts",
}


@dataclass(frozen=True)
class Platform:
    """A running platform: the gateway's URL, the demo retailer it holds, and one client of each kind."""

    base_url: str
    retailer: DemoRetailer
    credentials: dict[str, dict[str, str]]
    logs: Path

    def token(self, label: str) -> str:
        """A fresh access token of the demo client ``label`` (e.g. ``pos_terminal``)."""
        credential = self.credentials[label]
        grant = {
            "grant_type": "client_credentials",
            "client_id": credential["client_id"],
            "client_secret": credential["client_secret"],
        }
        response = httpx.post(f"{self.base_url}/v1/auth/token", data=grant, timeout=30)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def log_tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in sorted(self.logs.glob("*.log")))


def migrate(module: str, env: dict[str, str]) -> None:
    migrated = subprocess.run(
        [sys.executable, "-m", f"{module}.migrate"], env=env, cwd=REPO, capture_output=True, timeout=180, check=False
    )
    assert migrated.returncode == 0, migrated.stderr.decode()


def launch(module: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=REPO, stdout=log, stderr=log)


def wait_until(
    ready: Callable[[], bool], what: str, processes: dict[str, subprocess.Popen[bytes]], logs: Path, within: float
) -> None:
    """Poll ``ready()`` until it is true; fail naming ``what`` (with the logs) past the deadline or a crash."""
    deadline = time.monotonic() + within
    while not ready():
        crashed = {name: process.returncode for name, process in processes.items() if process.poll() is not None}
        if crashed or time.monotonic() > deadline:
            tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in sorted(logs.glob("*.log")))
            raise AssertionError(f"{what} not ready within {within}s (exited: {crashed}):\n{tails}")
        time.sleep(0.2)


def serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def gateway_ready(base_url: str) -> bool:
    """The gateway is ready and sees every backend serving (their state is reported beside readiness)."""
    try:
        answer = httpx.get(f"{base_url}/readyz", timeout=5.0)
    except httpx.TransportError:
        return False
    return answer.status_code == 200 and answer.json().get("backends") == dict.fromkeys(SERVICES, "ok")


@contextmanager
def running_platform(
    infra: Infra,
    kit_template: str,
    logs: Path,
    *,
    gateway_settings: Mapping[str, str] | None = None,
    service_settings: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Platform]:
    """Start every service and the gateway with the small demo retailer loaded; stop them all after.

    ``gateway_settings`` adds environment variables of the gateway, ``service_settings`` of a
    service by name (e.g. inventory's ``REPLENISHMENT_INTERVAL_SECONDS``)."""
    retailer = DemoRetailer(scale=SMALL_SCALE)
    run = uuid.uuid4().hex[:8]
    common = {"APP_ENV": "test", "NATS_URL": infra.nats_url, "LOG_LEVEL": "WARNING"}
    # Own durable consumers: other tests' events on the shared streams are not this platform's.
    durables = {
        "SALES_CONSUMER_DURABLE": f"member-sales-{run}",
        "CATALOGUE_CONSUMER_DURABLE": f"inv-cat-{run}",
        "INVENTORY_CONSUMER_DURABLE": f"pricing-inv-{run}",
        "MARKETING_SALES_DURABLE": f"mkt-sales-{run}",
        "MARKETING_MEMBERS_DURABLE": f"mkt-members-{run}",
        "MARKETING_CATALOGUE_DURABLE": f"mkt-cat-{run}",
        "SUPPLY_CATALOGUE_DURABLE": f"supply-cat-{run}",
        "SUPPLY_REPLENISHMENT_DURABLE": f"supply-repl-{run}",
        "SUPPLY_SALES_DURABLE": f"supply-sales-{run}",
        "SUPPLY_SETTLEMENT_DURABLE": f"supply-settle-{run}",
        "SUPPLY_CONSUMER_DURABLE": f"inv-supply-{run}",
        "ALERTS_INVENTORY_DURABLE": f"alerts-inv-{run}",
        "ALERTS_PRICING_DURABLE": f"alerts-pricing-{run}",
        "ALERTS_MARKETING_DURABLE": f"alerts-mkt-{run}",
        "ALERTS_SUPPLY_DURABLE": f"alerts-supply-{run}",
        "ALERTS_SALES_DURABLE": f"alerts-sales-{run}",
    }
    ports = {name: free_port() for name in SERVICES}
    databases = {name: create_database_from(infra, kit_template) for name in (*SERVICES, "gateway")}
    http_port = free_port()
    targets = {f"{name.upper()}_SERVICE_TARGET": f"127.0.0.1:{port}" for name, port in ports.items()}
    environments = {
        name: gateway_env(
            **common,
            **durables,
            **targets,
            DATABASE_URL=databases[name],
            GRPC_PORT=str(ports[name]),
            **(service_settings or {}).get(name, {}),
        )
        for name in SERVICES
    }
    environments["gateway"] = gateway_env(
        **common,
        DATABASE_URL=databases["gateway"],
        HTTP_PORT=str(http_port),
        GATEWAY_BACKENDS=",".join(f"{name}=127.0.0.1:{port}" for name, port in ports.items()),
        **(gateway_settings or {}),
    )
    modules = SERVICES | {"gateway": "gateway"}
    for name, module in modules.items():
        migrate(module, environments[name])
    for name, loader in (
        ("inventory", load_inventory_demo),
        ("member", load_member_demo),
        ("pricing", load_pricing_demo),
        ("marketing", load_marketing_demo),
    ):
        run_in_fresh_loop(partial(loader, databases[name], retailer))
    demo = run_in_fresh_loop(partial(load_gateway_demo, databases["gateway"], retailer, logs))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with ExitStack() as stack:
        # Last of all, once every process stopped: the platform's events and durables leave the shared server.
        before = run_in_fresh_loop(lambda: snapshot_streams(infra.nats_url))
        stack.callback(lambda: run_in_fresh_loop(lambda: restore_streams(infra.nats_url, before)))
        for name, module in modules.items():
            processes[name] = launch(module, environments[name], logs / f"{name}.log")
            stack.callback(_stop, processes[name])
        base_url = f"http://127.0.0.1:{http_port}"
        for name, port in ports.items():
            wait_until(partial(serving, port), name, processes, logs, within=90)
        wait_until(partial(gateway_ready, base_url), "gateway", processes, logs, within=60)
        yield Platform(base_url, retailer, demo["credentials"], logs)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
