"""The health routes of the gateway and their HTTP models."""

from gateway.health.routes import router

__all__ = ["router"]
