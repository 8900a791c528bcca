"""The alerts context of the gateway: the operations feed and its webhooks, HTTP models, their
protobuf mapping and the routes (one router for the alerts backend)."""

from gateway.alerts.routes import router

__all__ = ["router"]
