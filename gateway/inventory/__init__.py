"""The inventory context of the gateway: HTTP models, their protobuf mapping and the routes.

One router for the inventory backend: stock, reservations and transfers, then planning.
"""

from fastapi import APIRouter

from gateway.inventory import planning_routes, routes

router = APIRouter()
router.include_router(routes.router)
router.include_router(planning_routes.router)

__all__ = ["router"]
