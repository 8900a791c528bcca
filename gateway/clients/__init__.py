"""The clients routes of the gateway and their HTTP models."""

from gateway.clients.routes import router

__all__ = ["router"]
