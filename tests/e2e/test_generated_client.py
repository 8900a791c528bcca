"""An SDK generated from the gateway's own ``/openapi.json`` works: the first five minutes with it.

``openapi-python-client`` (pinned, runs offline) generates a Python package from the served
document into a temporary folder; the test imports it and walks what a newcomer does first,
against the real gateway in front of the real services holding a small demo retailer: a
token from form-encoded client credentials, a stock read, a reservation, a typed problem
when reserving more than is available, a POS sales batch, the POS price book and its
``If-None-Match`` → ``304``, and a member lookup. The functions and models it calls are
named as the document names them (``reserve_stock``, ``ReservationRequest``), which is what
a vendor's SDK would show.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.conftest import Infra
from tests.support.platform import Platform, running_platform

PACKAGE = "retail_client"
GENERATOR_CONFIG = f"project_name_override: retail-client\npackage_name_override: {PACKAGE}\npost_hooks: []\n"
SKU = "SKU00030"
STORE = "S001"


@pytest.fixture(scope="module")
def platform(infra: Infra, kit_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(infra, kit_template, tmp_path_factory.mktemp("sdk-platform")) as running:
        yield running


@pytest.fixture(scope="module")
def sdk(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package generated from the running gateway's document, importable for this module's tests."""
    folder = tmp_path_factory.mktemp("sdk")
    document = folder / "openapi.json"
    document.write_bytes(httpx.get(f"{platform.base_url}/openapi.json", timeout=30).content)
    config = folder / "generator.yaml"
    config.write_text(GENERATOR_CONFIG)
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(document),
            "--config",
            str(config),
            "--output-path",
            str(folder / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr
    sys.path.insert(0, str(folder / "out"))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder / "out"))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def signed_in(sdk: ModuleType, platform: Platform, label: str) -> Any:
    """An authenticated SDK client of the demo client ``label``, its token got through the SDK itself."""
    credential = platform.credentials[label]
    anonymous = sdk.Client(base_url=platform.base_url, timeout=httpx.Timeout(60), raise_on_unexpected_status=True)
    grant = module("models").TokenRequest(
        grant_type="client_credentials", client_id=credential["client_id"], client_secret=credential["client_secret"]
    )
    answer = module("api.auth.issue_token").sync_detailed(client=anonymous, body=grant)
    assert answer.status_code == 200, answer.content
    assert answer.parsed.token_type == "Bearer"
    return sdk.AuthenticatedClient(
        base_url=platform.base_url,
        token=answer.parsed.access_token,
        timeout=httpx.Timeout(60),
        raise_on_unexpected_status=True,
    )


def test_the_generated_sdk_walks_the_first_five_minutes_against_the_real_platform(
    sdk: ModuleType, platform: Platform
) -> None:
    models, api = module("models"), "api"
    app = signed_in(sdk, platform, "app")
    till = signed_in(sdk, platform, "pos_terminal")

    # A stock read: where the SKU stands, and how much of it may be promised.
    stock = module(f"{api}.inventory.sku_availability").sync(SKU, client=app)
    assert isinstance(stock, models.SkuAvailability), stock
    level = max(stock.levels, key=lambda level: Decimal(level.available_to_promise))
    available = Decimal(level.available_to_promise)
    assert available >= 2, stock

    # A reservation, then a typed problem when asking for more than is left.
    reserve = module(f"{api}.inventory.reserve_stock")
    held = reserve.sync(
        client=app,
        idempotency_key=str(uuid.uuid4()),
        body=models.ReservationRequest(sku=SKU, quantity="1", location_id=level.location_id),
    )
    assert isinstance(held, models.Reservation), held
    assert (held.status, held.allocations[0].location_id) == ("active", level.location_id)
    too_much = models.ReservationRequest(sku=SKU, quantity=str(available + 1000), location_id=level.location_id)
    refused = reserve.sync_detailed(client=app, idempotency_key=str(uuid.uuid4()), body=too_much)
    assert refused.status_code == 409
    assert refused.parsed.type_.endswith("/out-of-stock"), refused.parsed
    assert (refused.parsed.status, refused.parsed.reason) == (409, "out-of-stock")

    # A POS sales batch from a till of the store.
    sale_id = f"{STORE}-POS01-{uuid.uuid4().hex[:12]}"
    batch = models.SalesBatch.from_dict(
        {
            "sales": [
                {
                    "sale_id": sale_id,
                    "store_id": STORE,
                    "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
                    "lines": [{"sku": SKU, "quantity": "1", "unit_price": "45.90"}],
                    "payments": [{"method": "wechat_pay", "amount": "45.90"}],
                }
            ]
        }
    )
    uploaded = module(f"{api}.pos.upload_sales").sync(client=till, body=batch, idempotency_key=str(uuid.uuid4()))
    assert isinstance(uploaded, models.BatchResult), uploaded
    assert [(result.sale_id, result.status) for result in uploaded.results] == [(sale_id, "accepted")]

    # The till's price book, then the same request with its ETag: 304, nothing to download.
    price_book = module(f"{api}.pricing.pos_price_book")
    book = price_book.sync_detailed(client=till)
    assert book.status_code == 200
    assert book.parsed.store_id == STORE
    assert any(entry.sku == SKU for entry in book.parsed.entries) or book.parsed.next_page_token
    unchanged = price_book.sync_detailed(client=till, if_none_match=book.headers["etag"])
    assert (unchanged.status_code, unchanged.headers["etag"]) == (304, book.headers["etag"])

    # A member lookup by phone, then the member as an app sees them: masked.
    phone = next(platform.retailer.iter_members()).phone
    kind = module("models.resolve_member_type").ResolveMemberType("phone")
    found = module(f"{api}.members.resolve_member").sync(client=app, type_=kind, value=phone)
    assert isinstance(found, models.Resolved), found
    member = module(f"{api}.members.get_member").sync(found.member_id, client=app)
    assert isinstance(member, models.Member), member
    assert member.personal_data == "masked"
    assert phone not in str(member.to_dict())


def test_the_sdk_is_named_after_the_documents_operations_and_schemas(sdk: ModuleType) -> None:
    assert sdk.__file__ is not None
    folder = Path(sdk.__file__).parent
    functions = {path.stem for path in (folder / "api").glob("*/*.py") if path.stem != "__init__"}
    assert {"issue_token", "reserve_stock", "sku_availability", "upload_sales", "pos_price_book"} <= functions
    assert [name for name in functions if "_v1_" in name or name.endswith(("_get", "_post", "_put"))] == []
    models = {path.stem for path in (folder / "models").glob("*.py")}
    assert {"token_request", "reservation_request", "reservation", "problem"} <= models
    assert [name for name in models if name.startswith("body_") or "_v1_" in name] == []
