"""Alembic migrations: one shared environment, the kit's tables, and each service's history.

Every service keeps its revisions in its own ``migrations/versions`` folder, starting with a
revision that ``depends_on`` the kit's ``kit_0001`` so the outbox, inbox and request log
exist first. :func:`upgrade` applies the kit's branch and the service's branch together; an
advisory lock makes concurrent migrators (two pods, a Job and ``make run``) take turns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from servicekit.settings import BaseServiceSettings, SettingsError, load_settings, to_async_url

KIT_MIGRATIONS = Path(__file__).parent
KIT_VERSIONS = KIT_MIGRATIONS / "versions"


def alembic_config(database_url: str, service_versions: Path | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(KIT_MIGRATIONS))
    locations = [str(KIT_VERSIONS)] + ([str(service_versions)] if service_versions else [])
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    config.attributes["database_url"] = to_async_url(database_url)
    return config


def upgrade(database_url: str, service_versions: Path | None = None) -> None:
    """Bring a database to the newest revision of the kit and of one service."""
    command.upgrade(alembic_config(database_url, service_versions), "heads")


def upgrade_from_environment(service_versions: Path) -> int:
    """What a service's ``python -m <service>.migrate`` does: migrate ``DATABASE_URL``; 2 on bad settings."""
    try:
        settings = load_settings(BaseServiceSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    upgrade(settings.database_url, service_versions)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Apply a service's database migrations.")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--versions", type=Path, help="the service's migrations/versions folder")
    args = parser.parse_args(argv)
    upgrade(args.database_url, args.versions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
