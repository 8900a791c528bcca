"""`python -m services.member`: the member gRPC service."""

from __future__ import annotations

import asyncio
import sys

from servicekit.logs import configure_logging
from servicekit.settings import SettingsError, load_settings
from servicekit.telemetry import configure_tracing
from services.member.bootstrap import SERVICE_NAME, build
from services.member.settings import MemberSettings


async def serve(settings: MemberSettings) -> None:
    app = build(settings)
    try:
        await app.server.serve_until_signalled()
    finally:
        await app.close()


def main() -> int:
    try:
        settings = load_settings(MemberSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(SERVICE_NAME, settings.log_level)
    configure_tracing(
        SERVICE_NAME,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
        sample_ratio=settings.otel_traces_sampler_arg,
    )
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
