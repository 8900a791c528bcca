"""Typed settings: what start-up refuses, and what it accepts."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from servicekit.settings import BaseServiceSettings, SettingsError, dev_secret, load_settings, to_async_url


class SigningSettings(BaseServiceSettings):
    token_signing_key: SecretStr = dev_secret("local-development-signing-key", "signs access tokens")


REQUIRED = {"APP_ENV": "production", "DATABASE_URL": "postgresql://db/x", "NATS_URL": "nats://n:4222"}


def use_environment(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name in ("APP_ENV", "DATABASE_URL", "NATS_URL", "TOKEN_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_a_missing_required_setting_stops_start_up_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    use_environment(monkeypatch, {k: v for k, v in REQUIRED.items() if k != "DATABASE_URL"})
    with pytest.raises(SettingsError, match="DATABASE_URL is required but not set"):
        load_settings(BaseServiceSettings)


def test_every_missing_setting_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    use_environment(monkeypatch, {})
    with pytest.raises(SettingsError) as refused:
        load_settings(BaseServiceSettings)
    assert all(name in str(refused.value) for name in ("APP_ENV", "DATABASE_URL", "NATS_URL"))


def test_a_default_secret_outside_local_development_stops_start_up_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    use_environment(monkeypatch, REQUIRED)
    with pytest.raises(SettingsError, match="TOKEN_SIGNING_KEY still hold the local-development default"):
        load_settings(SigningSettings)


@pytest.mark.parametrize("environment", ["local", "test"])
def test_local_development_and_tests_may_use_the_default_secret(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    use_environment(monkeypatch, {**REQUIRED, "APP_ENV": environment})
    assert load_settings(SigningSettings).app_env.allows_dev_secrets


def test_a_real_secret_is_accepted_in_production_and_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    use_environment(monkeypatch, {**REQUIRED, "TOKEN_SIGNING_KEY": "s3cr3t-from-a-kubernetes-secret"})
    settings = load_settings(SigningSettings)
    assert "s3cr3t" not in repr(settings)


def test_a_malformed_value_is_named_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    use_environment(monkeypatch, {**REQUIRED, "APP_ENV": "prod-ish"})
    with pytest.raises(SettingsError, match="APP_ENV: Input should be"):
        load_settings(BaseServiceSettings)


def test_database_urls_are_spelled_for_the_asyncpg_driver() -> None:
    assert to_async_url("postgresql://u@h:5/d") == "postgresql+asyncpg://u@h:5/d"
    assert to_async_url("postgres://u@h/d") == "postgresql+asyncpg://u@h/d"
    with pytest.raises(SettingsError, match="must be a postgresql:// URL"):
        to_async_url("mysql://u@h/d")
