"""The pos context of the gateway: HTTP models, their protobuf mapping and the routes."""

from gateway.pos.routes import router

__all__ = ["router"]
