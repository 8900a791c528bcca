"""Typed settings read from the environment.

Every process of the platform builds its settings through :func:`load_settings`, which
turns pydantic's validation errors into one message naming each missing or bad variable,
and refuses a secret that still holds its local-development default unless ``APP_ENV`` is
``local`` or ``test``.

A setting may also be given as a file: when ``FOO_FILE`` names a file, ``FOO`` is that file's
content (without its trailing newline). Kubernetes mounts each Secret as files this way
(deploy/k8s/README.md), so a secret never sits in the process environment; local
development keeps setting ``FOO`` directly. Setting both is refused, as is a file that
cannot be read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"

    @property
    def allows_dev_secrets(self) -> bool:
        return self in (Environment.LOCAL, Environment.TEST)


class SettingsError(RuntimeError):
    """Start-up cannot continue: a setting is missing, malformed or insecure."""


def dev_secret(default: str, description: str) -> Any:
    """A secret whose default is only acceptable in local development and tests."""
    return Field(default=SecretStr(default), description=description, json_schema_extra={"dev_default": True})


class BaseServiceSettings(BaseSettings):
    """What every process needs: where it runs, its database, its broker, telemetry."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True, case_sensitive=False)

    app_env: Environment = Field(description="local, test, staging or production (APP_ENV)")
    database_url: str = Field(description="PostgreSQL URL of this process's own database")
    nats_url: str = Field(description="NATS server URL(s), comma-separated")
    log_level: str = "INFO"
    # Measured (bench/reservations.py, 64 connections on one hot SKU, about 1,000 reservations/s):
    # inventory had at most 3 pooled connections out at once and the gateway's engine 1, because
    # concurrent requests share batched statements; 10 leaves room for sagas, consumers and reads.
    db_pool_size: int = Field(default=10, ge=1, le=200, description="pooled connections kept (DB_POOL_SIZE)")
    db_max_overflow: int = Field(
        default=10, ge=0, le=200, description="connections opened beyond the pool under a burst (DB_MAX_OVERFLOW)"
    )
    # JetStream replication for the streams this process declares (3 in production).
    jetstream_replicas: int = Field(default=1, ge=1, le=5)
    shutdown_grace_seconds: float = Field(default=10.0, gt=0, le=120)
    # OpenTelemetry: exporting is on only when an OTLP endpoint is configured.
    otel_exporter_otlp_endpoint: str | None = None
    otel_traces_sampler_arg: float = Field(default=1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _no_dev_secrets_outside_development(self) -> BaseServiceSettings:
        if self.app_env.allows_dev_secrets:
            return self
        offending = []
        for name, field in type(self).model_fields.items():
            extra = field.json_schema_extra
            if isinstance(extra, dict) and extra.get("dev_default") and getattr(self, name) == field.default:
                offending.append(name.upper())
        if offending:
            raise ValueError(
                f"{', '.join(offending)} still hold the local-development default; "
                f"set a real secret for APP_ENV={self.app_env.value}"
            )
        return self

    @property
    def async_database_url(self) -> str:
        return to_async_url(self.database_url)


class GrpcServiceSettings(BaseServiceSettings):
    """What a gRPC service adds: where its API listens."""

    grpc_host: str = Field(default="0.0.0.0", description="interface the gRPC API listens on (GRPC_HOST)")  # noqa: S104
    grpc_port: int = Field(default=50051, ge=0, le=65535, description="gRPC port (GRPC_PORT)")


def to_async_url(url: str) -> str:
    """SQLAlchemy's spelling of a PostgreSQL URL for the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise SettingsError(f"DATABASE_URL must be a postgresql:// URL, got scheme of {url.split(':', 1)[0]!r}")


def to_plain_url(url: str) -> str:
    """The libpq spelling of a PostgreSQL URL, as asyncpg and psql want it."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


SettingsT = TypeVar("SettingsT", bound=BaseServiceSettings)
AnySettingsT = TypeVar("AnySettingsT", bound=BaseSettings)


FILE_SUFFIX = "_FILE"


def settings_from_files(settings_class: type[BaseSettings], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings of `settings_class` given as files: ``FOO_FILE=/path`` gives ``foo`` the file's content.

    Only the class's own fields are read (a ``*_FILE`` variable for another process's setting
    is ignored, like any unknown variable). Fails naming the variable when both ``FOO`` and
    ``FOO_FILE`` are set, or when the file cannot be read.
    """
    variables = {name.upper(): value for name, value in (os.environ if environ is None else environ).items()}
    prefix = str(settings_class.model_config.get("env_prefix") or "")
    values: dict[str, str] = {}
    problems: list[str] = []
    for field_name in settings_class.model_fields:
        variable = f"{prefix}{field_name}".upper()
        path = variables.get(variable + FILE_SUFFIX)
        if path is None:
            continue
        if variable in variables:
            problems.append(f"{variable} and {variable}{FILE_SUFFIX} are both set; set one")
            continue
        try:
            content = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            problems.append(f"{variable}{FILE_SUFFIX}: cannot read {path}: {reason}")
            continue
        # `kubectl create secret --from-file` and editors keep a final newline; no secret ends in one.
        values[field_name] = content.rstrip("\r\n")
    if problems:
        raise SettingsError(f"{settings_class.__name__}: " + "; ".join(problems))
    return values


def load_settings(settings_class: type[AnySettingsT], **overrides: Any) -> AnySettingsT:
    """Read settings from the environment and ``*_FILE`` files, or fail naming each problem.

    Explicit `overrides` win over both.
    """
    overridden = {name.lower() for name in overrides}
    from_files = {name: value for name, value in settings_from_files(settings_class).items() if name not in overridden}
    try:
        return settings_class(**(from_files | overrides))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"]).upper() or "settings"
            if error["type"] == "missing":
                problems.append(f"{location} is required but not set")
            else:
                problems.append(f"{location}: {error['msg']}")
        raise SettingsError(f"{settings_class.__name__}: " + "; ".join(problems)) from None
