"""POS sync: sales (also replayed after an offline spell) into the journal, and start-up data.

Sales enter the ``SALES`` stream one by one: each valid sale is published and
acknowledged by JetStream before the batch is answered, and the answer says per sale
whether it was ``accepted``, a ``duplicate`` (already in the journal) or ``rejected``
(with a problem saying why). One bad sale never blocks the others. A batch whose body is
malformed (bad JSON, wrong types, unknown fields, too many sales) is refused as a whole
with a validation problem and nothing is journaled.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import grpc
from fastapi import Depends
from retail.pricing.v1 import pricing_service_pb2 as pricing_pb2
from retail.pricing.v1 import pricing_service_pb2_grpc as pricing_pb2_grpc

from gateway.adapters.sales_journal import JournalUnavailable
from gateway.domain.scopes import POS_SALES_WRITE, POS_SYNC_READ
from gateway.http import problems
from gateway.http.resources import GatewayResources, Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.pos.journal import ingest
from gateway.pos.schemas import (
    CURRENCY,
    STORE_TIMEZONE,
    BatchResult,
    DatasetVersion,
    SalesBatch,
    StoreConfiguration,
    SyncState,
)
from gateway.security.authentication import Principal
from gateway.security.authorisation import require

router = ContextRouter(prefix="/v1/pos", tags=["pos"])
log = logging.getLogger("gateway.pos")


@router.post(
    "/sales/batch",
    summary="Upload POS sales and returns to the sales journal",
    response_model=BatchResult,
    responses=problems.problem_responses(409, 503),
)
async def upload_sales(
    batch: SalesBatch,
    idempotency: Annotated[IdempotentRequest, Depends(idempotent(POS_SALES_WRITE))],
    resources: Resources,
) -> Any:
    """**Scope:** `pos:sales:write` (POS terminals). **Header:** `Idempotency-Key` (required).

    Validates each sale and publishes every valid one to the sales journal; answers only
    after the journal has acknowledged each of them. Per sale the answer is `accepted`,
    `duplicate` (already journaled — safe to resend a batch after a lost answer or an
    offline spell) or `rejected` with a problem and a stable `reason`:

    - `store-mismatch`: the sale's `store_id` is not the terminal's store;
    - `occurred-in-future`: `occurred_at` lies beyond the clock tolerance ahead of the server;
    - `occurred-too-long-ago`: `occurred_at` lies further back than the sale max age (by
      default the journal's retention, 90 days);
    - `non-positive-quantity`, `invalid-quantity`, `invalid-amount`: quantities positive with
      at most 3 decimals and at most 100000 per line, amounts non-negative with at most 2
      decimals (yuan);
    - `unknown-original-sale`: a return whose `original_sale_id` is neither in the journal
      nor earlier in this batch; `original-only-for-returns`;
    - `payments-do-not-add-up`: payments given but not summing to the receipt total.

    The whole batch is refused (422, nothing journaled) when its JSON is malformed, has
    wrong types or unknown fields, or holds more than 500 sales. 503 when the journal did
    not acknowledge: resend the same batch (accepted sales then come back as duplicates).
    """
    principal = idempotency.principal

    async def effect() -> tuple[int, Any]:
        try:
            result = await ingest(batch.sales, principal, resources)
        except JournalUnavailable as exc:
            raise problems.ProblemError(
                problems.SERVICE_UNAVAILABLE,
                "the sales journal did not acknowledge every sale; resend the same batch",
                headers={"Retry-After": "2"},
            ) from exc
        return 200, result.model_dump(mode="json", exclude_none=True)

    return await idempotency.run(effect)


@router.get("/sync", summary="What a terminal needs on start-up or after reconnecting", response_model=SyncState)
async def sync_state(
    principal: Annotated[Principal, Depends(require(POS_SYNC_READ))], resources: Resources
) -> SyncState:
    """**Scope:** `pos:sync:read` (POS terminals).

    Server time, the terminal's store configuration and the version of each dataset it
    caches, from the pricing service: `price_book` is the store's price-book version (the
    one in the price book's `ETag`), `catalogue` the highest item version listed in the
    store. When one moved past the cached copy, fetch what changed:
    `GET /v1/pos/price-book?since_version=<held>` and
    `GET /v1/items?store_id=<store>&since_version=<held>`. While pricing cannot answer,
    both are `available: false` with a null version and a note, and the terminal keeps
    its cached data (the rest of the answer is still current).
    """
    if principal.store_id is None:
        raise problems.ProblemError(problems.FORBIDDEN, "only clients bound to a store have a store configuration")
    return SyncState(
        server_time=datetime.now(UTC),
        store=StoreConfiguration(
            store_id=principal.store_id,
            terminal_id=principal.terminal_id,
            timezone=STORE_TIMEZONE,
            currency=CURRENCY,
            max_sales_per_batch=resources.settings.max_sales_per_batch,
            sale_future_tolerance_seconds=resources.settings.sale_future_tolerance_seconds,
        ),
        datasets=await dataset_versions(resources, principal.store_id),
    )


async def dataset_versions(resources: GatewayResources, store_id: str) -> dict[str, DatasetVersion]:
    """The price-book and catalogue versions of a store, asked of the pricing service in one call."""
    channel = resources.backends.get("pricing")
    if channel is None:
        return _unavailable("the pricing service is not configured; keep the cached copy")
    try:
        answer = await pricing_pb2_grpc.PricingServiceStub(channel).GetStoreVersions(
            pricing_pb2.GetStoreVersionsRequest(store_id=store_id)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return _unavailable(f"pricing has no price book for store {store_id} yet; keep the cached copy")
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            log.warning("pricing did not answer the POS sync", extra={"grpc_code": error.code().name})
            return _unavailable("the pricing service is unavailable; keep the cached copy and ask again")
        raise
    return {
        "price_book": DatasetVersion(
            version=str(answer.price_book_version),
            available=True,
            note="changes: GET /v1/pos/price-book?since_version=<held version>",
        ),
        "catalogue": DatasetVersion(
            version=str(answer.catalogue_version),
            available=True,
            note=f"changes: GET /v1/items?store_id={store_id}&since_version=<held version>",
        ),
    }


def _unavailable(note: str) -> dict[str, DatasetVersion]:
    return {name: DatasetVersion(version=None, available=False, note=note) for name in ("price_book", "catalogue")}
