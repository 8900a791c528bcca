"""The ``idempotency_record`` table: one row per (client, Idempotency-Key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_CLAIM = text(
    """
    INSERT INTO idempotency_record (client_id, idempotency_key, fingerprint, state)
    VALUES (:client_id, :key, :fingerprint, 'in_flight')
    ON CONFLICT (client_id, idempotency_key) DO UPDATE SET claimed_at = now()
        WHERE idempotency_record.state = 'in_flight'
          AND idempotency_record.fingerprint = EXCLUDED.fingerprint
          AND idempotency_record.claimed_at < now() - make_interval(secs => :lease_seconds)
    RETURNING client_id
    """
)
_FIND = text(
    "SELECT fingerprint, state, status_code, response_body FROM idempotency_record"
    " WHERE client_id = :client_id AND idempotency_key = :key"
)
_COMPLETE = text(
    """
    UPDATE idempotency_record
       SET state = 'completed', status_code = :status, response_body = :body, completed_at = now()
     WHERE client_id = :client_id AND idempotency_key = :key AND state = 'in_flight'
    """
)
_RELEASE = text(
    "DELETE FROM idempotency_record WHERE client_id = :client_id AND idempotency_key = :key AND state = 'in_flight'"
)


@dataclass(frozen=True)
class ClaimOutcome:
    """What claiming a key found: ours to run, someone else's still running, done, or a different request."""

    state: Literal["claimed", "in_flight", "completed", "mismatch"]
    status_code: int | None = None
    response_body: str | None = None


class IdempotencyRecords:
    def __init__(self, engine: AsyncEngine, *, lease_seconds: float) -> None:
        self._engine = engine
        # A claim older than this is taken over: its process died between claim and completion.
        self._lease_seconds = lease_seconds

    async def claim(self, client_id: str, key: str, fingerprint: bytes) -> ClaimOutcome:
        values = {"client_id": client_id, "key": key, "fingerprint": fingerprint}
        async with self._engine.begin() as connection:
            claimed = (await connection.execute(_CLAIM, values | {"lease_seconds": self._lease_seconds})).first()
            if claimed is not None:
                return ClaimOutcome("claimed")
            row = (await connection.execute(_FIND, values)).first()
        if row is None:  # released between our insert and our look: try again
            return await self.claim(client_id, key, fingerprint)
        if bytes(row.fingerprint) != fingerprint:
            return ClaimOutcome("mismatch")
        if row.state == "completed":
            return ClaimOutcome("completed", row.status_code, row.response_body)
        return ClaimOutcome("in_flight")

    async def complete(self, client_id: str, key: str, status_code: int, body: str) -> None:
        values = {"client_id": client_id, "key": key, "status": status_code, "body": body}
        async with self._engine.begin() as connection:
            await connection.execute(_COMPLETE, values)

    async def release(self, client_id: str, key: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(_RELEASE, {"client_id": client_id, "key": key})
