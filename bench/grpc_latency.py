"""Direct gRPC load generator, run as its own process: per-call latency of inventory calls.

``python -m bench.grpc_latency TARGET {read|reserve} SECONDS CONCURRENCY SKUS OWNER`` keeps
CONCURRENCY calls in flight (each worker waits for its answer before the next call, as
wrk's connections do) against the inventory service at TARGET for SECONDS, and prints one
JSON line: calls, errors, calls per second, p50 and p99 in milliseconds.

``read`` is ``GetSkuAvailability`` and ``reserve`` is ``ReserveStock`` of one unit at
``ONLINE01`` with a fresh request id, on a SKU drawn from ``LAT00001`` … ``LAT{SKUS}``:
the calls the gateway makes for ``GET /v1/stock/{sku}`` and ``POST /v1/reservations``, so
the gateway's latency minus this one is what the gateway adds.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time
import uuid

import grpc
from retail.common.v1 import money_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

LOCATION = "ONLINE01"
TTL_SECONDS = 172_800
WARM_UP_CALLS = 3  # per worker, not timed: channel connection, first-call costs


def sku_name(number: int) -> str:
    return f"LAT{number:05d}"


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def run(target: str, mode: str, seconds: float, concurrency: int, skus: int, owner: str) -> dict[str, float]:
    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=10)
        stub = pb_grpc.InventoryServiceStub(channel)

        async def call() -> None:
            sku = sku_name(random.randint(1, skus))
            if mode == "read":
                await stub.GetSkuAvailability(pb.GetSkuAvailabilityRequest(sku=sku), timeout=5)
            else:
                await stub.ReserveStock(
                    pb.ReserveStockRequest(
                        request_id=str(uuid.uuid4()),
                        sku=sku,
                        quantity=money_pb2.Decimal(value="1"),
                        location_id=LOCATION,
                        ttl_seconds=TTL_SECONDS,
                        owner=owner,
                    ),
                    timeout=5,
                )

        for _ in range(WARM_UP_CALLS):
            await asyncio.gather(*(call() for _ in range(concurrency)))
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    await call()
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "calls": float(len(latencies)),
        "errors": float(errors),
        "calls_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def main() -> int:
    target, mode, seconds, concurrency, skus, owner = sys.argv[1:7]
    if mode not in ("read", "reserve"):
        raise SystemExit(f"mode must be read or reserve, not {mode!r}")
    result = asyncio.run(run(target, mode, float(seconds), int(concurrency), int(skus), owner))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
