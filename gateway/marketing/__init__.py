"""The marketing context of the gateway: HTTP models, their protobuf mapping and the routes.

One router for the marketing backend: segments and campaigns, then coupons, holds and model scores.
"""

from fastapi import APIRouter

from gateway.marketing import coupon_routes, routes

router = APIRouter()
router.include_router(routes.router)
router.include_router(coupon_routes.router)

__all__ = ["router"]
