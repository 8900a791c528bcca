"""The outbox relay as its own process: `python -m bench.relay_drain DB_URL NATS_URL`.

Drains every unpublished outbox row and prints rows per second.
"""

from __future__ import annotations

import asyncio
import sys
import time

import asyncpg

from servicekit.messaging import connect_nats
from servicekit.outbox import OutboxRelay
from servicekit.settings import to_plain_url


async def main(database_url: str, nats_url: str) -> None:
    connection = await asyncpg.connect(to_plain_url(database_url))
    pending = int(await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    client = await connect_nats(nats_url, name="bench-relay")
    relay = OutboxRelay(database_url, client.jetstream())
    started = time.perf_counter()
    while pending:
        published, failed = await relay.publish_pending(connection)
        if failed:
            raise SystemExit(f"{failed} publishes failed during the benchmark")
        pending -= published
    elapsed = time.perf_counter() - started
    await connection.close()
    await client.close()
    print(f"{relay.stats.published / elapsed:.1f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
