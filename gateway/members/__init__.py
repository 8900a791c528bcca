"""The members context of the gateway: HTTP models, their protobuf mapping and the routes.

One router for the member backend: the members' own routes, then the legacy import.
"""

from fastapi import APIRouter

from gateway.members import import_routes, routes

router = APIRouter()
router.include_router(routes.router)
router.include_router(import_routes.router)

__all__ = ["router"]
