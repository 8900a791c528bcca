"""Errors a domain raises, free of any transport.

Domain code subclasses these (``class OutOfStock(FailedPrecondition)``); the gRPC
interceptor maps each family to one precise status code and passes ``reason`` along as
trailing metadata, and the gateway turns that into problem+json. Nothing here imports
gRPC, SQL or NATS, so domain modules may use it freely.
"""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the business said no. ``reason`` is a stable, machine-readable slug."""

    reason: str = "domain-error"

    def __init__(self, message: str, *, reason: str | None = None, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Structured facts a caller can act on (e.g. what is still available); plain JSON values.
        self.details = details or {}
        if reason is not None:
            self.reason = reason


class InvalidArgument(DomainError):
    """The request itself is malformed or out of range; retrying it unchanged never helps."""

    reason = "invalid-argument"


class NotFound(DomainError):
    """The object named does not exist (or the caller may not know it exists)."""

    reason = "not-found"


class AlreadyExists(DomainError):
    """Creating something that is already there, or reusing an id for a different request."""

    reason = "already-exists"


class FailedPrecondition(DomainError):
    """The system is not in a state that allows this (e.g. out of stock, already dispatched)."""

    reason = "failed-precondition"


class Conflict(DomainError):
    """A concurrent change won; the caller may retry the whole operation."""

    reason = "conflict"


class PermissionDenied(DomainError):
    """The caller is known but may not touch this object."""

    reason = "permission-denied"


class ResourceExhausted(DomainError):
    """A quota or capacity limit was reached."""

    reason = "resource-exhausted"
