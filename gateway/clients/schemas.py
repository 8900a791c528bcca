"""The clients HTTP models: what a request carries and what an answer holds."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gateway.domain.clients import (
    ClientKind,
    StaffRole,
)

_ISSUED_ONCE = "shown only in the first answer; a replay of the request answers null (rotate again if it was lost)"


class NewClient(BaseModel):
    """A client to register; bindings must fit its kind (a POS terminal: store and terminal, ...)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,127}$", examples=["S001-POS09"])
    kind: ClientKind
    display_name: str = Field(min_length=1, max_length=200, examples=["Store S001, till 9"])
    scopes: list[str] | None = Field(
        default=None,
        max_length=64,
        description="omit for the kind's default scopes; only scopes the kind (or staff role) can use",
        examples=[None],
    )
    store_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", examples=["S001"])
    terminal_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    supplier_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    staff_role: StaffRole | None = None


class ClientView(BaseModel):
    """A registration as administrators see it (never the secret or its hash)."""

    client_id: str
    kind: ClientKind
    display_name: str
    scopes: list[str] = Field(description="the scopes its tokens carry")
    store_id: str | None
    terminal_id: str | None
    supplier_id: str | None
    staff_role: StaffRole | None
    created_at: datetime | None
    revoked_at: datetime | None


class IssuedSecret(BaseModel):
    client: ClientView
    client_secret: str | None = Field(description=_ISSUED_ONCE)
