"""The pricing context of the gateway: HTTP models, their protobuf mapping and the routes.

One router for the pricing backend: the head-office routes, then the stores' own.
"""

from fastapi import APIRouter

from gateway.pricing import routes, store_routes

router = APIRouter()
router.include_router(routes.router)
router.include_router(store_routes.router)

__all__ = ["router"]
