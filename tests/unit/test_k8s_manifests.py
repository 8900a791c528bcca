"""The Kubernetes manifests, rendered offline with kubectl kustomize, and their validator."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tools import k8s_validate
from tools.k8s_validate import K8S_ROOT, Manifest

TEMPLATE = K8S_ROOT / "templates" / "grpc-service"
OVERLAYS = ("dev", "prod")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    targets = {f"overlays/{name}": K8S_ROOT / "overlays" / name for name in OVERLAYS}
    targets["template"] = TEMPLATE
    return {name: k8s_validate.render(path) for name, path in targets.items()}


def one(docs: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def config_map(docs: list[Manifest], prefix: str) -> dict[str, str]:
    # Generated ConfigMaps carry a content hash after their name.
    matches = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(prefix + "-")]
    assert len(matches) == 1
    data: dict[str, str] = matches[0]["data"]
    return data


def containers(docs: list[Manifest]) -> Iterator[tuple[Manifest, Mapping[str, Any]]]:
    for doc in docs:
        template = k8s_validate.pod_template(doc)
        if template is not None:
            for _, container in k8s_validate.containers_of(template["spec"]):
                yield doc, container


def secrets_read(docs: list[Manifest], kind: str, name: str) -> dict[str, tuple[str, str]]:
    """Setting -> (Secret, key) for every FOO_FILE its first container sees, through its Secret mounts."""
    pod_spec = one(docs, kind, name)["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    secret_of_volume = {v["name"]: v["secret"]["secretName"] for v in pod_spec.get("volumes", []) if "secret" in v}
    mounts = {
        m["mountPath"]: secret_of_volume[m["name"]]
        for m in container.get("volumeMounts", [])
        if m["name"] in secret_of_volume
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source["configMapRef"]["name"].rsplit("-", 1)[0]  # generated names end in a hash
        env |= config_map(docs, prefix)
    env |= {v["name"]: v["value"] for v in container.get("env", []) if "value" in v}
    read: dict[str, tuple[str, str]] = {}
    for variable, path in env.items():
        if variable.endswith("_FILE"):
            folder, key = path.rsplit("/", 1)
            read[variable.removesuffix("_FILE")] = (mounts[folder], key)
    return read


def test_every_overlay_and_template_passes_schema_and_policy_validation() -> None:
    targets = k8s_validate.discover_targets()
    assert {t.label for t in targets} >= {"overlays/dev", "overlays/prod", "templates/grpc-service"}
    for target in targets:
        report = k8s_validate.check_target(target)
        assert report.problems == [], f"{target.label}: {report.problems}"


def test_every_base_is_deployed_by_some_overlay() -> None:
    assert k8s_validate.unused_bases() == []


def test_grpc_service_template_probes_the_standard_grpc_health_service(rendered: dict[str, list[Manifest]]) -> None:
    deployment = one(rendered["template"], "Deployment", "example-service")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["grpc"] == {"port": 50051}
    assert container["livenessProbe"]["grpc"]["port"] == 50051
    assert container["startupProbe"]["grpc"]["port"] == 50051
    # An outage of PostgreSQL or NATS makes the pod unready, never restarts it.
    assert container["livenessProbe"]["grpc"].get("service", "") != ""
    assert container["command"] == ["python", "-m", "services.example_service"]


def test_grpc_service_template_exposes_a_named_grpc_port_with_grpc_app_protocol(
    rendered: dict[str, list[Manifest]],
) -> None:
    service = one(rendered["template"], "Service", "example-service")
    assert service["spec"]["ports"] == [
        {"name": "grpc", "port": 50051, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"}
    ]
    deployment = one(rendered["template"], "Deployment", "example-service")
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {"name": "grpc", "containerPort": 50051, "protocol": "TCP"} in ports


def test_grpc_service_template_brings_its_migration_job_pdb_and_own_database(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = rendered["template"]
    job = one(docs, "Job", "example-service-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "-m",
        "services.example_service.migrate",
    ]
    assert one(docs, "PodDisruptionBudget", "example-service")["spec"]["maxUnavailable"] == 1
    database = one(docs, "Cluster", "example-service-db")
    assert database["spec"]["bootstrap"]["initdb"] == {
        "database": "example_service",
        "owner": "example_service",
        "dataChecksums": True,
        "encoding": "UTF8",
    }


def test_a_service_copied_from_the_template_and_renamed_is_valid_and_keeps_no_example_name(tmp_path: Path) -> None:
    # The recipe in deploy/k8s/README.md: copy the folder, replace both spellings of the name.
    copied = tmp_path / "inventory"
    shutil.copytree(TEMPLATE, copied)
    for path in copied.iterdir():
        path.write_text(
            path.read_text().replace("example-service", "inventory").replace("example_service", "inventory")
        )
    docs = k8s_validate.render(copied)
    assert k8s_validate.check_documents(docs, "template") == []
    assert "example" not in repr(docs)
    assert one(docs, "Deployment", "inventory")["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "-m",
        "services.inventory",
    ]


def test_prod_runs_a_three_server_jetstream_cluster_that_syncs_every_write(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = rendered["overlays/prod"]
    nats = one(docs, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["podManagementPolicy"] == "Parallel"
    conf = config_map(docs, "nats-config")
    assert "sync_interval: always" in conf["nats.conf"]
    assert "include ./cluster.conf" in conf["nats.conf"]
    for ordinal in range(3):
        assert f"nats://nats-{ordinal}.nats-headless:6222" in conf["cluster.conf"]
    assert config_map(docs, "platform-config")["JETSTREAM_REPLICAS"] == "3"
    spread = nats["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {"kubernetes.io/hostname": "DoNotSchedule"}.items() <= {
        c["topologyKey"]: c["whenUnsatisfiable"] for c in spread
    }.items()


def test_nats_exposes_a_headless_route_service_and_probes_its_monitoring_port(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = rendered["overlays/prod"]
    headless = one(docs, "Service", "nats-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert one(docs, "Service", "nats")["spec"]["ports"][0]["port"] == 4222
    container = one(docs, "StatefulSet", "nats")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "monitor"
        assert container[probe]["httpGet"]["path"].startswith("/healthz")
    assert container["image"].startswith("nats:2.")


def test_dev_runs_a_single_nats_server_without_cluster_routes(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["overlays/dev"]
    assert one(docs, "StatefulSet", "nats")["spec"]["replicas"] == 1
    conf = config_map(docs, "nats-config")
    assert "nats://" not in conf["cluster.conf"]
    assert "sync_interval: always" in conf["nats.conf"]
    assert config_map(docs, "platform-config")["JETSTREAM_REPLICAS"] == "1"


@pytest.mark.parametrize(("overlay", "instances"), [("dev", 1), ("prod", 3)])
def test_every_postgres_cluster_has_the_instances_of_its_environment(
    rendered: dict[str, list[Manifest]], overlay: str, instances: int
) -> None:
    clusters = [d for d in rendered[f"overlays/{overlay}"] if d["kind"] == "Cluster"]
    names = [c["metadata"]["name"] for c in clusters]
    assert {"gateway-db", "inventory-db", "member-db", "pricing-db"} <= set(names)  # one per component owning data
    for cluster in clusters:
        component = cluster["metadata"]["name"].removesuffix("-db")
        assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
        assert cluster["spec"]["instances"] == instances
        assert cluster["spec"]["bootstrap"]["initdb"]["database"] == component.replace("-", "_")
        synchronous = cluster["spec"]["postgresql"].get("synchronous")
        if instances > 1:
            assert synchronous == {"method": "any", "number": 1, "dataDurability": "required"}
        else:
            assert synchronous is None


@pytest.mark.parametrize(("overlay", "app_env"), [("dev", "staging"), ("prod", "production")])
def test_each_overlay_sets_its_environment_and_pins_the_platform_image(
    rendered: dict[str, list[Manifest]], overlay: str, app_env: str
) -> None:
    docs = rendered[f"overlays/{overlay}"]
    assert config_map(docs, "platform-config")["APP_ENV"] == app_env
    images = {c["image"] for d, c in containers(docs) if d["metadata"]["name"].startswith("gateway")}
    assert len(images) == 1
    (image,) = images
    assert image.startswith("registry.example.com/retail/platform:")
    assert not image.endswith(":latest")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_reaches_every_deployed_grpc_service(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    docs = rendered[f"overlays/{overlay}"]
    backends = dict(entry.split("=", 1) for entry in config_map(docs, "gateway-config")["GATEWAY_BACKENDS"].split(","))
    assert backends == {
        "inventory": "inventory:50051",
        "member": "member:50051",
        "pricing": "pricing:50051",
        "marketing": "marketing:50051",
        "supply": "supply:50051",
        "alerts": "alerts:50051",
    }
    for name in backends:
        ports = one(docs, "Service", name)["spec"]["ports"]
        assert [(port["name"], port["port"]) for port in ports] == [("grpc", 50051)]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_marketing_runs_its_own_module_and_reaches_the_member_service_where_it_listens(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    docs = rendered[f"overlays/{overlay}"]
    container = one(docs, "Deployment", "marketing")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "services.marketing"]
    assert secrets_read(docs, "Deployment", "marketing") == {"DATABASE_URL": ("marketing-secrets", "DATABASE_URL")}
    target = config_map(docs, "marketing-config")["MEMBER_SERVICE_TARGET"]
    host, port = target.removeprefix("dns:///").split(":")
    member_ports = one(docs, "Service", host)["spec"]["ports"]
    assert [(entry["name"], entry["port"]) for entry in member_ports] == [("grpc", int(port))]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_supply_runs_its_own_module_on_its_own_database_cluster(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    docs = rendered[f"overlays/{overlay}"]
    container = one(docs, "Deployment", "supply")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "services.supply"]
    assert secrets_read(docs, "Deployment", "supply") == {"DATABASE_URL": ("supply-secrets", "DATABASE_URL")}
    migration = one(docs, "Job", "supply-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert migration["command"] == ["python", "-m", "services.supply.migrate"]
    database = one(docs, "Cluster", "supply-db")["spec"]["bootstrap"]["initdb"]
    assert (database["database"], database["owner"]) == ("supply", "supply")


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_alerts_runs_its_own_module_on_its_own_database_cluster(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    docs = rendered[f"overlays/{overlay}"]
    container = one(docs, "Deployment", "alerts")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "services.alerts"]
    assert secrets_read(docs, "Deployment", "alerts") == {"DATABASE_URL": ("alerts-secrets", "DATABASE_URL")}
    migration = one(docs, "Job", "alerts-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert migration["command"] == ["python", "-m", "services.alerts.migrate"]
    database = one(docs, "Cluster", "alerts-db")["spec"]["bootstrap"]["initdb"]
    assert (database["database"], database["owner"]) == ("alerts", "alerts")


@pytest.mark.parametrize(("overlay", "key_required"), [("dev", False), ("prod", True)])
def test_pricing_takes_its_secrets_from_pricing_secrets_and_prod_requires_the_label_station_key(
    rendered: dict[str, list[Manifest]], overlay: str, key_required: bool
) -> None:
    docs = rendered[f"overlays/{overlay}"]
    container = one(docs, "Deployment", "pricing")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "services.pricing"]
    expected = {"DATABASE_URL": ("pricing-secrets", "DATABASE_URL")}
    if key_required:  # never the empty default in production: the pod stops without the file
        expected["LABEL_STATION_API_KEY"] = ("pricing-secrets", "LABEL_STATION_API_KEY")
    assert secrets_read(docs, "Deployment", "pricing") == expected
    assert "LABEL_STATION_API_KEY" not in config_map(docs, "pricing-config")
    migrate = one(docs, "Job", "pricing-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"] == ["python", "-m", "services.pricing.migrate"]


def test_no_secret_with_values_is_committed(rendered: dict[str, list[Manifest]]) -> None:
    for docs in rendered.values():
        for doc in docs:
            if doc["kind"] == "Secret":
                assert not doc.get("data"), doc["metadata"]["name"]
                assert not doc.get("stringData"), doc["metadata"]["name"]
    assert secrets_read(rendered["overlays/prod"], "Deployment", "gateway") == {
        key: ("gateway-secrets", key) for key in ("DATABASE_URL", "TOKEN_SIGNING_KEYS", "MEMBER_LOOKUP_KEY")
    }
    assert secrets_read(rendered["overlays/prod"], "Deployment", "member") == {
        key: ("member-secrets", key) for key in ("DATABASE_URL", "MEMBER_LOOKUP_KEY", "MEMBER_DATA_KEYS")
    }
    assert not any(d["kind"] == "Secret" for d in rendered["overlays/prod"])


def test_every_deployment_rolls_out_without_taking_a_pod_away(rendered: dict[str, list[Manifest]]) -> None:
    deployments = [d for docs in rendered.values() for d in docs if d["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_every_container_runs_non_root_on_a_read_only_root_filesystem(rendered: dict[str, list[Manifest]]) -> None:
    for docs in rendered.values():
        for workload, container in containers(docs):
            pod_spec = k8s_validate.pod_template(workload)["spec"]  # type: ignore[index]
            assert pod_spec["securityContext"]["runAsNonRoot"] is True
            assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            assert pod_spec["automountServiceAccountToken"] is False
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_the_gateway_drains_before_it_stops_and_stops_within_its_grace_period(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = rendered["overlays/prod"]
    pod_spec = one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    shutdown = int(config_map(docs, "gateway-config")["SHUTDOWN_GRACE_SECONDS"])
    drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert drain > 0
    assert pod_spec["terminationGracePeriodSeconds"] > drain + shutdown
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert config_map(docs, "gateway-config")["HTTP_HOST"] == "0.0.0.0"  # noqa: S104 - the kubelet must reach it


def test_services_select_only_server_pods_never_the_migration_jobs(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["overlays/prod"]
    selector = one(docs, "Service", "gateway")["spec"]["selector"]
    job_labels = one(docs, "Job", "gateway-migrate")["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items()


# --- the validator rejects what it should ---------------------------------------------------


@pytest.fixture
def prod_gateway(rendered: dict[str, list[Manifest]]) -> Manifest:
    return copy.deepcopy(one(rendered["overlays/prod"], "Deployment", "gateway"))


def test_validator_rejects_an_unknown_field_in_strict_mode(prod_gateway: Manifest) -> None:
    prod_gateway["spec"]["template"]["spec"]["containers"][0]["readinessProb"] = {"grpc": {"port": 50051}}
    problems = k8s_validate.schema_problems(prod_gateway)
    assert len(problems) == len(k8s_validate.KUBERNETES_VERSIONS)
    assert all("'readinessProb' was unexpected" in problem for problem in problems)


def test_validator_rejects_a_wrongly_typed_field(prod_gateway: Manifest) -> None:
    prod_gateway["spec"]["replicas"] = "three"
    assert any("is not of type 'integer'" in p for p in k8s_validate.schema_problems(prod_gateway))


def test_validator_rejects_a_cnpg_cluster_outside_our_schema(rendered: dict[str, list[Manifest]]) -> None:
    cluster = copy.deepcopy(one(rendered["overlays/prod"], "Cluster", "gateway-db"))
    assert k8s_validate.schema_problems(cluster) == []
    cluster["spec"]["postgresql"]["parameters"]["max_connections"] = 200
    cluster["spec"]["bootstrap"]["initdb"]["database"] = "gateway-db"
    cluster["spec"]["instancez"] = 3
    problems = "\n".join(k8s_validate.schema_problems(cluster))
    assert "max_connections: 200 is not of type 'string'" in problems
    assert "bootstrap.initdb.database" in problems
    assert "'instancez' was unexpected" in problems


def test_validator_rejects_a_custom_resource_it_has_no_schema_for() -> None:
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert "no schema for example.com/v1 Widget" in k8s_validate.schema_problems(doc)[0]


def test_policy_rejects_a_root_writable_deployment_that_may_drop_pods(prod_gateway: Manifest) -> None:
    pod_spec = prod_gateway["spec"]["template"]["spec"]
    del pod_spec["securityContext"]["runAsNonRoot"]
    del pod_spec["containers"][0]["securityContext"]["runAsNonRoot"]
    pod_spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    del pod_spec["containers"][0]["resources"]["limits"]
    del pod_spec["containers"][0]["readinessProbe"]
    prod_gateway["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 1
    problems = "\n".join(k8s_validate.workload_problems(prod_gateway, pinned_images=True))
    assert "runAsNonRoot must be true" in problems
    assert "readOnlyRootFilesystem must be true" in problems
    assert "resources.limits.memory is required" in problems
    assert "readinessProbe is required" in problems
    assert "maxUnavailable must be set to 0" in problems


def test_policy_rejects_a_liveness_probe_that_waits_on_dependencies(prod_gateway: Manifest) -> None:
    container = prod_gateway["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"]["httpGet"]["path"] = "/readyz"
    problems = k8s_validate.workload_problems(prod_gateway, pinned_images=True)
    assert any("livenessProbe asks the same as readinessProbe" in p for p in problems)


def test_policy_rejects_unpinned_images_and_malformed_quantities(prod_gateway: Manifest) -> None:
    container = prod_gateway["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "registry.example.com/retail/platform:latest"
    container["resources"]["requests"]["memory"] = "lots"
    problems = "\n".join(k8s_validate.workload_problems(prod_gateway, pinned_images=True))
    assert "uses :latest" in problems
    assert "'lots' is not a Kubernetes quantity" in problems


def test_policy_rejects_a_committed_secret_and_credentials_in_a_config_map(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = copy.deepcopy(rendered["overlays/prod"])
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "gateway-secrets", "namespace": "retail"},
            "stringData": {"DATABASE_URL": "postgresql://gateway:hunter2@gateway-db-rw/gateway"},
        }
    )
    config_map(docs, "gateway-config")["DATABASE_URL"] = "postgresql://gateway:hunter2@gateway-db-rw/gateway"
    problems = "\n".join(k8s_validate.cross_reference_problems(docs, complete=True))
    assert "Secret/gateway-secrets: a Secret with values must never be committed" in problems
    assert "DATABASE_URL looks like a credential" in problems


def test_policy_rejects_a_grace_period_shorter_than_drain_plus_shutdown(rendered: dict[str, list[Manifest]]) -> None:
    docs = copy.deepcopy(rendered["overlays/prod"])
    one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 25
    problems = "\n".join(k8s_validate.cross_reference_problems(docs, complete=True))
    assert "terminationGracePeriodSeconds 25 must exceed preStop sleep + SHUTDOWN_GRACE_SECONDS (30)" in problems


def test_policy_rejects_a_single_nats_server_that_still_has_cluster_routes(rendered: dict[str, list[Manifest]]) -> None:
    docs = copy.deepcopy(rendered["overlays/prod"])
    one(docs, "StatefulSet", "nats")["spec"]["replicas"] = 1
    problems = "\n".join(k8s_validate.cross_reference_problems(docs, complete=True))
    assert "a single server must have no cluster routes" in problems
    assert "JETSTREAM_REPLICAS=3 exceeds the 1 NATS server(s)" in problems


def test_policy_rejects_a_service_that_also_selects_migration_pods(rendered: dict[str, list[Manifest]]) -> None:
    docs = copy.deepcopy(rendered["overlays/prod"])
    del one(docs, "Service", "gateway")["spec"]["selector"]["app.kubernetes.io/component"]
    problems = "\n".join(k8s_validate.cross_reference_problems(docs, complete=True))
    assert "also matches the pods of Job/gateway-migrate" in problems


def test_nats_config_check_rejects_an_unknown_setting_and_a_missing_sync(rendered: dict[str, list[Manifest]]) -> None:
    docs = copy.deepcopy(rendered["overlays/prod"])
    conf = config_map(docs, "nats-config")
    conf["nats.conf"] = conf["nats.conf"].replace("sync_interval: always", "sync_intervall: always")
    problems = "\n".join(k8s_validate.nats_config_problems(docs))
    assert "must set `sync_interval: always`" in problems
    assert 'unknown field "sync_intervall"' in problems


def test_the_command_line_fails_on_a_broken_kustomization(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - service.yaml\nnamespace: retail\n")
    (tmp_path / "service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  portz: []\n"
    )
    assert k8s_validate.main([str(tmp_path)]) == 1
    assert "'portz' was unexpected" in capsys.readouterr().out


def test_the_command_line_fails_when_kustomize_cannot_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    assert k8s_validate.main([str(tmp_path)]) == 1
    assert "render failed" in capsys.readouterr().out


# --- network policies, secrets as files, and the scanner's exceptions ----------------------


def selected_by_a_policy_of_its_own(docs: list[Manifest], labels: Mapping[str, str]) -> list[str]:
    return [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "NetworkPolicy"
        and d["spec"]["podSelector"]
        and k8s_validate.selector_matches(d["spec"]["podSelector"], labels)
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_of_an_overlay_is_named_by_a_network_policy_behind_a_default_deny(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    docs = rendered[f"overlays/{overlay}"]
    deny = [
        d
        for d in docs
        if d["kind"] == "NetworkPolicy" and d["spec"]["podSelector"] == {} and "ingress" not in d["spec"]
    ]
    assert any(set(d["spec"]["policyTypes"]) == {"Ingress", "Egress"} and "egress" not in d["spec"] for d in deny)
    pods = k8s_validate.pod_label_sets(docs)
    # Every workload, and an instance of each of the seven databases.
    assert len([name for name, _ in pods if name.startswith("Cluster/")]) == 7
    # NATS, a server and a migration Job per component, seven databases, the console (no migration).
    assert len(pods) == 1 + 7 * 2 + 7 + 1
    assert "Deployment/console" in {name for name, _ in pods}
    for name, labels in pods:
        assert selected_by_a_policy_of_its_own(docs, labels), f"{name} is in no NetworkPolicy"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_container_takes_a_secret_through_an_environment_variable(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    takers = [
        f"{doc['metadata']['name']}/{container['name']}"
        for doc, container in containers(rendered[f"overlays/{overlay}"])
        if any("secretRef" in source for source in container.get("envFrom", []))
        or any("secretKeyRef" in variable.get("valueFrom", {}) for variable in container.get("env", []))
    ]
    assert takers == []


def policy(docs: list[Manifest], name: str) -> Manifest:
    return one(docs, "NetworkPolicy", name)


def admits(rule_peers: list[Mapping[str, Any]], labels: Mapping[str, str]) -> bool:
    return any(
        "podSelector" in peer
        and "namespaceSelector" not in peer
        and k8s_validate.selector_matches(peer["podSelector"], labels)
        for peer in rule_peers
    )


def test_each_database_admits_only_its_own_service_and_nats_only_platform_servers(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = rendered["overlays/prod"]
    server = {"app.kubernetes.io/part-of": "retail-platform", "app.kubernetes.io/component": "server"}
    for component in ("gateway", "inventory", "member", "pricing", "marketing", "supply"):
        database = policy(docs, f"{component}-db")
        assert database["spec"]["podSelector"] == {"matchLabels": {"cnpg.io/cluster": f"{component}-db"}}
        peers = [peer for rule in database["spec"]["ingress"] for peer in rule["from"]]
        for other in ("gateway", "inventory", "member", "pricing", "marketing", "supply", "nats"):
            labels = {**server, "app.kubernetes.io/name": other}
            assert admits(peers, labels) is (other == component), (component, other)
        # The service reaches its own database and NATS, not another service's database.
        egress = [peer for rule in policy(docs, component)["spec"]["egress"] for peer in rule.get("to", [])]
        assert admits(egress, {"cnpg.io/cluster": f"{component}-db"})
        assert not admits(egress, {"cnpg.io/cluster": "member-db" if component != "member" else "pricing-db"})
        assert admits(egress, {"app.kubernetes.io/name": "nats"})
    nats_peers = [peer for rule in policy(docs, "nats")["spec"]["ingress"] for peer in rule["from"]]
    assert admits(nats_peers, {**server, "app.kubernetes.io/name": "inventory"})
    assert not admits(nats_peers, {"cnpg.io/cluster": "inventory-db"})


def test_services_admit_the_gateway_and_member_also_marketing(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["overlays/prod"]
    server = {"app.kubernetes.io/part-of": "retail-platform", "app.kubernetes.io/component": "server"}
    for component in ("inventory", "member", "pricing", "marketing", "supply"):
        peers = [peer for rule in policy(docs, component)["spec"]["ingress"] for peer in rule["from"]]
        assert admits(peers, {**server, "app.kubernetes.io/name": "gateway"})
        assert admits(peers, {**server, "app.kubernetes.io/name": "marketing"}) is (component == "member")
        assert not admits(peers, {**server, "app.kubernetes.io/name": "console"})
    gateway_peers = [peer for rule in policy(docs, "gateway")["spec"]["ingress"] for peer in rule["from"]]
    assert admits(gateway_peers, {**server, "app.kubernetes.io/name": "console"})
    assert not admits(gateway_peers, {**server, "app.kubernetes.io/name": "inventory"})


def test_policy_rejects_a_pod_no_network_policy_names_and_a_missing_default_deny(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = [
        d
        for d in rendered["overlays/prod"]
        if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] in ("supply", "supply-db", "default-deny"))
    ]
    problems = k8s_validate.network_policy_problems(docs, require_default_deny=True)
    assert any(p.startswith("no default-deny NetworkPolicy") for p in problems)
    assert any(p.startswith("Deployment/supply: no NetworkPolicy selects") for p in problems)
    assert any(p.startswith("Job/supply-migrate: no NetworkPolicy selects") for p in problems)
    assert any(p.startswith("Cluster/supply-db: no NetworkPolicy selects") for p in problems)
    assert len(problems) == 4


def test_policy_rejects_secrets_in_the_environment_and_a_file_setting_outside_a_secret_mount(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = copy.deepcopy(rendered["overlays/prod"])
    pricing = one(docs, "Deployment", "pricing")
    container = pricing["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"].append({"secretRef": {"name": "pricing-secrets"}})
    container["env"].append(
        {
            "name": "LABEL_STATION_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "pricing-secrets", "key": "LABEL_STATION_API_KEY"}},
        }
    )
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "secrets"]
    problems = k8s_validate.cross_reference_problems(docs, complete=True)
    where = "Deployment/pricing: containers[pricing]: "
    assert [p.removeprefix(where) for p in problems if p.startswith("Deployment/pricing")] == [
        "envFrom secretRef 'pricing-secrets' puts secrets in the environment; mount the Secret and set <KEY>_FILE",
        "env LABEL_STATION_API_KEY takes a secretKeyRef; mount the Secret and set LABEL_STATION_API_KEY_FILE",
        "DATABASE_URL_FILE=/etc/retail/secrets/DATABASE_URL is not inside a Secret volume mounted in this container",
        "LABEL_STATION_API_KEY_FILE=/etc/retail/secrets/LABEL_STATION_API_KEY is not inside a Secret volume mounted "
        "in this container",
    ]


def test_every_container_runs_with_a_high_uid(rendered: dict[str, list[Manifest]]) -> None:
    for docs in rendered.values():
        for doc in docs:
            template = k8s_validate.pod_template(doc)
            if template is not None:
                assert template["spec"]["securityContext"]["runAsUser"] >= 10000, doc["metadata"]["name"]
