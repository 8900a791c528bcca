"""Who may do what in the pricing routes: ownership checks both route modules share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.domain.clients import ClientKind, StaffRole
from gateway.http import problems
from gateway.security.authentication import Principal


def created_or_changed(model: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a PUT: `201` with the object when it was created (`200` when changed), and its problems."""
    responses = problems.problem_responses(*statuses)
    responses[201] = {"model": model, "description": "Created"}
    return responses


def forbidden(detail: str) -> problems.ProblemError:
    return problems.ProblemError(problems.FORBIDDEN, detail)


def ensure_store_staff(principal: Principal, store_id: str, *, managers_only: bool) -> None:
    """403 unless headquarters, or staff of ``store_id`` (its manager when ``managers_only``)."""
    if principal.is_headquarters:
        return
    if principal.kind is not ClientKind.STAFF or principal.store_id is None:
        raise forbidden(f"only headquarters and the staff of store {store_id} may do this")
    principal.ensure_store(store_id)
    if managers_only and principal.staff_role is not StaffRole.STORE_MANAGER:
        raise forbidden(f"only headquarters and the manager of store {store_id} may do this")


def price_question_store(principal: Principal, store_id: str | None, location: str) -> str:
    """The store a price is asked for: a store-bound client's own by default, and never another."""
    if principal.kind is ClientKind.SUPPLIER_USER:
        raise forbidden("supplier users do not ask for selling prices")
    chosen = store_id or principal.store_id
    if not chosen:
        error = {"location": location, "message": "a store is required", "type": "missing"}
        raise problems.ProblemError(
            problems.VALIDATION_ERROR, "name the store the price is asked for", extensions={"errors": [error]}
        )
    principal.ensure_store(chosen)
    return chosen


BOOK_RESPONSES = problems.problem_responses(404)
