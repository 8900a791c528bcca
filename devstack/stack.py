"""`make run`: the whole platform on one machine.

Starts a private PostgreSQL and NATS JetStream (unless ``DATABASE_URL`` / ``NATS_URL`` name
existing servers), creates and migrates each component's database, starts every service
and the gateway as separate processes, loads the demo retailer once, writes
``.local/stack.json`` and keeps everything up: a process that crashes is restarted with
backoff, and one in a crash loop stops the stack (see ``devstack.supervision``). Ctrl-C or
SIGTERM stops everything it started, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO, cast

import asyncpg

from devstack.components import COMPONENTS, CONSOLE, LABEL_STATION, Component
from devstack.servers import NatsServer, PostgresServer, free_port, port_is_free
from devstack.supervision import CrashLoop, RestartPolicy, Supervisor
from servicekit.settings import to_plain_url

DEMO_SEED = 20261124


class StackError(RuntimeError):
    """The stack could not start; the message says which part and where its log is."""


@dataclass
class Ports:
    """Ports chosen on the first run and reused while they stay free, so URLs stay stable."""

    values: dict[str, int] = field(default_factory=dict)
    # Ports checked in this run: once our own process listens on one it is no longer "free".
    confirmed: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> Ports:
        try:
            return cls({key: int(value) for key, value in json.loads(path.read_text()).items()})
        except (OSError, ValueError):
            return cls()

    def take(self, name: str) -> int:
        port = self.values.get(name)
        if name not in self.confirmed and (port is None or not port_is_free(port)):
            port = free_port()
            self.values[name] = port
        self.confirmed.add(name)
        return self.values[name]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.values, indent=2, sort_keys=True) + "\n")


@dataclass
class RunningProcess:
    """A component's process, and what it takes to start it again the same way."""

    component: Component
    command: list[str]
    env: dict[str, str]
    log_path: Path
    url: str
    process: subprocess.Popen[bytes] = field(init=False)

    def spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            )
        return self.process

    # -- Supervised ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.component.name

    def exit_code(self) -> int | None:
        return self.process.poll()

    def restart(self) -> str:
        with self.log_path.open("a") as log:
            log.write(f"[stack] {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name} again\n")
        return f"pid {self.spawn().pid} at {self.url}"


@dataclass
class SupervisedServer:
    """PostgreSQL or NATS, restarted in place (same port, same data) when it crashes."""

    name: str
    server: PostgresServer | NatsServer

    @property
    def log_path(self) -> Path:
        return self.server.log_file

    def exit_code(self) -> int | None:
        return None if self.server.process is None else self.server.process.poll()

    def restart(self) -> str:
        try:
            self.server.start()  # waits until it accepts connections
        except RuntimeError:
            self.server.kill()  # one that started but never became ready must not linger
            raise
        assert self.server.process is not None
        return f"pid {self.server.process.pid} on 127.0.0.1:{self.server.port}"


class LocalStack:
    """Owns every process `make run` starts, and stops them all."""

    def __init__(self, state_dir: Path, *, out: TextIO = sys.stdout, environ: Mapping[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.out = out
        self.environ = dict(os.environ if environ is None else environ)
        self.postgres: PostgresServer | None = None
        self.nats: NatsServer | None = None
        self.admin_database_url = ""
        self.nats_url = ""
        self.processes: list[RunningProcess] = []

    def say(self, message: str) -> None:
        print(f"[stack] {message}", file=self.out, flush=True)

    # -- servers -------------------------------------------------------------------------
    def start_servers(self, ports: Ports) -> None:
        self.start_postgres(ports)
        self.start_nats(ports)

    def start_postgres(self, ports: Ports) -> None:
        external_database = self.environ.get("DATABASE_URL")
        if external_database:
            self.admin_database_url = to_plain_url(external_database)
            self.say(f"using PostgreSQL from DATABASE_URL ({_without_password(self.admin_database_url)})")
        else:
            self.postgres = PostgresServer(self.state_dir / "postgres", ports.take("postgres"))
            self.say(f"starting PostgreSQL on 127.0.0.1:{self.postgres.port} (data in {self.postgres.data_dir})")
            self.postgres.start()
            self.admin_database_url = self.postgres.url

    def start_nats(self, ports: Ports) -> None:
        external_nats = self.environ.get("NATS_URL")
        if external_nats:
            self.nats_url = external_nats
            self.say("using NATS from NATS_URL")
        else:
            self.nats = NatsServer(self.state_dir / "nats", ports.take("nats"), ports.take("nats_monitor"))
            self.say(f"starting NATS JetStream on 127.0.0.1:{self.nats.port}")
            self.nats.start()
            self.nats_url = self.nats.url

    def database_url(self, component: Component) -> str:
        base, _, _ = self.admin_database_url.rpartition("/")
        return f"{base}/{component.database}"

    async def create_databases(self) -> None:
        connection = await asyncpg.connect(self.admin_database_url)
        try:
            for component in COMPONENTS:
                exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", component.database)
                if not exists:
                    await connection.execute(f'CREATE DATABASE "{component.database}"')
                    self.say(f"created database {component.database}")
        finally:
            await connection.close()

    # -- components ----------------------------------------------------------------------
    def component_env(self, component: Component, ports: Ports) -> dict[str, str]:
        env = {
            **self.environ,
            "APP_ENV": self.environ.get("APP_ENV", "local"),
            "DATABASE_URL": self.database_url(component),
            "NATS_URL": self.nats_url,
            "PYTHONUNBUFFERED": "1",
        }
        if component.protocol == "grpc":
            env["GRPC_PORT"] = str(ports.take(component.name))
            # Where each other service listens, for a service that calls one (marketing asks member).
            for service in COMPONENTS:
                if service.protocol == "grpc" and service is not component:
                    env[f"{service.name.upper()}_SERVICE_TARGET"] = f"127.0.0.1:{ports.take(service.name)}"
        else:
            env["HTTP_PORT"] = str(ports.take(component.name))
            env["GATEWAY_BACKENDS"] = ",".join(
                f"{service.name}=127.0.0.1:{ports.take(service.name)}"
                for service in COMPONENTS
                if service.protocol == "grpc"
            )
        return env

    def migrate(self, component: Component, ports: Ports) -> None:
        self.say(f"migrating {component.database}")
        result = subprocess.run(
            [sys.executable, "-m", component.migrate_module],
            env=self.component_env(component, ports),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"migrating {component.name} failed:\n{result.stderr[-3000:]}")

    def start_component(self, component: Component, ports: Ports) -> RunningProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{component.name}.log"
        env = self.component_env(component, ports)
        port = env.get("HTTP_PORT") or env["GRPC_PORT"]
        scheme = "http" if component.protocol == "http" else "grpc"
        running = RunningProcess(
            component, [sys.executable, "-m", component.module], env, log_path, f"{scheme}://127.0.0.1:{port}"
        )
        process = running.spawn()
        self.processes.append(running)
        self.say(f"started {component.name} (pid {process.pid}) at {running.url}, log {log_path}")
        return running

    def wait_until_ready(self, running: RunningProcess, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if running.process.poll() is not None:
                raise StackError(
                    f"{running.component.name} exited with code {running.process.returncode}; "
                    f"last lines of {running.log_path}:\n{_tail(running.log_path)}"
                )
            if running.component.protocol == "http" and _http_ok(f"{running.url}{running.component.ready_path}"):
                return
            if running.component.protocol == "grpc" and _grpc_serving(running.url.removeprefix("grpc://")):
                return
            time.sleep(0.2)
        raise StackError(f"{running.component.name} not ready within {timeout}s; see {running.log_path}")

    def start_components(self, ports: Ports) -> str:
        """Start every service, then the gateway, each once it is ready; returns the gateway's URL."""
        for component in COMPONENTS:
            self.wait_until_ready(self.start_component(component, ports))
        return next(p.url for p in self.processes if p.component.name == "gateway")

    def service_urls(self) -> dict[str, str]:
        return {p.component.name: p.url for p in self.processes if p.component.protocol == "grpc"}

    def start_label_station(self, ports: Ports) -> RunningProcess:
        """A batch shelf-label station simulator with the demo's labels; the pricing demo gives it to S001."""
        from services.pricing.demo import DEMO_LABELS, LABEL_STATION_ENV

        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{LABEL_STATION.name}.log"
        port = ports.take(LABEL_STATION.name)
        command = [sys.executable, "-m", LABEL_STATION.module, "batch", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--generate", str(DEMO_LABELS), "--checkin-ms", "1000"]
        env = {**self.environ, "PYTHONUNBUFFERED": "1"}
        running = RunningProcess(LABEL_STATION, command, env, log_path, f"http://127.0.0.1:{port}")
        process = running.spawn()
        self.processes.append(running)
        os.environ.setdefault(LABEL_STATION_ENV, running.url)  # read by the pricing demo loader (in this process)
        self.say(f"started {LABEL_STATION.name} simulator (pid {process.pid}) at {running.url}, log {log_path}")
        return running

    def start_console(self, ports: Ports, gateway_url: str) -> RunningProcess:
        """The operations console, a client of the gateway's public HTTP API only."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{CONSOLE.name}.log"
        port = ports.take(CONSOLE.name)
        env = {
            **self.environ,
            "APP_ENV": self.environ.get("APP_ENV", "local"),
            "GATEWAY_URL": gateway_url,
            "HTTP_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
        }
        running = RunningProcess(
            CONSOLE, [sys.executable, "-m", CONSOLE.module], env, log_path, f"http://127.0.0.1:{port}"
        )
        process = running.spawn()
        self.processes.append(running)
        self.say(f"started {CONSOLE.name} (pid {process.pid}) at {running.url}, log {log_path}")
        return running

    # -- demo data -----------------------------------------------------------------------
    async def load_demo_data(self) -> dict[str, Any]:
        """Each component loads its part once; a marker file keeps later runs from repeating it."""
        from demodata import DemoRetailer, DemoScale

        marker_path = self.state_dir / "demo-loaded.json"
        marker = _read_json(marker_path)
        # The history ends yesterday; a load resumed on a later day keeps the first day's end,
        # so every component holds the same history.
        history_end = marker.get("history_end")
        retailer = DemoRetailer(
            seed=DEMO_SEED, scale=DemoScale.demo(end_date=date.fromisoformat(history_end) if history_end else None)
        )
        outputs: dict[str, Any] = dict(marker.get("outputs", {}))
        for component in COMPONENTS:
            if component.demo_loader is None or component.name in marker.get("loaded", []):
                continue
            self.say(f"loading demo data into {component.name}")
            loader = _resolve(component.demo_loader)
            try:
                outputs[component.name] = await loader(self.database_url(component), retailer, self.state_dir)
            except Exception as exc:
                raise StackError(f"loading {component.name}'s demo data failed: {type(exc).__name__}: {exc}") from exc
            loaded = [*marker.get("loaded", []), component.name]
            marker = {"seed": DEMO_SEED, "history_end": str(retailer.history_end), "loaded": loaded, "outputs": outputs}
            marker_path.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
        return outputs

    # -- lifecycle -----------------------------------------------------------------------
    def supervisor(self, policy: RestartPolicy) -> Supervisor:
        """A supervisor of everything this stack started: servers first, then the components."""
        supervisor = Supervisor(policy, self.say)
        if self.postgres:
            supervisor.watch(SupervisedServer("PostgreSQL", self.postgres))
        if self.nats:
            supervisor.watch(SupervisedServer("NATS", self.nats))
        for running in self.processes:
            supervisor.watch(running)
        return supervisor

    def stop(self, grace: float = 15.0) -> None:
        """Stop components (gateway first), then NATS, then PostgreSQL."""
        for running in reversed(self.processes):
            if running.process.poll() is None:
                running.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for running in reversed(self.processes):
            try:
                running.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{running.component.name} did not stop in {grace}s; killing it")
                running.process.kill()
                running.process.wait()
        self.processes.clear()
        if self.nats:
            self.nats.stop()
        if self.postgres:
            self.postgres.stop()


def run(
    state_dir: Path, policy: RestartPolicy | None = None, *, with_demo: bool = True, stack: LocalStack | None = None
) -> int:
    """Bring the stack up, print where to look, and keep it up until Ctrl-C / SIGTERM:
    a process that crashes is restarted with backoff (``policy``); one in a crash loop
    stops the stack. ``with_demo=False`` leaves the databases as migrated. ``stack`` is the
    single-node :class:`LocalStack` by default (``devstack.cluster`` passes its own)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    stack = stack or LocalStack(state_dir)
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        ports = Ports.load(state_dir / "ports.json")
        stack.start_servers(ports)
        asyncio.run(stack.create_databases())
        for component in COMPONENTS:
            stack.migrate(component, ports)
        gateway_url = stack.start_components(ports)
        label_station = stack.start_label_station(ports)
        stack.wait_until_ready(label_station)
        console = stack.start_console(ports, gateway_url)
        stack.wait_until_ready(console)
        ports.save(state_dir / "ports.json")
        demo_outputs = asyncio.run(stack.load_demo_data()) if with_demo else {}
        description = {
            "gateway_url": gateway_url,
            "docs_url": f"{gateway_url}/docs",
            "openapi_url": f"{gateway_url}/openapi.json",
            "console_url": console.url,
            "services": stack.service_urls(),
            "label_station_url": label_station.url,
            "postgres_url": _without_password(stack.admin_database_url),
            "nats_url": stack.nats_url,
            "logs": str(stack.log_dir),
            "demo": demo_outputs,
        }
        stack_file = state_dir / "stack.json"
        stack_file.write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
        stack.say(f"ready: gateway {gateway_url}, API docs {gateway_url}/docs, console {console.url}")
        for line in console_sign_ins(demo_outputs):
            stack.say(line)
        stack.say(f"{'demo credentials and ' if with_demo else ''}URLs: {stack_file}; press Ctrl-C to stop everything")
        supervisor = stack.supervisor(policy or RestartPolicy())
        while True:
            time.sleep(min(0.2, supervisor.check()))
    except KeyboardInterrupt:
        stack.say("stopping")
        return 0
    except CrashLoop as exc:
        stack.say(f"error: {exc}; its last lines:\n{_tail(exc.log_path)}")
        return 1
    except StackError as exc:
        stack.say(f"error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        stack.say("stopped")


def console_sign_ins(demo_outputs: Mapping[str, Any]) -> list[str]:
    """The demo staff sign-ins of the console (headquarters, a store manager), one line each."""
    credentials = demo_outputs.get("gateway", {}).get("credentials", {})
    lines = []
    for role in ("headquarters", "store_manager"):
        credential = credentials.get(role)
        if credential:
            where = f" of store {credential['store_id']}" if credential.get("store_id") else ""
            lines.append(
                f"console sign-in as {role.replace('_', ' ')}{where}: "
                f"{credential['client_id']} / {credential['client_secret']}"
            )
    return lines


def _resolve(reference: str) -> Callable[[str, Any, Path], Awaitable[Any]]:
    module_name, _, attribute = reference.partition(":")
    return cast(Callable[[str, Any, Path], Awaitable[Any]], getattr(importlib.import_module(module_name), attribute))


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _grpc_serving(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
