"""The gateway process fuzzed from its own OpenAPI document: no 5xx, no answer that breaks the schema.

Schemathesis (its ``st run`` command) builds requests from ``/openapi.json`` for every
operation in three phases: the document's examples, coverage (every boundary and just
past it — an int64 at its maximum and one beyond, a string one character too long, a
required field missing…) and random generation, valid and invalid. It runs once per kind
of demo client — app back end, POS terminal, supplier user, store guide, store manager,
headquarters — over the operations that kind's scopes cover, because ownership rules take
each kind down its own path. The requests reach a real ``python -m gateway`` in front of the
real inventory, member and pricing services holding a small demo retailer. The random
examples per operation keep the whole run within a few minutes on two cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.domain.clients import ClientKind, StaffRole
from gateway.domain.scopes import default_scopes
from tests.conftest import Infra
from tests.support.platform import Platform, running_platform

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# Random cases per operation and client kind; the coverage phase adds its boundary cases on top.
EXAMPLES_PER_OPERATION = 12
KINDS: dict[str, tuple[ClientKind, StaffRole | None]] = {
    "app": (ClientKind.APP, None),
    "pos_terminal": (ClientKind.POS_TERMINAL, None),
    "supplier_user": (ClientKind.SUPPLIER_USER, None),
    "store_guide": (ClientKind.STAFF, StaffRole.STORE_GUIDE),
    "store_manager": (ClientKind.STAFF, StaffRole.STORE_MANAGER),
    "headquarters": (ClientKind.STAFF, StaffRole.HEADQUARTERS),
}
# Integers at and just past what each protobuf scalar holds (int32, uint32, int64, uint64), as
# strings because TOML integers stop at int64: one in four generated integers is one of them.
WIRE_LIMITS = sorted(
    {edge + step for edge in (2**31, 2**32, 2**63, 2**64) for step in (-1, 0)}
    | {-(2**31), -(2**31) - 1, -(2**63), -(2**63) - 1, -1, 0, 52582048787788109709312}
)
CONFIG = f"""
[dictionaries.wire-limits]
values = {json.dumps([str(value) for value in WIRE_LIMITS])}

[generation.dictionaries.integer]
dictionary = "wire-limits"
probability = 0.25

# Sending a GET route a DELETE only shows the framework's 405; the routes' own inputs are what matter.
[phases.coverage]
unexpected-methods = []
"""


@pytest.fixture(scope="module")
def platform(infra: Infra, kit_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    logs = tmp_path_factory.mktemp("fuzz")
    unlimited = {"RATE_LIMIT_BURST": "100000", "RATE_LIMIT_PER_SECOND": "100000"}
    with running_platform(infra, kit_template, logs, gateway_settings=unlimited) as running:
        yield running


def operations_for(document: dict[str, Any], kind: ClientKind, role: StaffRole | None) -> list[str]:
    """The operation ids a client of this kind may call: its default scopes cover the operation's."""
    held = default_scopes(kind, role)
    found = []
    for path_item in document["paths"].values():
        for operation in path_item.values():
            needed = {
                scope
                for requirement in operation.get("security", [])
                for scope in requirement.get("client_credentials", [])
            }
            if needed <= held:
                found.append(operation["operationId"])
    return found


def with_wire_limit_examples(node: Any) -> Any:
    """The document with :data:`WIRE_LIMITS` among the examples of every integer, so that the
    examples phase sends each of them whatever bounds the document states (or forgets)."""
    if isinstance(node, list):
        return [with_wire_limit_examples(child) for child in node]
    if not isinstance(node, dict):
        return node
    copied = {key: with_wire_limit_examples(child) for key, child in node.items()}
    if copied.get("type") == "integer":
        copied["examples"] = [*copied.get("examples", []), *WIRE_LIMITS]
    return copied


def fuzz(platform: Platform, label: str, operation_ids: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    """``st run`` over ``operation_ids`` with the token of the demo client ``label``."""
    config = folder / "schemathesis.toml"
    config.write_text(CONFIG)
    document = folder / "openapi.json"
    served = httpx.get(f"{platform.base_url}/openapi.json", timeout=30).json()
    document.write_text(json.dumps(with_wire_limit_examples(served)))
    options = {
        "--url": platform.base_url,
        "--phases": "examples,coverage,fuzzing",
        "--checks": CHECKS,
        "--max-examples": str(EXAMPLES_PER_OPERATION),
        "--suppress-health-check": "all",
        "--generation-with-security-parameters": "false",
        # One worker: schemathesis' coverage phase can trip over a CPython 3.11 AST bug in threads.
        "--workers": "1",
        "--request-timeout": "60",
        "--output-truncate": "false",
        "--header": f"Authorization: Bearer {platform.token(label)}",
    }
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        str(document),
        "--generation-deterministic",
        *(part for option in options.items() for part in option),
        *(part for operation_id in operation_ids for part in ("--include-operation-id", operation_id)),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=folder)
    (folder / f"{label}.txt").write_text(run.stdout + run.stderr)
    return run


def failures_of(output: str) -> str:
    """The failures part of an ``st run`` report (each failing case, what broke and a curl to reproduce it)."""
    start = output.find("FAILURES")
    end = output.find("WARNINGS", start)
    return output[start:end] if start >= 0 else output[-6_000:]


def test_the_gateway_answers_every_generated_request_of_every_kind_of_client_without_5xx_and_within_its_schema(
    platform: Platform, tmp_path: Path
) -> None:
    document = httpx.get(f"{platform.base_url}/openapi.json", timeout=30).json()
    every_operation = {operation["operationId"] for item in document["paths"].values() for operation in item.values()}
    fuzzed: set[str] = set()
    failures = {}
    for label, (kind, role) in KINDS.items():
        operation_ids = operations_for(document, kind, role)
        run = fuzz(platform, label, operation_ids, tmp_path)
        fuzzed |= set(operation_ids)
        if run.returncode != 0:
            failures[label] = failures_of(run.stdout + run.stderr)[:20_000]
    assert failures == {}, "\n\n".join(f"==== as {label}\n{output}" for label, output in failures.items())
    assert fuzzed == every_operation
