"""`make run-cluster`: the production topology on one machine, on loopback.

What the Kubernetes overlays promise, started as local processes:

- a three-node NATS cluster (routes between the nodes, JetStream on each) with the
  JetStream settings the manifests give the production servers: ``sync_interval`` and
  ``max_memory_store`` are read from ``deploy/k8s/base/nats/nats.conf``, the routes'
  ``ping_interval`` and ``ping_max`` from its ``cluster.conf``, the node count from
  the NATS StatefulSet, and ``JETSTREAM_REPLICAS`` (the replication of every stream) from
  the ``prod`` overlay, so the cluster profile cannot drift from what production renders
  (``tests/unit/test_cluster_profile.py`` checks that they agree);
- two processes of every service and of the gateway, each pair behind a
  :mod:`devstack.balancer` on the component's stable port (what a Kubernetes Service is),
  every process reading the same settings as in Kubernetes (``JETSTREAM_REPLICAS``, every
  NATS node's URL);
- one private PostgreSQL (its standby is not part of the local profile), the console, the
  shelf-label station simulator and the demo retailer, as ``make run`` has them.

The relay's leader election and every periodic job's lock are the services' own (advisory
locks in each service's database), so they work across the two replicas unchanged.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devstack.components import COMPONENTS, Component
from devstack.servers import NatsClusterMembership, NatsServer
from devstack.stack import LocalStack, Ports, RunningProcess, StackError, SupervisedServer
from devstack.supervision import RestartPolicy, Supervisor

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "k8s"
REPLICAS_PER_COMPONENT = 2
BALANCER_MODULE = "devstack.balancer"


@dataclass(frozen=True)
class ProductionJetStream:
    """The JetStream settings production runs with, as the Kubernetes manifests render them."""

    nodes: int
    stream_replicas: int
    sync_interval: str
    max_memory_store: str
    route_ping_interval: str
    route_ping_max: int

    @property
    def route_silence_seconds(self) -> float:
        """How long a peer may be silent before its routes are dropped (ping interval × ping max)."""
        value = self.route_ping_interval
        units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        for suffix in sorted(units, key=len, reverse=True):
            if value.endswith(suffix) and value[: -len(suffix)].isdigit():
                return int(value[: -len(suffix)]) * units[suffix] * self.route_ping_max
        raise ValueError(f"unreadable ping_interval {value!r}")


def production_jetstream(k8s: Path = K8S) -> ProductionJetStream:
    """Read the NATS node count, fsync interval, memory store cap and stream replication from ``deploy/k8s``."""
    conf = (k8s / "base" / "nats" / "nats.conf").read_text()
    jetstream = re.search(r"^jetstream\s*\{(?P<body>.*?)^\}", conf, re.MULTILINE | re.DOTALL)
    if jetstream is None:
        raise ValueError("deploy/k8s/base/nats/nats.conf has no jetstream block")
    body = "\n".join(line.split("#", 1)[0] for line in jetstream["body"].splitlines())

    def setting(name: str, block: str = body, where: str = "nats.conf's jetstream block") -> str:
        found = re.search(rf"^\s*{name}\s*:\s*\"?([^\s\"]+)\"?\s*$", block, re.MULTILINE)
        if found is None:
            raise ValueError(f"deploy/k8s/base/nats/{where} sets no {name}")
        return found[1]

    cluster = "\n".join(
        line.split("#", 1)[0] for line in (k8s / "base" / "nats" / "cluster.conf").read_text().splitlines()
    )

    statefulset = yaml.safe_load((k8s / "base" / "nats" / "statefulset.yaml").read_text())
    prod = yaml.safe_load((k8s / "overlays" / "prod" / "kustomization.yaml").read_text())
    literals = [
        literal
        for generator in prod.get("configMapGenerator", [])
        if generator.get("name") == "platform-config"
        for literal in generator.get("literals", [])
    ]
    replicas = [int(literal.split("=", 1)[1]) for literal in literals if literal.startswith("JETSTREAM_REPLICAS=")]
    if len(replicas) != 1:
        raise ValueError("the prod overlay must set JETSTREAM_REPLICAS exactly once in platform-config")
    return ProductionJetStream(
        nodes=int(statefulset["spec"]["replicas"]),
        stream_replicas=replicas[0],
        sync_interval=setting("sync_interval"),
        max_memory_store=setting("max_memory_store"),
        route_ping_interval=setting("ping_interval", cluster, "cluster.conf"),
        route_ping_max=int(setting("ping_max", cluster, "cluster.conf")),
    )


def balancer_component(component: Component) -> Component:
    return Component(
        name=f"{component.name}-balancer", module=BALANCER_MODULE, migrate_module="", protocol=component.protocol
    )


class ClusterStack(LocalStack):
    """The local stack with a NATS cluster and every component twice behind a balancer."""

    def __init__(self, state_dir: Path, **kwargs: Any) -> None:
        super().__init__(state_dir, **kwargs)
        self.jetstream = production_jetstream()
        self.nats_nodes: list[NatsServer] = []

    # -- servers -------------------------------------------------------------------------
    def plan_nats(self, ports: Ports) -> list[NatsServer]:
        """The cluster's nodes, configured and not started: each routes to the other two."""
        route_ports = [ports.take(f"nats-{i}-route") for i in range(self.jetstream.nodes)]
        return [
            NatsServer(
                self.state_dir / f"nats-{i}",
                ports.take(f"nats-{i}"),
                ports.take(f"nats-{i}-monitor"),
                server_name=f"nats-{i}",
                cluster=NatsClusterMembership(
                    name="retail-nats",
                    port=route,
                    peer_ports=[p for p in route_ports if p != route],
                    ping_interval=self.jetstream.route_ping_interval,
                    ping_max=self.jetstream.route_ping_max,
                ),
                sync_interval=self.jetstream.sync_interval,
                max_memory_store=self.jetstream.max_memory_store,
            )
            for i, route in enumerate(route_ports)
        ]

    def start_nats(self, ports: Ports) -> None:
        if self.environ.get("NATS_URL"):
            raise StackError("make run-cluster starts its own NATS cluster: unset NATS_URL")
        self.environ["JETSTREAM_REPLICAS"] = str(self.jetstream.stream_replicas)
        self.nats_nodes = self.plan_nats(ports)
        self.say(
            f"starting a {self.jetstream.nodes}-node NATS cluster (sync_interval {self.jetstream.sync_interval}, "
            f"streams replicated {self.jetstream.stream_replicas} times) on "
            + ", ".join(f"127.0.0.1:{node.port}" for node in self.nats_nodes)
        )
        for node in self.nats_nodes:  # each waits for its own ports; the cluster forms once all run
            node.start()
        self.nats_url = ",".join(node.url for node in self.nats_nodes)

    # -- components ----------------------------------------------------------------------
    def start_components(self, ports: Ports) -> str:
        gateway_url = ""
        for component in COMPONENTS:
            replicas = [self.start_replica(component, ports, i) for i in range(1, REPLICAS_PER_COMPONENT + 1)]
            for running in replicas:
                self.wait_until_ready(running)
            balancer = self.start_balancer(component, ports, replicas)
            self.wait_until_ready(balancer)
            if component.name == "gateway":
                gateway_url = balancer.url
        return gateway_url

    def start_replica(self, component: Component, ports: Ports, index: int) -> RunningProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        replica = dataclasses.replace(component, name=f"{component.name}-{index}")
        env = self.component_env(component, ports)  # service targets and the gateway's backends: the balancers
        port_key = "HTTP_PORT" if component.protocol == "http" else "GRPC_PORT"
        env[port_key] = str(ports.take(replica.name))
        log_path = self.log_dir / f"{replica.name}.log"
        scheme = "http" if component.protocol == "http" else "grpc"
        running = RunningProcess(
            replica, [sys.executable, "-m", component.module], env, log_path, f"{scheme}://127.0.0.1:{env[port_key]}"
        )
        process = running.spawn()
        self.processes.append(running)
        self.say(f"started {replica.name} (pid {process.pid}) at {running.url}, log {log_path}")
        return running

    def start_balancer(self, component: Component, ports: Ports, replicas: list[RunningProcess]) -> RunningProcess:
        balancer = balancer_component(component)
        port = ports.take(component.name)
        backends = [arg for running in replicas for arg in ("--backend", running.url.split("://", 1)[1])]
        command = [sys.executable, "-m", BALANCER_MODULE, "--listen", f"127.0.0.1:{port}", *backends]
        scheme = "http" if component.protocol == "http" else "grpc"
        balanced = dataclasses.replace(balancer, ready_path=component.ready_path)
        running = RunningProcess(
            balanced,
            command,
            {**self.environ, "PYTHONUNBUFFERED": "1"},
            self.log_dir / f"{balancer.name}.log",
            f"{scheme}://127.0.0.1:{port}",
        )
        process = running.spawn()
        self.processes.append(running)
        self.say(f"started {balancer.name} (pid {process.pid}) at {running.url} over {len(replicas)} replicas")
        return running

    def service_urls(self) -> dict[str, str]:
        return {
            p.component.name.removesuffix("-balancer"): p.url
            for p in self.processes
            if p.component.module == BALANCER_MODULE and p.component.protocol == "grpc"
        }

    # -- lifecycle -----------------------------------------------------------------------
    def supervisor(self, policy: RestartPolicy) -> Supervisor:
        supervisor = super().supervisor(policy)
        for node in self.nats_nodes:
            supervisor.watch(SupervisedServer(f"NATS {node.server_name}", node))
        return supervisor

    def stop(self, grace: float = 15.0) -> None:
        super().stop(grace)
        for node in self.nats_nodes:
            node.stop()
