"""The gateway process fuzzed from its own OpenAPI document: no 5xx, no answer that breaks the schema.

Schemathesis generates requests (valid and invalid) for every operation from
``/openapi.json`` and sends them, with a token of a client that may call the route, to a
real ``python -m gateway`` backed by PostgreSQL, NATS JetStream and the real services. The example count is
bounded so that the whole run stays well under a minute.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.servers import free_port
from gateway.adapters.client_registry import ClientRegistry
from gateway.domain.clients import ClientKind, ClientRegistration, StaffRole, hash_client_secret
from gateway.domain.scopes import default_scopes
from servicekit.db import create_engine
from tests.conftest import Infra, create_database_from, run_in_fresh_loop
from tests.e2e.test_gateway_process import REPO, gateway_env, get_until, wait_until_serving

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TERMINAL = ("S001-POS01", "fuzz-terminal-secret-0123456789")
HEADQUARTERS = ("fuzz-hq-01", "fuzz-headquarters-secret-0123456789")
APP = ("fuzz-app-01", "fuzz-app-backend-secret-0123456789")
EXAMPLES_PER_OPERATION = 25


async def register_clients(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, application_name="fuzz-setup")
    registry = ClientRegistry(engine)
    try:
        for client_id, secret, kind, role, store in (
            (*TERMINAL, ClientKind.POS_TERMINAL, None, "S001"),
            (*HEADQUARTERS, ClientKind.STAFF, StaffRole.HEADQUARTERS, None),
            (*APP, ClientKind.APP, None, None),
        ):
            await registry.register(
                ClientRegistration(
                    client_id=client_id,
                    kind=kind,
                    display_name=client_id,
                    secret_hash=hash_client_secret(secret, n=2**10),
                    scopes=default_scopes(kind, role),
                    store_id=store,
                    terminal_id=client_id if kind is ClientKind.POS_TERMINAL else None,
                    staff_role=role,
                )
            )
    finally:
        await engine.dispose()


def start(module: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    migrate = subprocess.run(
        [sys.executable, "-m", f"{module}.migrate"], env=env, cwd=REPO, capture_output=True, timeout=120, check=False
    )
    assert migrate.returncode == 0, migrate.stderr.decode()
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=REPO, stdout=log, stderr=log)


@pytest.fixture(scope="module")
def fuzzed_gateway(infra: Infra, kit_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway and every service behind it, as real processes with their own databases."""
    logs = tmp_path_factory.mktemp("fuzz")
    inventory_port, port = free_port(), free_port()
    common = {"APP_ENV": "test", "NATS_URL": infra.nats_url, "LOG_LEVEL": "WARNING"}
    inventory = start(
        "services.inventory",
        gateway_env(**common, DATABASE_URL=create_database_from(infra, kit_template), GRPC_PORT=str(inventory_port)),
        logs / "inventory.log",
    )
    database_url = create_database_from(infra, kit_template)
    env = gateway_env(
        **common,
        DATABASE_URL=database_url,
        HTTP_PORT=str(port),
        GATEWAY_BACKENDS=f"inventory=127.0.0.1:{inventory_port}",
        RATE_LIMIT_BURST="100000",
    )
    gateway = start("gateway", env, logs / "gateway.log")
    run_in_fresh_loop(lambda: register_clients(database_url))
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(gateway, base_url, logs / "gateway.log")
        # Ready, and inventory serving too (a backend's state is reported beside readiness, not in it).
        deadline = time.monotonic() + 60
        while (ready := get_until(f"{base_url}/readyz", 200)).json().get("backends") != {"inventory": "ok"}:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert ready.status_code == 200, ready.text + (logs / "inventory.log").read_text()
        assert ready.json()["backends"] == {"inventory": "ok"}, ready.text + (logs / "inventory.log").read_text()
        yield base_url
    finally:
        for process in (gateway, inventory):
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def tokens(fuzzed_gateway: str) -> dict[str, str]:
    issued = {}
    for name, (client_id, secret) in (("terminal", TERMINAL), ("headquarters", HEADQUARTERS), ("app", APP)):
        response = httpx.post(
            f"{fuzzed_gateway}/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )
        assert response.status_code == 200, response.text
        issued[name] = response.json()["access_token"]
    return issued


def caller_for(operation: dict[str, Any]) -> str:
    """The fuzzing client whose default scopes include the one the operation requires."""
    scopes = [
        scope for requirement in operation.get("security", []) for scope in requirement.get("client_credentials", [])
    ]
    for name, kind, role in (
        ("terminal", ClientKind.POS_TERMINAL, None),
        ("app", ClientKind.APP, None),
        ("headquarters", ClientKind.STAFF, StaffRole.HEADQUARTERS),
    ):
        if set(scopes) <= default_scopes(kind, role):
            return name
    return "headquarters"


def fuzz_operation(operation: Any, base_url: str, headers: dict[str, str]) -> None:
    """Send generated requests for one operation and check every answer."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def answers_within_schema(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

    answers_within_schema()


def test_the_gateway_answers_every_generated_request_without_5xx_and_within_its_schema(
    fuzzed_gateway: str, tokens: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_gateway}/openapi.json")
    fuzzed = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the document itself must be valid
        operation = result.ok()
        headers = {"Authorization": f"Bearer {tokens[caller_for(operation.definition.raw)]}"}

        fuzz_operation(operation, fuzzed_gateway, headers)
        fuzzed.append(f"{operation.method.upper()} {operation.path}")
    assert {"POST /v1/auth/token", "POST /v1/pos/sales/batch", "GET /v1/pos/sync", "POST /v1/admin/clients"} <= set(
        fuzzed
    )
