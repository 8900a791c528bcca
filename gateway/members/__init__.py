"""The members context of the gateway: HTTP models, their protobuf mapping and the routes.

One router for the member backend: the members' own routes (records, KPIs and mix), their identities
(linking, merges, erasure) and points, then the legacy import.
"""

from fastapi import APIRouter

from gateway.members import identity_routes, import_routes, points_routes, routes

router = APIRouter()
router.include_router(routes.router)
router.include_router(identity_routes.router)
router.include_router(points_routes.router)
router.include_router(import_routes.router)

__all__ = ["router"]
