"""``python -m console``: serve the operations console until SIGTERM or SIGINT.

Exit codes: 0 after a graceful stop, 2 when the settings are missing or invalid (the
message names each variable), 3 when start-up failed.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import uvicorn

from console.app import create_app
from console.settings import load_console_settings
from servicekit.logs import configure_logging
from servicekit.settings import SettingsError

SERVICE_NAME = "console"
EXIT_BAD_SETTINGS = 2
EXIT_STARTUP_FAILED = 3


def main() -> int:
    try:
        settings = load_console_settings()
    except SettingsError as exc:
        print(f"{SERVICE_NAME}: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    configure_logging(SERVICE_NAME, settings.log_level)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.http_host,
            port=settings.http_port,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
        )
    )

    def stopped(signum: int, frame: FrameType | None) -> None:
        return None

    # uvicorn re-raises the stop signal after its graceful shutdown; exit normally instead.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, stopped)
    server.run()
    return 0 if server.started else EXIT_STARTUP_FAILED


if __name__ == "__main__":
    sys.exit(main())
