"""Typed settings: what start-up refuses, and what it accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from servicekit.settings import BaseServiceSettings, SettingsError, dev_secret, load_settings, to_async_url


class SigningSettings(BaseServiceSettings):
    token_signing_key: SecretStr = dev_secret("local-development-signing-key", "signs access tokens")


REQUIRED = {"APP_ENV": "production", "DATABASE_URL": "postgresql://db/x", "NATS_URL": "nats://n:4222"}


def use_environment(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name in ("APP_ENV", "DATABASE_URL", "NATS_URL", "TOKEN_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
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


def test_a_secret_given_as_a_file_is_read_from_it_without_its_final_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # How Kubernetes hands a Secret to a pod: one file per key, the variable naming the file.
    (tmp_path / "TOKEN_SIGNING_KEY").write_text("s3cr3t-from-a-mounted-file\n")
    (tmp_path / "DATABASE_URL").write_text("postgresql://app:pw@db-rw/app\n")
    required = {k: v for k, v in REQUIRED.items() if k != "DATABASE_URL"}
    use_environment(
        monkeypatch,
        {
            **required,
            "DATABASE_URL_FILE": str(tmp_path / "DATABASE_URL"),
            "TOKEN_SIGNING_KEY_FILE": str(tmp_path / "TOKEN_SIGNING_KEY"),
        },
    )
    settings = load_settings(SigningSettings)
    assert settings.token_signing_key.get_secret_value() == "s3cr3t-from-a-mounted-file"
    assert settings.database_url == "postgresql://app:pw@db-rw/app"
    assert "s3cr3t" not in repr(settings)


def test_a_file_holding_the_development_default_is_refused_like_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "key").write_text("local-development-signing-key")
    use_environment(monkeypatch, {**REQUIRED, "TOKEN_SIGNING_KEY_FILE": str(tmp_path / "key")})
    with pytest.raises(SettingsError, match="TOKEN_SIGNING_KEY still hold the local-development default"):
        load_settings(SigningSettings)


def test_a_setting_given_both_as_a_variable_and_as_a_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "key").write_text("from-the-file")
    use_environment(
        monkeypatch,
        {**REQUIRED, "TOKEN_SIGNING_KEY": "from-the-variable", "TOKEN_SIGNING_KEY_FILE": str(tmp_path / "key")},
    )
    with pytest.raises(SettingsError, match="TOKEN_SIGNING_KEY and TOKEN_SIGNING_KEY_FILE are both set"):
        load_settings(SigningSettings)


def test_a_missing_secret_file_stops_start_up_naming_the_variable_and_the_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "not-mounted" / "TOKEN_SIGNING_KEY"
    use_environment(monkeypatch, {**REQUIRED, "TOKEN_SIGNING_KEY_FILE": str(missing)})
    with pytest.raises(SettingsError, match=f"TOKEN_SIGNING_KEY_FILE: cannot read {missing}: No such file"):
        load_settings(SigningSettings)


def test_a_file_for_a_setting_the_process_does_not_have_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A migration Job reads the service's settings class only in part; its other files stay unread.
    use_environment(monkeypatch, {**REQUIRED, "TOKEN_SIGNING_KEY_FILE": str(tmp_path / "absent")})
    assert load_settings(BaseServiceSettings).database_url == "postgresql://db/x"


def test_an_explicit_override_wins_over_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "url").write_text("postgresql://from-file/x")
    use_environment(monkeypatch, {**{k: v for k, v in REQUIRED.items() if k != "DATABASE_URL"}})
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "url"))
    assert load_settings(BaseServiceSettings, database_url="postgresql://override/x").database_url == (
        "postgresql://override/x"
    )
