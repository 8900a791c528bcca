"""A relay process for the kill -9 tests.

`python -m tests.support.relay_worker DB_URL NATS_URL [--until-empty | --freeze-before-mark]`
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from servicekit.messaging import connect_nats
from servicekit.outbox import OutboxRelay
from servicekit.settings import to_plain_url


class FreezingRelay(OutboxRelay):
    """Stops dead after JetStream acked a batch and before marking it: the worst moment to die."""

    async def _mark_published(self, connection: asyncpg.Connection, row_ids: list[int]) -> None:
        print(f"acked {len(row_ids)} unmarked", flush=True)
        await asyncio.Event().wait()


async def main(database_url: str, nats_url: str, until_empty: bool, freeze: bool) -> None:
    client = await connect_nats(nats_url, name="relay-worker")
    relay_type = FreezingRelay if freeze else OutboxRelay
    relay = relay_type(database_url, client.jetstream(), batch_size=40, poll_interval=0.05)
    stop = asyncio.Event()
    runner = asyncio.create_task(relay.run(stop))
    print("relay started", flush=True)
    if until_empty:
        connection = await asyncpg.connect(to_plain_url(database_url))
        while await connection.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
            await asyncio.sleep(0.02)
        await connection.close()
        stop.set()
    await runner
    await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], "--until-empty" in sys.argv, "--freeze-before-mark" in sys.argv))
