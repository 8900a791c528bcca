"""The gateway process fuzzed from its own OpenAPI document: no 5xx, no answer that breaks the schema.

Schemathesis generates requests (valid and invalid) for every operation from
``/openapi.json`` and sends them, with a token of a client that may call the route, to a
real ``python -m gateway`` backed by PostgreSQL and NATS JetStream. The example count is
bounded so that the whole run stays well under a minute.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
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
from tests.e2e.test_gateway_process import REPO, gateway_env, wait_until_serving

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TERMINAL = ("S001-POS01", "fuzz-terminal-secret-0123456789")
HEADQUARTERS = ("fuzz-hq-01", "fuzz-headquarters-secret-0123456789")
EXAMPLES_PER_OPERATION = 25


async def register_clients(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, application_name="fuzz-setup")
    registry = ClientRegistry(engine)
    try:
        for client_id, secret, kind, role, store in (
            (*TERMINAL, ClientKind.POS_TERMINAL, None, "S001"),
            (*HEADQUARTERS, ClientKind.STAFF, StaffRole.HEADQUARTERS, None),
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


@pytest.fixture(scope="module")
def fuzzed_gateway(infra: Infra, kit_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database_url = create_database_from(infra, kit_template)
    port = free_port()
    env = gateway_env(
        APP_ENV="test",
        DATABASE_URL=database_url,
        NATS_URL=infra.nats_url,
        HTTP_PORT=str(port),
        RATE_LIMIT_BURST="100000",
        LOG_LEVEL="WARNING",
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "gateway.migrate"], env=env, cwd=REPO, capture_output=True, timeout=120, check=False
    )
    assert migrate.returncode == 0, migrate.stderr.decode()
    run_in_fresh_loop(lambda: register_clients(database_url))
    log_path = tmp_path_factory.mktemp("fuzz") / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "gateway"], env=env, cwd=REPO, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base_url, log_path)
        yield base_url
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def tokens(fuzzed_gateway: str) -> dict[str, str]:
    issued = {}
    for name, (client_id, secret) in (("terminal", TERMINAL), ("headquarters", HEADQUARTERS)):
        response = httpx.post(
            f"{fuzzed_gateway}/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )
        assert response.status_code == 200, response.text
        issued[name] = response.json()["access_token"]
    return issued


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
        token = tokens["headquarters"] if operation.path.startswith("/v1/admin") else tokens["terminal"]
        headers = {} if operation.path == "/v1/auth/token" else {"Authorization": f"Bearer {token}"}

        fuzz_operation(operation, fuzzed_gateway, headers)
        fuzzed.append(f"{operation.method.upper()} {operation.path}")
    assert {"POST /v1/auth/token", "POST /v1/pos/sales/batch", "GET /v1/pos/sync", "POST /v1/admin/clients"} <= set(
        fuzzed
    )
