"""Raw JetStream baseline, run as its own process: acknowledged publishes, no database.

`python -m bench.js_publish NATS_URL SUBJECT COUNT CONCURRENCY` prints messages per second.
It publishes the way the relay does (unique Nats-Msg-Id, waiting for each ack, up to
CONCURRENCY publishes in flight), so the ratio isolates what the outbox adds.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

from servicekit.messaging import connect_nats


async def main(nats_url: str, subject: str, count: int, concurrency: int) -> None:
    client = await connect_nats(nats_url, name="bench-raw-publisher")
    js = client.jetstream()
    payload = b"\x0a\x05hello"
    started = time.perf_counter()
    for start in range(0, count, concurrency):
        await asyncio.gather(
            *(
                js.publish(subject, payload, headers={"Nats-Msg-Id": str(uuid.uuid4())}, timeout=10)
                for _ in range(min(concurrency, count - start))
            )
        )
    elapsed = time.perf_counter() - started
    await client.close()
    print(f"{count / elapsed:.1f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
