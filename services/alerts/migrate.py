"""`python -m services.alerts.migrate`: bring the alerts database to the newest schema."""

from __future__ import annotations

import sys
from pathlib import Path

from servicekit import migrations

VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"


def main() -> int:
    return migrations.upgrade_from_environment(VERSIONS)


if __name__ == "__main__":
    sys.exit(main())
