"""The console's typed settings, read from the environment."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.settings import Environment, dev_secret, load_settings

DEV_SESSION_KEY = "local-console-session-key-not-secret"  # the local-development default, refused elsewhere


class ConsoleSettings(BaseSettings):
    """What the console needs: the gateway it is a client of, its session key and timings."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True, case_sensitive=False)

    app_env: Environment = Field(description="local, test, staging or production (APP_ENV)")
    gateway_url: str = Field(
        pattern=r"^https?://[^/\s]+$", description="the gateway's base URL, e.g. http://127.0.0.1:8080 (GATEWAY_URL)"
    )
    console_session_key: SecretStr = dev_secret(
        DEV_SESSION_KEY,
        "key sealing the session cookie (AES-256-GCM; CONSOLE_SESSION_KEY), the same on every replica; "
        "at least 32 characters",
    )
    http_host: str = Field(default="127.0.0.1", description="interface the console listens on (HTTP_HOST)")
    http_port: int = Field(default=8090, ge=0, le=65535, description="the console's port (HTTP_PORT)")
    idle_timeout_seconds: int = Field(
        default=900, ge=1, le=86_400, description="a session unused this long is signed out (IDLE_TIMEOUT_SECONDS)"
    )
    gateway_timeout_seconds: float = Field(
        default=60.0, gt=0, le=300, description="how long one gateway call may take (GATEWAY_TIMEOUT_SECONDS)"
    )
    shutdown_grace_seconds: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="how long requests in flight may finish after SIGTERM (SHUTDOWN_GRACE_SECONDS)",
    )
    secure_cookies: bool | None = Field(
        default=None,
        description="send the session cookie with Secure (behind HTTPS); default: on outside local and test "
        "(SECURE_COOKIES)",
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _real_session_key_outside_development(self) -> ConsoleSettings:
        key = self.console_session_key.get_secret_value()
        if not self.app_env.allows_dev_secrets:
            if key == DEV_SESSION_KEY:
                raise ValueError(
                    f"CONSOLE_SESSION_KEY still holds the local-development default; "
                    f"set a real secret for APP_ENV={self.app_env.value}"
                )
            if len(key) < 32:
                raise ValueError("CONSOLE_SESSION_KEY must be at least 32 characters")
        return self

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return not self.app_env.allows_dev_secrets


def load_console_settings(**overrides: Any) -> ConsoleSettings:
    """Read the settings from the environment, or fail with a message naming each problem."""
    return load_settings(ConsoleSettings, **overrides)
