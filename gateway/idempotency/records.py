"""The ``idempotency_record`` table: one row per (client, Idempotency-Key).

Every POST claims a key and then completes or releases it, so this is the gateway's
hottest table. It talks to PostgreSQL through a plain asyncpg pool, one statement (and one
round trip) per step in autocommit: no ORM layer, no pre-ping, no BEGIN/COMMIT pair. A
connection that died with a restarted database is replaced by the pool on its next
acquisition; an outage surfaces as asyncpg's connection errors (503 at the edge).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import asyncpg

from servicekit.settings import to_plain_url

# Claim and look in one statement: the row this request inserted or took over, else the
# row that was there. A row inserted by a transaction that committed while we waited on
# its key is not in this statement's snapshot; we then look again with a new one.
_CLAIM = """
WITH claimed AS (
    INSERT INTO idempotency_record (client_id, idempotency_key, fingerprint, state)
    VALUES ($1, $2, $3, 'in_flight')
    ON CONFLICT (client_id, idempotency_key) DO UPDATE SET claimed_at = now()
        WHERE idempotency_record.state = 'in_flight'
          AND idempotency_record.fingerprint = EXCLUDED.fingerprint
          AND idempotency_record.claimed_at < now() - make_interval(secs => $4)
    RETURNING true AS claimed
)
SELECT coalesce((SELECT claimed FROM claimed), false) AS claimed,
       existing.fingerprint, existing.state, existing.status_code, existing.response_body
  FROM (VALUES (1)) AS one (n)
  LEFT JOIN idempotency_record existing ON existing.client_id = $1 AND existing.idempotency_key = $2
"""
_FIND = (
    "SELECT false AS claimed, fingerprint, state, status_code, response_body FROM idempotency_record"
    " WHERE client_id = $1 AND idempotency_key = $2"
)
_COMPLETE = """
UPDATE idempotency_record
   SET state = 'completed', status_code = $3, response_body = $4, completed_at = now()
 WHERE client_id = $1 AND idempotency_key = $2 AND state = 'in_flight'
"""
_RELEASE = "DELETE FROM idempotency_record WHERE client_id = $1 AND idempotency_key = $2 AND state = 'in_flight'"


class _StatelessConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no type hints
    """A pooled connection that needs no reset when it goes back to the pool.

    asyncpg resets session state (advisory locks, cursors, LISTEN, settings) on every
    release, one more round trip per statement; the statements above leave none behind.
    """

    def get_reset_query(self) -> str:
        return ""


class DatabaseBusy(Exception):
    """No connection of the gateway's pool became free in time."""


@dataclass(frozen=True)
class ClaimOutcome:
    """What claiming a key found: ours to run, someone else's still running, done, or a different request."""

    state: Literal["claimed", "in_flight", "completed", "mismatch"]
    status_code: int | None = None
    response_body: str | None = None


async def open_pool(database_url: str, *, max_size: int, application_name: str) -> asyncpg.Pool:
    """A lazily filled pool (no connection is opened until the first request needs one)."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        to_plain_url(database_url),
        min_size=0,
        max_size=max_size,
        max_inactive_connection_lifetime=300,
        connection_class=_StatelessConnection,
        server_settings={"application_name": application_name},
    )
    return pool


class IdempotencyRecords:
    def __init__(self, pool: asyncpg.Pool, *, lease_seconds: float, acquire_timeout: float = 5.0) -> None:
        self._pool = pool
        # A claim older than this is taken over: its process died between claim and completion.
        self._lease_seconds = lease_seconds
        self._acquire_timeout = acquire_timeout

    async def claim(self, client_id: str, key: str, fingerprint: bytes) -> ClaimOutcome:
        row = await self._fetchrow(_CLAIM, client_id, key, fingerprint, self._lease_seconds)
        if row is not None and row["claimed"]:
            return ClaimOutcome("claimed")
        if row is None or row["state"] is None:  # committed after our snapshot began: look again
            row = await self._fetchrow(_FIND, client_id, key)
            if row is None:  # released meanwhile: the key is free again
                return await self.claim(client_id, key, fingerprint)
        if bytes(row["fingerprint"]) != fingerprint:
            return ClaimOutcome("mismatch")
        if row["state"] == "completed":
            return ClaimOutcome("completed", row["status_code"], row["response_body"])
        return ClaimOutcome("in_flight")

    async def complete(self, client_id: str, key: str, status_code: int, body: str) -> None:
        await self._execute(_COMPLETE, client_id, key, status_code, body)

    async def release(self, client_id: str, key: str) -> None:
        await self._execute(_RELEASE, client_id, key)

    async def _fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as connection:
                return await connection.fetchrow(query, *args)
        except TimeoutError as exc:
            raise DatabaseBusy("no gateway database connection became free in time") from exc

    async def _execute(self, query: str, *args: object) -> None:
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as connection:
                await connection.execute(query, *args)
        except TimeoutError as exc:
            raise DatabaseBusy("no gateway database connection became free in time") from exc
