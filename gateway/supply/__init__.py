"""The supply context of the gateway: HTTP models, their protobuf mapping and the routes.

One router for the supply backend: suppliers, contracts, scorecards and sell-through; purchase
orders, goods receipts and invoices; settlement statements. The supplier portal is these same
routes as a supplier user sees them: its own supplier's objects only.
"""

from fastapi import APIRouter

from gateway.supply import order_routes, statement_routes, supplier_routes

router = APIRouter()
router.include_router(supplier_routes.router)
router.include_router(order_routes.router)
router.include_router(statement_routes.router)

__all__ = ["router"]
