"""`python -m services.member.migrate`: bring the member database to the newest schema."""

from __future__ import annotations

import sys
from pathlib import Path

from servicekit import migrations
from servicekit.settings import BaseServiceSettings, SettingsError, load_settings

VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"


def main() -> int:
    try:
        settings = load_settings(BaseServiceSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    migrations.upgrade(settings.database_url, VERSIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
