"""The auth routes of the gateway and their HTTP models."""

from gateway.auth.routes import router

__all__ = ["router"]
