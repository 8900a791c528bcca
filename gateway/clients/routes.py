"""Client administration (headquarters staff): register, inspect, rotate secrets, revoke."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Any

from fastapi import Depends, Path, Response

from gateway.clients.schemas import ClientView, IssuedSecret, NewClient
from gateway.domain.clients import (
    ClientRegistration,
    InvalidClientRegistration,
    hash_client_secret,
)
from gateway.domain.scopes import CLIENTS_ADMIN, effective_scopes, scopes_beyond_kind, unknown_scopes
from gateway.http import problems
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.security.authentication import Principal
from gateway.security.authorisation import require

router = ContextRouter(prefix="/v1/admin/clients", tags=["clients"])
ClientIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,127}$", examples=["S001-POS01"])]


def view(registration: ClientRegistration) -> ClientView:
    return ClientView(
        client_id=registration.client_id,
        kind=registration.kind,
        display_name=registration.display_name,
        scopes=sorted(effective_scopes(registration)),
        store_id=registration.store_id,
        terminal_id=registration.terminal_id,
        supplier_id=registration.supplier_id,
        staff_role=registration.staff_role,
        created_at=registration.created_at,
        revoked_at=registration.revoked_at,
    )


async def new_secret() -> tuple[str, str]:
    secret = secrets.token_urlsafe(32)
    return secret, await asyncio.to_thread(hash_client_secret, secret)


def invalid(detail: str, location: str) -> problems.ProblemError:
    """422 ``invalid-argument`` naming the part of the request at fault."""
    error = {"location": location, "message": detail, "type": "invalid_registration"}
    return problems.ProblemError(problems.INVALID_ARGUMENT, detail, extensions={"errors": [error]})


def headquarters(principal: Principal) -> Principal:
    principal.ensure_headquarters()
    return principal


_ERRORS = problems.problem_responses(404, 409)


@router.post("", status_code=201, summary="Register a client", response_model=IssuedSecret, responses=_ERRORS)
async def register_client(
    new: NewClient, idempotency: Annotated[IdempotentRequest, Depends(idempotent(CLIENTS_ADMIN))], resources: Resources
) -> Response:
    """**Scope:** `clients:admin`, headquarters staff only. **Header:** `Idempotency-Key`.

    Registers a client with a freshly generated secret, returned once. 409
    `already-exists` when the client id is taken; 422 when the bindings do not fit the
    kind, a scope is not in the catalogue, or a scope is one the client's kind (or staff
    role) can never use (e.g. `clients:admin` or `members:pii:read` for an app).
    """
    headquarters(idempotency.principal)

    async def effect() -> tuple[int, Any]:
        unknown = unknown_scopes(new.scopes or [])
        if unknown:
            raise invalid(f"unknown scopes: {', '.join(unknown)}", "body.scopes")
        secret, secret_hash = await new_secret()
        try:
            registration = ClientRegistration(
                client_id=new.client_id,
                kind=new.kind,
                display_name=new.display_name,
                secret_hash=secret_hash,
                scopes=frozenset(new.scopes or ()),
                store_id=new.store_id,
                terminal_id=new.terminal_id,
                supplier_id=new.supplier_id,
                staff_role=new.staff_role,
            )
        except InvalidClientRegistration as exc:
            raise invalid(str(exc), "body") from None
        unusable = scopes_beyond_kind(registration.kind, registration.staff_role, registration.scopes)
        if unusable:
            holder = registration.staff_role or registration.kind
            raise invalid(f"scopes that {holder} clients can never use: {', '.join(unusable)}", "body.scopes")
        if not await resources.clients.register(registration):
            raise problems.ProblemError(problems.ALREADY_EXISTS, f"client {new.client_id} is already registered")
        stored = await resources.clients.get(new.client_id)
        assert stored is not None
        return 201, IssuedSecret(client=view(stored), client_secret=secret).model_dump(mode="json")

    return await idempotency.run(effect, never_stored=("client_secret",))


@router.get("/{client_id}", summary="Show a client", response_model=ClientView, responses=_ERRORS)
async def show_client(
    client_id: ClientIdPath,
    principal: Annotated[Principal, Depends(require(CLIENTS_ADMIN))],
    resources: Resources,
) -> ClientView:
    """**Scope:** `clients:admin`, headquarters staff only. 404 when unknown."""
    headquarters(principal)
    registration = await resources.clients.get(client_id)
    if registration is None:
        raise problems.ProblemError(problems.NOT_FOUND, f"no client {client_id}")
    return view(registration)


@router.post("/{client_id}/secret", summary="Rotate a client's secret", response_model=IssuedSecret, responses=_ERRORS)
async def rotate_secret(
    client_id: ClientIdPath,
    idempotency: Annotated[IdempotentRequest, Depends(idempotent(CLIENTS_ADMIN))],
    resources: Resources,
) -> Response:
    """**Scope:** `clients:admin`, headquarters staff only. **Header:** `Idempotency-Key`.

    Replaces the secret with a new one, returned once; the old secret stops working at
    once (tokens already issued run out within their lifetime). 404 when the client is
    unknown or revoked.
    """
    headquarters(idempotency.principal)

    async def effect() -> tuple[int, Any]:
        secret, secret_hash = await new_secret()
        if not await resources.clients.replace_secret_hash(client_id, secret_hash):
            raise problems.ProblemError(problems.NOT_FOUND, f"no active client {client_id}")
        stored = await resources.clients.get(client_id)
        assert stored is not None
        return 200, IssuedSecret(client=view(stored), client_secret=secret).model_dump(mode="json")

    return await idempotency.run(effect, never_stored=("client_secret",))


@router.post("/{client_id}/revoke", summary="Revoke a client", response_model=ClientView, responses=_ERRORS)
async def revoke_client(
    client_id: ClientIdPath,
    idempotency: Annotated[IdempotentRequest, Depends(idempotent(CLIENTS_ADMIN))],
    resources: Resources,
) -> Response:
    """**Scope:** `clients:admin`, headquarters staff only. **Header:** `Idempotency-Key`.

    Revokes the client: it can get no new token, and its tokens stop working within
    `CLIENT_CACHE_SECONDS` on every gateway pod (at once on this one). Revoking twice
    changes nothing. 404 when unknown.
    """
    headquarters(idempotency.principal)

    async def effect() -> tuple[int, Any]:
        revoked = await resources.clients.revoke(client_id)
        if revoked is None:
            raise problems.ProblemError(problems.NOT_FOUND, f"no client {client_id}")
        resources.authenticator.forget(client_id)
        return 200, view(revoked).model_dump(mode="json")

    return await idempotency.run(effect)
