"""Offline checks of the Kubernetes manifests under deploy/k8s.

Every overlay (``deploy/k8s/overlays/*``) and every template (``deploy/k8s/templates/*``)
is rendered with ``kubectl kustomize`` (the kubectl installed next to this interpreter) and
each rendered document is checked:

* built-in kinds against the Kubernetes OpenAPI schemas that ``kubernetes-validate`` ships,
  in strict mode (an unknown or misspelt field is an error), for every version in
  ``KUBERNETES_VERSIONS``;
* custom resources (the CloudNativePG ``Cluster``) against the JSON schemas in this module,
  written for the fields we use; a custom resource without a schema here is an error;
* NATS configuration files with ``nats-server -t``;
* the platform's policy: every container non-root on a read-only root filesystem with no
  capabilities, resources requested and memory limited, probes on long-running workloads,
  Deployments that never drop below their replica count, a grace period longer than the
  app's shutdown, Services and PodDisruptionBudgets that select the pods they mean to, no
  secret values in the repository, and pinned images in overlays;
* the network and secret policy: a default-deny NetworkPolicy in every overlay and, for
  every pod (the CloudNativePG instances included), a NetworkPolicy that names it; secrets
  only as mounted files, never in environment variables, and each ``*_FILE`` setting
  pointing into a Secret volume mounted in the container that reads it.

Nothing is fetched: kubectl, the schemas and nats-server all come from the pinned
requirements. ``python -m tools.k8s_validate [DIR ...]`` checks the given kustomization
directories instead of all; the exit status is 1 when any check fails.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import yaml  # type: ignore[import-untyped]

Manifest = dict[str, Any]
# A workload and its pod template.
PodOwner = tuple[Mapping[str, Any], Mapping[str, Any]]
TargetKind = Literal["overlay", "template"]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
K8S_ROOT: Final = REPO_ROOT / "deploy" / "k8s"
# The oldest Kubernetes release the platform supports, and the newest schemas we have.
KUBERNETES_VERSIONS: Final = ("1.33", "1.37")
NAMESPACE: Final = "retail"

LONG_RUNNING_KINDS: Final = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
WORKLOAD_KINDS: Final = LONG_RUNNING_KINDS | {"Job", "CronJob", "ReplicaSet", "Pod"}
CLUSTER_SCOPED_KINDS: Final = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "PriorityClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
)
# Names of settings that carry credentials: their values belong in a Secret.
SECRET_SETTING: Final = re.compile(r"(PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|_KEY$|^DATABASE_URL$)", re.IGNORECASE)

# --- schemas of the custom resources we use (only the fields we use) ---------------------

_QUANTITY_PATTERN: Final = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
_QUANTITY: Final[Mapping[str, Any]] = {
    "anyOf": [{"type": "string", "pattern": _QUANTITY_PATTERN}, {"type": "integer", "minimum": 0}]
}
_RESOURCE_LIST: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {"cpu": _QUANTITY, "memory": _QUANTITY},
    "additionalProperties": False,
}
_POSTGRES_IDENTIFIER: Final[Mapping[str, Any]] = {"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,62}$"}
_OBJECT_METADATA: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["name"],
    "additionalProperties": False,
}

CNPG_CLUSTER_SCHEMA: Final[Mapping[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "postgresql.cnpg.io/v1 Cluster (the fields the platform uses)",
    "type": "object",
    "properties": {
        "apiVersion": {"const": "postgresql.cnpg.io/v1"},
        "kind": {"const": "Cluster"},
        "metadata": _OBJECT_METADATA,
        "spec": {
            "type": "object",
            "properties": {
                "description": {"type": "string"},
                "instances": {"type": "integer", "minimum": 1, "maximum": 9},
                # The operator reads the PostgreSQL major version from the tag.
                "imageName": {
                    "type": "string",
                    "pattern": r"^[a-z0-9./_-]+:[0-9]+(\.[0-9]+)?[-a-z0-9.]*(@sha256:[a-f0-9]{64})?$",
                },
                "primaryUpdateStrategy": {"enum": ["unsupervised", "supervised"]},
                "primaryUpdateMethod": {"enum": ["switchover", "restart"]},
                "enableSuperuserAccess": {"type": "boolean"},
                "enablePDB": {"type": "boolean"},
                "bootstrap": {
                    "type": "object",
                    "properties": {
                        "initdb": {
                            "type": "object",
                            "properties": {
                                "database": _POSTGRES_IDENTIFIER,
                                "owner": _POSTGRES_IDENTIFIER,
                                "secret": {
                                    "type": "object",
                                    "properties": {"name": {"type": "string"}},
                                    "required": ["name"],
                                    "additionalProperties": False,
                                },
                                "dataChecksums": {"type": "boolean"},
                                "encoding": {"type": "string"},
                                "localeCollate": {"type": "string"},
                                "localeCType": {"type": "string"},
                            },
                            "required": ["database", "owner"],
                            "additionalProperties": False,
                        }
                    },
                    "required": ["initdb"],
                    "additionalProperties": False,
                },
                "postgresql": {
                    "type": "object",
                    "properties": {
                        # PostgreSQL settings are strings in the CRD, "200" not 200.
                        "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
                        "synchronous": {
                            "type": "object",
                            "properties": {
                                "method": {"enum": ["any", "first"]},
                                "number": {"type": "integer", "minimum": 1},
                                "dataDurability": {"enum": ["required", "preferred"]},
                            },
                            "required": ["method", "number"],
                            "additionalProperties": False,
                        },
                    },
                    "additionalProperties": False,
                },
                "storage": {
                    "type": "object",
                    "properties": {"size": _QUANTITY, "storageClass": {"type": "string"}},
                    "required": ["size"],
                    "additionalProperties": False,
                },
                "walStorage": {
                    "type": "object",
                    "properties": {"size": _QUANTITY, "storageClass": {"type": "string"}},
                    "required": ["size"],
                    "additionalProperties": False,
                },
                "resources": {
                    "type": "object",
                    "properties": {"requests": _RESOURCE_LIST, "limits": _RESOURCE_LIST},
                    "required": ["requests", "limits"],
                    "additionalProperties": False,
                },
                "affinity": {
                    "type": "object",
                    "properties": {
                        "enablePodAntiAffinity": {"type": "boolean"},
                        "topologyKey": {"type": "string"},
                        "podAntiAffinityType": {"enum": ["preferred", "required"]},
                    },
                    "additionalProperties": False,
                },
                "monitoring": {
                    "type": "object",
                    "properties": {"enablePodMonitor": {"type": "boolean"}},
                    "additionalProperties": False,
                },
            },
            "required": ["instances", "imageName", "bootstrap", "storage", "resources"],
            "additionalProperties": False,
        },
    },
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
}

CUSTOM_RESOURCE_SCHEMAS: Final[Mapping[tuple[str, str], Mapping[str, Any]]] = {
    ("postgresql.cnpg.io/v1", "Cluster"): CNPG_CLUSTER_SCHEMA,
}


class RenderError(RuntimeError):
    """kubectl kustomize could not build a directory."""


@dataclass(frozen=True)
class RenderTarget:
    """A kustomization directory to check; overlays must also pin every image."""

    path: Path
    kind: TargetKind

    @property
    def label(self) -> str:
        try:
            return str(self.path.resolve().relative_to(K8S_ROOT))
        except ValueError:
            return str(self.path)


@dataclass
class TargetReport:
    """What checking one target found."""

    target: RenderTarget
    resources: list[Manifest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- rendering ------------------------------------------------------------------------


def tool_path(name: str) -> str:
    """An executable installed next to this interpreter (the project venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RenderError(f"{name} not found next to {sys.executable} nor on PATH; run `make venv`")
    return found


def render(directory: Path) -> list[Manifest]:
    """The documents `kubectl kustomize <directory>` produces."""
    result = subprocess.run(
        [tool_path("kubectl"), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip() or f"kubectl kustomize {directory} failed")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def discover_targets(k8s_root: Path = K8S_ROOT) -> list[RenderTarget]:
    """Every overlay and every template that has a kustomization file."""
    targets: list[RenderTarget] = []
    for folder, kind in (("overlays", "overlay"), ("templates", "template")):
        for path in sorted((k8s_root / folder).glob("*/kustomization.yaml")):
            targets.append(RenderTarget(path.parent, kind))  # type: ignore[arg-type]
    return targets


def resource_name(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('kind', '?')}/{doc.get('metadata', {}).get('name', '?')}"


# --- schema validation ------------------------------------------------------------------


def schema_problems(doc: Manifest, versions: Sequence[str] = KUBERNETES_VERSIONS) -> list[str]:
    """Why `doc` does not match its schema, for each Kubernetes version; empty when it does."""
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    if key in CUSTOM_RESOURCE_SCHEMAS:
        validator = jsonschema.Draft202012Validator(CUSTOM_RESOURCE_SCHEMAS[key])
        return [
            f"{_json_path(error.absolute_path)}: {error.message}"
            for error in sorted(validator.iter_errors(doc), key=lambda error: list(error.absolute_path))
        ]
    problems: list[str] = []
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            return [f"no schema for {key[0]} {key[1]}: add one to CUSTOM_RESOURCE_SCHEMAS in tools/k8s_validate.py"]
        except kubernetes_validate.ValidationError as error:
            problems.append(f"Kubernetes {version}: {_json_path(error.absolute_path)}: {error.message}")
    return problems


def _json_path(parts: Iterable[Any]) -> str:
    return ".".join(str(part) for part in parts) or "(document)"


# --- quantities -----------------------------------------------------------------------

_QUANTITY_SUFFIXES: Final[Mapping[str, Decimal]] = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY_PARTS: Final = re.compile(r"^([+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: object) -> Decimal | None:
    """A Kubernetes resource quantity ("250m", "1Gi", 2) as a number, or None when malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    match = _QUANTITY_PARTS.match(str(value))
    if match is None or match.group(2) not in _QUANTITY_SUFFIXES:
        return None
    try:
        return Decimal(match.group(1)) * _QUANTITY_SUFFIXES[match.group(2)]
    except InvalidOperation:
        return None


# --- policy -----------------------------------------------------------------------------


def pod_template(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod template (metadata and spec) of a workload, or None for other kinds."""
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return doc
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    if kind in WORKLOAD_KINDS:
        return spec.get("template")
    return None


def containers_of(pod_spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            yield key, container


def workload_problems(doc: Mapping[str, Any], *, pinned_images: bool) -> list[str]:
    """Our rules for one workload: security context, resources, probes, rollout, images."""
    template = pod_template(doc)
    if template is None:
        return []
    kind = doc["kind"]
    pod_spec: Mapping[str, Any] = template.get("spec") or {}
    pod_security: Mapping[str, Any] = pod_spec.get("securityContext") or {}
    problems: list[str] = []

    if pod_spec.get("automountServiceAccountToken") is not False:
        problems.append("pod: automountServiceAccountToken must be false (no workload uses the Kubernetes API)")
    if kind == "Deployment":
        problems += _rollout_problems(doc)

    for key, container in containers_of(pod_spec):
        where = f"{key}[{container.get('name', '?')}]"
        security: Mapping[str, Any] = container.get("securityContext") or {}
        run_as_non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        if run_as_non_root is not True:
            problems.append(f"{where}: runAsNonRoot must be true (pod or container securityContext)")
        if security.get("runAsUser", pod_security.get("runAsUser")) == 0:
            problems.append(f"{where}: runAsUser 0 is root")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
        if security.get("privileged"):
            problems.append(f"{where}: privileged containers are not allowed")
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{where}: securityContext.capabilities.drop must contain ALL")
        seccomp = (security.get("seccompProfile") or pod_security.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile.type must be RuntimeDefault (pod or container)")
        problems += [f"{where}: {problem}" for problem in _resource_problems(container.get("resources") or {})]
        if kind in LONG_RUNNING_KINDS and key == "containers":
            problems += [f"{where}: {problem}" for problem in _probe_problems(container)]
        if pinned_images:
            problems += [f"{where}: {problem}" for problem in _image_problems(str(container.get("image", "")))]
        for variable in container.get("env") or []:
            if "value" in variable and SECRET_SETTING.search(str(variable.get("name", ""))):
                problems.append(f"{where}: env {variable['name']} holds a literal value; take it from a Secret")
    return problems


def _probe_handler(probe: Mapping[str, Any]) -> dict[str, Any]:
    """What a probe asks, without its timing; a gRPC probe without a service asks for ""."""
    handler = {kind: probe[kind] for kind in ("httpGet", "grpc", "tcpSocket", "exec") if kind in probe}
    if "grpc" in handler:
        handler["grpc"] = {"service": "", **handler["grpc"]}
    return handler


def _probe_problems(container: Mapping[str, Any]) -> list[str]:
    problems = [
        f"{probe} is required for a long-running workload"
        for probe in ("readinessProbe", "livenessProbe")
        if not container.get(probe)
    ]
    liveness, readiness = container.get("livenessProbe"), container.get("readinessProbe")
    if liveness and readiness and _probe_handler(liveness) == _probe_handler(readiness):
        problems.append(
            "livenessProbe asks the same as readinessProbe: an outage of a dependency would restart the pod"
        )
    return problems


def _rollout_problems(doc: Mapping[str, Any]) -> list[str]:
    strategy = (doc.get("spec") or {}).get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return ["spec.strategy.type must be RollingUpdate"]
    max_unavailable = (strategy.get("rollingUpdate") or {}).get("maxUnavailable")
    if max_unavailable not in (0, "0", "0%"):
        return [f"spec.strategy.rollingUpdate.maxUnavailable must be set to 0 (is {max_unavailable!r})"]
    return []


def _resource_problems(resources: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    for section, values, required in (("requests", requests, ("cpu", "memory")), ("limits", limits, ("memory",))):
        for name in required:
            if name not in values:
                problems.append(f"resources.{section}.{name} is required")
        for name, value in values.items():
            if parse_quantity(value) is None:
                problems.append(f"resources.{section}.{name}: {value!r} is not a Kubernetes quantity")
    for name in set(requests) & set(limits):
        request, limit = parse_quantity(requests[name]), parse_quantity(limits[name])
        if request is not None and limit is not None and request > limit:
            problems.append(f"resources: request {name}={requests[name]} exceeds its limit {limits[name]}")
    return problems


def _image_problems(image: str) -> list[str]:
    if "@sha256:" in image:
        return []
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return [f"image {image!r} has no tag (overlays must pin every image)"]
    if last.endswith(":latest"):
        return [f"image {image!r} uses :latest"]
    return []


def _config_maps(docs: Sequence[Manifest]) -> dict[str, Mapping[str, str]]:
    return {d["metadata"]["name"]: d.get("data") or {} for d in docs if d.get("kind") == "ConfigMap"}


def _container_env(container: Mapping[str, Any], config_maps: Mapping[str, Mapping[str, str]]) -> dict[str, str] | None:
    """The literal environment a container sees from ConfigMaps and values; None if a map is missing."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        reference = source.get("configMapRef")
        if reference is None:
            continue
        if reference.get("name") not in config_maps:
            return None
        env.update({source.get("prefix", "") + k: v for k, v in config_maps[reference["name"]].items()})
    for variable in container.get("env") or []:
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
    return env


def _grace_problems(doc: Mapping[str, Any], config_maps: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The pod's grace period must outlast the preStop sleep plus the app's own shutdown."""
    template = pod_template(doc)
    if template is None or doc.get("kind") not in LONG_RUNNING_KINDS:
        return []
    pod_spec = template.get("spec") or {}
    grace = Decimal(pod_spec.get("terminationGracePeriodSeconds", 30))
    problems: list[str] = []
    for container in pod_spec.get("containers") or []:
        env = _container_env(container, config_maps)
        if env is None or "SHUTDOWN_GRACE_SECONDS" not in env:
            continue
        sleep = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
        needed = Decimal(env["SHUTDOWN_GRACE_SECONDS"]) + Decimal(sleep.get("seconds", 0))
        if grace <= needed:
            problems.append(
                f"containers[{container.get('name')}]: terminationGracePeriodSeconds {grace} must exceed "
                f"preStop sleep + SHUTDOWN_GRACE_SECONDS ({needed})"
            )
    return problems


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if not selector:
        return False
    return all(labels.get(key) == value for key, value in selector.items())


def cross_reference_problems(docs: Sequence[Manifest], *, complete: bool) -> list[str]:
    """Rules across resources: selectors, ports, references, namespaces, secrets, NATS sizing.

    `complete` is true for overlays, which must contain everything they refer to; a template
    may refer to the shared platform-config that only overlays bring in.
    """
    problems: list[str] = []
    config_maps = _config_maps(docs)
    service_accounts = {d["metadata"]["name"] for d in docs if d.get("kind") == "ServiceAccount"}
    pods: list[PodOwner] = []
    for doc in docs:
        template = pod_template(doc)
        if template is not None:
            pods.append((doc, template))

    for doc in docs:
        name = resource_name(doc)
        kind = doc.get("kind")
        metadata = doc.get("metadata") or {}
        if kind not in CLUSTER_SCOPED_KINDS and metadata.get("namespace") != NAMESPACE:
            problems.append(f"{name}: namespace must be {NAMESPACE!r} (is {metadata.get('namespace')!r})")
        if kind == "Secret" and (doc.get("data") or doc.get("stringData")):
            problems.append(f"{name}: a Secret with values must never be committed; reference it instead")
        if kind == "ConfigMap":
            for key in doc.get("data") or {}:
                # FOO_FILE holds the path of a mounted secret file, not the secret.
                if SECRET_SETTING.search(key) and not key.endswith(FILE_SETTING_SUFFIX):
                    problems.append(f"{name}: {key} looks like a credential; it belongs in a Secret")
        if kind == "Service" and (doc.get("spec") or {}).get("selector"):
            problems += [f"{name}: {p}" for p in _service_problems(doc, pods)]
        if kind == "PodDisruptionBudget":
            selector = ((doc.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            if not any(
                d["kind"] in LONG_RUNNING_KINDS and _selects(selector, (t.get("metadata") or {}).get("labels") or {})
                for d, t in pods
            ):
                problems.append(f"{name}: selects no Deployment or StatefulSet pods")
        if kind == "Cluster" and str(doc.get("apiVersion", "")).startswith("postgresql.cnpg.io/"):
            spec = doc.get("spec") or {}
            synchronous = (spec.get("postgresql") or {}).get("synchronous") or {}
            if synchronous and synchronous.get("number", 0) >= spec.get("instances", 1):
                problems.append(f"{name}: synchronous.number must be below instances, or every commit blocks")

    for workload, template in pods:
        name = resource_name(workload)
        pod_spec = template.get("spec") or {}
        account = pod_spec.get("serviceAccountName")
        if account and account not in service_accounts:
            problems.append(f"{name}: serviceAccountName {account!r} is not defined")
        problems += [f"{name}: {p}" for p in _grace_problems(workload, config_maps)]
        if complete:
            for missing in sorted(_config_map_references(pod_spec) - set(config_maps)):
                problems.append(f"{name}: refers to ConfigMap {missing!r}, which is not rendered")
        problems += [f"{name}: {p}" for p in secret_delivery_problems(pod_spec, config_maps)]
    problems += _nats_sizing_problems(docs, config_maps)
    problems += network_policy_problems(docs, require_default_deny=complete)
    return problems


# --- network policies and secrets -------------------------------------------------------

# The label CloudNativePG puts on every pod of a Cluster (instances and their Jobs).
CNPG_CLUSTER_LABEL: Final = "cnpg.io/cluster"
FILE_SETTING_SUFFIX: Final = "_FILE"


def pod_label_sets(docs: Sequence[Manifest]) -> list[tuple[str, Mapping[str, str]]]:
    """The labels of every kind of pod an overlay runs: workload templates and database instances."""
    pods: list[tuple[str, Mapping[str, str]]] = []
    for doc in docs:
        template = pod_template(doc)
        if template is not None:
            pods.append((resource_name(doc), (template.get("metadata") or {}).get("labels") or {}))
        elif doc.get("kind") == "Cluster" and str(doc.get("apiVersion", "")).startswith("postgresql.cnpg.io/"):
            pods.append((resource_name(doc), {CNPG_CLUSTER_LABEL: doc["metadata"]["name"]}))
    return pods


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions); {} matches everything."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and present and labels[key] in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def _is_default_deny(policy: Mapping[str, Any]) -> bool:
    spec = policy.get("spec") or {}
    return (
        not spec.get("podSelector")
        and set(spec.get("policyTypes") or []) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def network_policy_problems(docs: Sequence[Manifest], *, require_default_deny: bool) -> list[str]:
    """Default deny, and every pod named by a policy of its own (a selector that is not {})."""
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    problems: list[str] = []
    if require_default_deny and not any(_is_default_deny(p) for p in policies):
        problems.append(
            "no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, no rules): "
            "every pod may reach every other"
        )
    selectors = [((p.get("spec") or {}).get("podSelector") or {}) for p in policies]
    for name, labels in pod_label_sets(docs):
        if not any(selector and selector_matches(selector, labels) for selector in selectors):
            problems.append(f"{name}: no NetworkPolicy selects its pods {dict(labels)}; add one with their paths")
    return problems


def secret_delivery_problems(pod_spec: Mapping[str, Any], config_maps: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Secrets reach a container only as files: no secretRef/secretKeyRef; FOO_FILE inside a Secret mount."""
    problems: list[str] = []
    secret_volumes = {v["name"] for v in pod_spec.get("volumes") or [] if v.get("secret") or v.get("projected")}
    for key, container in containers_of(pod_spec):
        where = f"{key}[{container.get('name', '?')}]"
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                problems.append(
                    f"{where}: envFrom secretRef {source['secretRef'].get('name')!r} puts secrets in the "
                    "environment; mount the Secret and set <KEY>_FILE"
                )
        env = _container_env(container, config_maps) or {}
        for variable in container.get("env") or []:
            if "secretKeyRef" in (variable.get("valueFrom") or {}):
                problems.append(
                    f"{where}: env {variable['name']} takes a secretKeyRef; mount the Secret and set "
                    f"{variable['name']}{FILE_SETTING_SUFFIX}"
                )
        mounts = [
            str(m.get("mountPath", "")).rstrip("/")
            for m in container.get("volumeMounts") or []
            if m.get("name") in secret_volumes
        ]
        for name, path in sorted(env.items()):
            if name.endswith(FILE_SETTING_SUFFIX) and not any(path.startswith(m + "/") for m in mounts if m):
                problems.append(f"{where}: {name}={path} is not inside a Secret volume mounted in this container")
    return problems


def _service_problems(service: Mapping[str, Any], pods: Sequence[PodOwner]) -> list[str]:
    spec = service.get("spec") or {}
    selector = spec["selector"]
    selected = [(d, t) for d, t in pods if _selects(selector, (t.get("metadata") or {}).get("labels") or {})]
    problems: list[str] = []
    if not any(d["kind"] in LONG_RUNNING_KINDS for d, _ in selected):
        problems.append(f"selector {selector} matches no Deployment or StatefulSet pods")
    for d, _ in selected:
        if d["kind"] not in LONG_RUNNING_KINDS:
            problems.append(f"selector {selector} also matches the pods of {resource_name(d)}")
    port_names = {
        port.get("name")
        for d, t in selected
        for _, container in containers_of(t.get("spec") or {})
        for port in container.get("ports") or []
    }
    for port in spec.get("ports") or []:
        target = port.get("targetPort")
        if isinstance(target, str) and selected and target not in port_names:
            problems.append(f"port {port.get('name')}: targetPort {target!r} is no named port of the selected pods")
    return problems


def _config_map_references(pod_spec: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for _, container in containers_of(pod_spec):
        for source in container.get("envFrom") or []:
            reference = source.get("configMapRef") or {}
            if reference and not reference.get("optional"):
                names.add(reference["name"])
        for variable in container.get("env") or []:
            reference = (variable.get("valueFrom") or {}).get("configMapKeyRef") or {}
            if reference and not reference.get("optional"):
                names.add(reference["name"])
    for volume in pod_spec.get("volumes") or []:
        reference = volume.get("configMap") or {}
        if reference and not reference.get("optional"):
            names.add(reference["name"])
    return names


_NATS_ROUTE: Final = re.compile(r"nats://([a-z0-9-]+)-([0-9]+)\.([a-z0-9-]+):[0-9]+")


def _nats_sizing_problems(docs: Sequence[Manifest], config_maps: Mapping[str, Mapping[str, str]]) -> list[str]:
    """A NATS StatefulSet's routes must name exactly its own pods; streams fit the cluster."""
    problems: list[str] = []
    nats_replicas: list[int] = []
    for doc in docs:
        if doc.get("kind") != "StatefulSet":
            continue
        spec = doc.get("spec") or {}
        volumes = ((spec.get("template") or {}).get("spec") or {}).get("volumes") or []
        for volume in volumes:
            files = config_maps.get((volume.get("configMap") or {}).get("name", ""), {})
            if "nats.conf" not in files:
                continue
            replicas = int(spec.get("replicas", 1))
            nats_replicas.append(replicas)
            routes = sorted(set(_NATS_ROUTE.findall("\n".join(files.values()))))
            expected = [(doc["metadata"]["name"], str(i), spec.get("serviceName", "")) for i in range(replicas)]
            if replicas > 1 and routes != expected:
                problems.append(
                    f"{resource_name(doc)}: {replicas} replicas need cluster routes to exactly "
                    f"{', '.join(f'{n}-{i}.{s}' for n, i, s in expected)}; found {routes or 'none'}"
                )
            if replicas == 1 and routes:
                problems.append(f"{resource_name(doc)}: a single server must have no cluster routes")
    if nats_replicas:
        for name, data in config_maps.items():
            wanted = data.get("JETSTREAM_REPLICAS")
            if wanted is not None and (not wanted.isdigit() or int(wanted) > max(nats_replicas)):
                problems.append(
                    f"ConfigMap/{name}: JETSTREAM_REPLICAS={wanted} exceeds the {max(nats_replicas)} NATS server(s)"
                )
    return problems


def nats_config_problems(docs: Sequence[Manifest]) -> list[str]:
    """Each rendered nats.conf must parse in `nats-server -t` and sync every write to disk."""
    problems: list[str] = []
    for doc in docs:
        data: Mapping[str, str] = doc.get("data") or {}
        if doc.get("kind") != "ConfigMap" or "nats.conf" not in data:
            continue
        name = resource_name(doc)
        jetstream_block = re.search(r"jetstream\s*\{(.*?)\}", data["nats.conf"], re.DOTALL)
        if jetstream_block is None or not re.search(r"^\s*sync_interval:\s*always\s*$", jetstream_block.group(1), re.M):
            problems.append(f"{name}: nats.conf must set `sync_interval: always` in its jetstream block")
        with tempfile.TemporaryDirectory(prefix="nats-config-") as folder:
            for key, text in data.items():
                (Path(folder) / key).write_text(text)
            try:
                nats_server = tool_path("nats-server")
            except RenderError as error:
                problems.append(f"{name}: {error}")
                continue
            result = subprocess.run(
                [nats_server, "-t", "-c", "nats.conf"],
                cwd=folder,
                capture_output=True,
                text=True,
                check=False,
                env={"SERVER_NAME": "config-check", "PATH": "/usr/bin:/bin"},
            )
            if result.returncode != 0:
                problems.append(f"{name}: nats-server -t: {(result.stderr or result.stdout).strip()}")
    return problems


# --- driver -----------------------------------------------------------------------------


def check_documents(docs: Sequence[Manifest], kind: TargetKind) -> list[str]:
    """Every check on an already rendered set of documents."""
    problems: list[str] = []
    for doc in docs:
        name = resource_name(doc)
        problems += [f"{name}: {p}" for p in schema_problems(doc)]
        problems += [f"{name}: {p}" for p in workload_problems(doc, pinned_images=kind == "overlay")]
    problems += cross_reference_problems(docs, complete=kind == "overlay")
    problems += nats_config_problems(docs)
    return problems


def check_target(target: RenderTarget) -> TargetReport:
    report = TargetReport(target)
    try:
        report.resources = render(target.path)
    except RenderError as error:
        report.problems.append(f"render failed: {error}")
        return report
    if not report.resources:
        report.problems.append("renders no resources")
    report.problems += check_documents(report.resources, target.kind)
    return report


def unused_bases(k8s_root: Path = K8S_ROOT) -> list[str]:
    """Bases that no overlay lists (a new service copied from the template but never deployed)."""
    listed: set[Path] = set()
    for kustomization in (k8s_root / "overlays").glob("*/kustomization.yaml"):
        content = yaml.safe_load(kustomization.read_text()) or {}
        listed |= {(kustomization.parent / entry).resolve() for entry in content.get("resources") or []}
    return [
        f"base/{path.parent.name} is in no overlay"
        for path in sorted((k8s_root / "base").glob("*/kustomization.yaml"))
        if path.parent.resolve() not in listed
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.k8s_validate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "directories",
        nargs="*",
        type=Path,
        help="kustomization directories to check as overlays (default: every overlay and template)",
    )
    args = parser.parse_args(argv)
    targets = [RenderTarget(path, "overlay") for path in args.directories] or discover_targets()
    if not targets:
        print(f"k8s: nothing to check under {K8S_ROOT}", file=sys.stderr)
        return 1

    failed = False
    for target in targets:
        report = check_target(target)
        kinds = sorted({str(doc.get("kind")) for doc in report.resources})
        status = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        print(f"k8s: {target.label:<26} {target.kind:<8} {len(report.resources):>3} resources  {status}")
        if report.ok:
            print(f"       kinds: {', '.join(kinds)}")
        for problem in report.problems:
            print(f"  FAIL {problem}")
        failed = failed or not report.ok
    if not args.directories:
        for problem in unused_bases():
            print(f"  FAIL {problem}")
            failed = True
    schemas = ", ".join(f"{api} {kind}" for api, kind in CUSTOM_RESOURCE_SCHEMAS)
    print(
        f"k8s: schemas: Kubernetes {', '.join(KUBERNETES_VERSIONS)} (strict); {schemas} (tools/k8s_validate.py); "
        "nats-server -t; platform policy"
    )
    print("k8s: FAILED" if failed else "k8s: all manifests valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
