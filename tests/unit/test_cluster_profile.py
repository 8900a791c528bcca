"""`make run-cluster` runs JetStream the way the production manifests do, read from one place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devstack.cluster import ClusterStack, production_jetstream
from devstack.stack import Ports
from tools import k8s_validate
from tools.k8s_validate import K8S_ROOT, Manifest


@pytest.fixture(scope="module")
def prod() -> list[Manifest]:
    return k8s_validate.render(K8S_ROOT / "overlays" / "prod")


def rendered_nats(docs: list[Manifest]) -> tuple[int, str, str, str]:
    """(servers, nats.conf, cluster.conf, JETSTREAM_REPLICAS) as the overlay renders them."""
    (statefulset,) = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "nats"]
    maps = {d["metadata"]["name"].rsplit("-", 1)[0]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    replicas = maps["platform-config"]["JETSTREAM_REPLICAS"]
    conf = maps["nats-config"]
    return int(statefulset["spec"]["replicas"]), conf["nats.conf"], conf["cluster.conf"], replicas


def test_the_cluster_profile_runs_the_servers_fsync_and_stream_replication_that_prod_renders(
    prod: list[Manifest], tmp_path: Path
) -> None:
    servers, nats_conf, cluster_conf, stream_replicas = rendered_nats(prod)
    stack = ClusterStack(tmp_path, environ={})
    nodes = stack.plan_nats(Ports())

    assert len(nodes) == servers == 3
    assert str(stack.jetstream.stream_replicas) == stream_replicas == "3"
    for node in nodes:
        config = node.config_text()
        for setting in ("sync_interval", "max_memory_store"):
            line = next(line.strip() for line in nats_conf.splitlines() if line.strip().startswith(f"{setting}:"))
            assert line in config, f"{node.server_name}: {setting} differs from prod ({line!r})\n{config}"
        assert "sync_interval: always" in config
        for setting in ("ping_interval", "ping_max"):
            line = next(line.strip() for line in cluster_conf.splitlines() if line.strip().startswith(f"{setting}:"))
            assert line in config, f"{node.server_name}: route {setting} differs from prod ({line!r})\n{config}"
        peers = [other.cluster.port for other in nodes if other is not node and other.cluster]
        assert node.cluster is not None
        assert sorted(node.cluster.peer_ports) == sorted(peers)
        for port in peers:
            assert f"nats-route://127.0.0.1:{port}" in config


def test_the_cluster_profile_follows_a_change_of_the_manifests(tmp_path: Path) -> None:
    k8s = tmp_path / "k8s"
    shutil.copytree(K8S_ROOT, k8s)
    conf = k8s / "base" / "nats" / "nats.conf"
    conf.write_text(conf.read_text().replace("sync_interval: always", "sync_interval: 10s"))
    overlay = k8s / "overlays" / "prod" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("JETSTREAM_REPLICAS=3", "JETSTREAM_REPLICAS=2"))

    changed = production_jetstream(k8s)

    assert (changed.sync_interval, changed.stream_replicas, changed.nodes) == ("10s", 2, 3)
    assert changed.route_silence_seconds == 30.0
    assert production_jetstream().sync_interval == "always"
