"""The gateway's settings: defaults, the sale max age's bound, and precise errors for a bad GATEWAY_BACKENDS."""

from __future__ import annotations

import pytest

from gateway.adapters.sales_journal import SALES_STREAM
from gateway.domain.sales import MAX_SALES_PER_BATCH
from gateway.pos.schemas import SalesBatch
from gateway.settings import GatewaySettings, parse_backends
from servicekit.settings import SettingsError, load_settings

REQUIRED = {"app_env": "test", "database_url": "postgresql://db/gateway", "nats_url": "nats://nats:4222"}


def test_defaults_listen_on_loopback_port_8080_with_a_one_mebibyte_body_limit() -> None:
    settings = load_settings(GatewaySettings, **REQUIRED)
    assert (settings.http_host, settings.http_port, settings.max_request_body_bytes) == ("127.0.0.1", 8080, 1048576)
    assert settings.backends == {}


def test_backends_are_read_from_the_environment_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_BACKENDS", " inventory=inventory:50051, member=10.0.0.7:50052,pricing=[::1]:50053 ")
    monkeypatch.setenv("HTTP_PORT", "9090")
    settings = load_settings(GatewaySettings, **REQUIRED)
    assert list(settings.backends.items()) == [
        ("inventory", "inventory:50051"),
        ("member", "10.0.0.7:50052"),
        ("pricing", "[::1]:50053"),
    ]
    assert settings.http_port == 9090


def test_an_empty_backend_list_is_allowed() -> None:
    assert parse_backends("") == {}
    assert parse_backends("   ") == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("inventory", r"entry 1 \('inventory'\) must be name=host:port"),
        ("inventory=inventory", r"entry 1 \('inventory=inventory'\): target 'inventory' must be host:port"),
        ("inventory=inventory:http", r"port 'http' must be a number from 1 to 65535"),
        ("inventory=inventory:70000", r"port '70000' must be a number from 1 to 65535"),
        ("Inventory=inventory:1", r"backend name 'Inventory' must be lower-case"),
        ("a=h:1,,b=h:2", r"entry 2 is empty"),
        ("a=h:1,a=h:2", r"entry 2 \('a=h:2'\): backend 'a' is configured twice"),
        ("a=bad host:1", r"'bad host' is not a host name or address"),
    ],
)
def test_a_bad_backend_entry_is_refused_naming_the_entry_and_the_fault(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_backends(spec)


def test_a_bad_backend_list_fails_start_up_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_BACKENDS", "inventory=inventory")
    with pytest.raises(SettingsError, match=r"GATEWAY_BACKENDS: .*entry 1"):
        load_settings(GatewaySettings, **REQUIRED)


def test_a_sale_may_be_as_old_as_the_sales_journal_keeps_sales_and_no_older(monkeypatch: pytest.MonkeyPatch) -> None:
    retention = SALES_STREAM.max_age_seconds
    assert load_settings(GatewaySettings, **REQUIRED).sale_max_age_seconds == retention == 90 * 24 * 3600
    monkeypatch.setenv("SALE_MAX_AGE_SECONDS", "604800")  # a chain that wants its tills uploaded within a week
    assert load_settings(GatewaySettings, **REQUIRED).sale_max_age_seconds == 604800
    monkeypatch.setenv("SALE_MAX_AGE_SECONDS", str(retention + 1))  # the journal would not hold it
    with pytest.raises(SettingsError, match=r"SALE_MAX_AGE_SECONDS"):
        load_settings(GatewaySettings, **REQUIRED)


def test_the_pos_batch_cap_is_declared_once_in_the_sales_rules() -> None:
    """The setting's default and upper bound and the request schema's maxItems are one constant."""
    cap = GatewaySettings.model_fields["max_sales_per_batch"]
    assert cap.default == MAX_SALES_PER_BATCH
    assert any(getattr(bound, "le", None) == MAX_SALES_PER_BATCH for bound in cap.metadata)
    assert SalesBatch.model_json_schema()["properties"]["sales"]["maxItems"] == MAX_SALES_PER_BATCH
