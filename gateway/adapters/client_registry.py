"""Client registrations in the gateway's own PostgreSQL database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, MetaData, Table, Text, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.domain.clients import ClientKind, ClientRegistration, StaffRole

gateway_metadata = MetaData()

# Mirrors migrations/versions/gateway_0001 (which also holds the check constraints).
client_registration = Table(
    "client_registration",
    gateway_metadata,
    Column("client_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("store_id", Text),
    Column("terminal_id", Text),
    Column("supplier_id", Text),
    Column("staff_role", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)

# Mirrors migrations/versions/gateway_0003.
revoked_token = Table(
    "revoked_token",
    gateway_metadata,
    Column("token_id", Text, primary_key=True),
    Column("client_id", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


class ClientRegistry:
    """Stores and finds client registrations."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def register(self, registration: ClientRegistration) -> bool:
        """Store a registration; True if it is new, False if the client_id was already registered.

        Registering the same client_id again changes nothing (the first registration stands),
        so seeding and provisioning jobs can be re-run safely.
        """
        statement = (
            insert(client_registration)
            .values(
                client_id=registration.client_id,
                kind=registration.kind.value,
                display_name=registration.display_name,
                secret_hash=registration.secret_hash,
                scopes=sorted(registration.scopes),
                store_id=registration.store_id,
                terminal_id=registration.terminal_id,
                supplier_id=registration.supplier_id,
                staff_role=registration.staff_role.value if registration.staff_role else None,
                revoked_at=registration.revoked_at,
            )
            .on_conflict_do_nothing(index_elements=[client_registration.c.client_id])
            .returning(client_registration.c.client_id)
        )
        async with self._engine.begin() as connection:
            inserted = (await connection.execute(statement)).first()
        return inserted is not None

    async def get(self, client_id: str) -> ClientRegistration | None:
        """The registration of ``client_id`` (revoked ones included), or None."""
        statement = select(client_registration).where(client_registration.c.client_id == client_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return _registration(row) if row is not None else None

    async def replace_secret_hash(self, client_id: str, secret_hash: str) -> bool:
        """Give an active client a new secret hash; False when it is unknown or revoked."""
        statement = (
            update(client_registration)
            .where(client_registration.c.client_id == client_id, client_registration.c.revoked_at.is_(None))
            .values(secret_hash=secret_hash)
            .returning(client_registration.c.client_id)
        )
        async with self._engine.begin() as connection:
            return (await connection.execute(statement)).first() is not None

    async def revoke(self, client_id: str) -> ClientRegistration | None:
        """Revoke a client (idempotent: the first revocation time stands); None when unknown."""
        statement = (
            update(client_registration)
            .where(client_registration.c.client_id == client_id)
            .values(revoked_at=func.coalesce(client_registration.c.revoked_at, func.now()))
            .returning(*client_registration.c)
        )
        async with self._engine.begin() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return _registration(row) if row is not None else None

    async def revoke_token(self, token_id: str, client_id: str, expires_at: datetime) -> None:
        """Refuse one token from now on (idempotent); expired revocations are dropped as they go."""
        statement = (
            insert(revoked_token)
            .values(token_id=token_id, client_id=client_id, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=[revoked_token.c.token_id])
        )
        async with self._engine.begin() as connection:
            await connection.execute(delete(revoked_token).where(revoked_token.c.expires_at < func.now()))
            await connection.execute(statement)

    async def revoked_token_ids(self, client_id: str) -> frozenset[str]:
        """The ids of the client's revoked tokens that have not expired yet."""
        statement = select(revoked_token.c.token_id).where(
            revoked_token.c.client_id == client_id, revoked_token.c.expires_at > func.now()
        )
        async with self._engine.connect() as connection:
            return frozenset(str(token_id) for token_id in (await connection.execute(statement)).scalars())


def _registration(row: RowMapping) -> ClientRegistration:
    return ClientRegistration(
        client_id=row["client_id"],
        kind=ClientKind(row["kind"]),
        display_name=row["display_name"],
        secret_hash=row["secret_hash"],
        scopes=frozenset(row["scopes"]),
        store_id=row["store_id"],
        terminal_id=row["terminal_id"],
        supplier_id=row["supplier_id"],
        staff_role=StaffRole(row["staff_role"]) if row["staff_role"] else None,
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
