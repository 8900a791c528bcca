"""The members context of the gateway: HTTP models, their protobuf mapping and the routes."""

from gateway.members.routes import router

__all__ = ["router"]
