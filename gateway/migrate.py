"""``python -m gateway.migrate``: bring the gateway's database to the newest schema.

Applies the kit's tables and the gateway's own history; safe to run concurrently (the
migrations take an advisory lock) and again (a second run changes nothing).
"""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.settings import GatewaySettings
from servicekit import migrations
from servicekit.logs import configure_logging
from servicekit.settings import SettingsError, load_settings

GATEWAY_VERSIONS = Path(__file__).parent / "migrations" / "versions"


def main() -> int:
    try:
        settings = load_settings(GatewaySettings)
    except SettingsError as exc:
        print(f"gateway.migrate: {exc}", file=sys.stderr)
        return 2
    configure_logging("gateway-migrate", settings.log_level)
    migrations.upgrade(settings.database_url, GATEWAY_VERSIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
