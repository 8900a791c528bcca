"""Pricing as stores use it: the POS price book, shelf labels and markdown suggestions."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import Depends, Header, Path, Query, Response
from retail.pricing.v1 import pricing_service_pb2 as pb

from gateway.domain.clients import ClientKind, StaffRole
from gateway.domain.scopes import (
    LABELS_READ,
    LABELS_WRITE,
    MARKDOWNS_DECIDE,
    MARKDOWNS_READ,
    POS_PRICE_BOOK_READ,
)
from gateway.http import problems
from gateway.http.integer_types import Int64
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, created_status, idempotent
from gateway.members.wire import actor_of
from gateway.pricing.access import BOOK_RESPONSES, created_or_changed, ensure_store_staff, forbidden
from gateway.pricing.schemas import (
    ID_PATTERN,
    DecisionIn,
    DecisionOut,
    LabelAuditOut,
    LabelIn,
    LabelMismatchOut,
    LabelOut,
    LabelPage,
    MarkdownPage,
    PriceBookOut,
    StoreId,
)
from gateway.pricing.wire import (
    book_etag,
    enum_name,
    enum_number,
    map_book_entry,
    map_decision,
    map_label,
    map_markdown,
    optional_amount,
)
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from servicekit.protowire import timestamp

router = ContextRouter(prefix="/v1", tags=["pricing"])


_MARKDOWN_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


LabelStateName = Literal["pending", "sent", "acknowledged", "failed", "given_up"]
MarkdownStateName = Literal["open", "approved", "rejected", "withdrawn"]


_BOOK_ETAG = re.compile(r'(?:W/)?"pb-(.+)-([0-9]{1,18})"')


def held_versions(if_none_match: str, store_id: str) -> tuple[bool, set[int]]:
    """Whether `*` was sent, and the versions of this store's book named in ``If-None-Match``
    (compared weakly, as RFC 9110 asks of If-None-Match)."""
    any_version, versions = False, set[int]()
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*":
            any_version = True
        elif (match := _BOOK_ETAG.fullmatch(tag)) and match.group(1) == store_id:
            versions.add(int(match.group(2)))
    return any_version, versions


@router.get("/pos/price-book", responses=BOOK_RESPONSES, response_model=PriceBookOut)
async def pos_price_book(
    response: Response,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(POS_PRICE_BOOK_READ))],
    page: Paging,
    since_version: Annotated[Int64, Query(ge=0, description="0: the whole book; N: what changed after N")] = 0,
    store_id: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="the terminal's own store (the default)")
    ] = None,
    if_none_match: Annotated[
        str | None, Header(alias="If-None-Match", max_length=2000, description='the ETag held, e.g. "pb-S001-42"')
    ] = None,
) -> PriceBookOut | Response:
    """The terminal's store price book: whole, or what changed after `since_version` (removed
    SKUs included, flagged `removed`), paged by SKU.

    Scope `pos:price-book:read`, POS terminals only, always their own store. The answer has
    `ETag: "pb-<store>-<version>"`; sending it back in `If-None-Match` answers `304` with no
    body while the book is unchanged.
    """
    if principal.kind is not ClientKind.POS_TERMINAL or principal.store_id is None:
        raise forbidden("the POS price book is for POS terminals of a store")
    if store_id is not None and store_id != principal.store_id:
        raise forbidden(f"a terminal reads the price book of its own store {principal.store_id} only")
    store_id = principal.store_id
    # Conditions apply to a book's first page; later pages continue a download already begun. Of
    # several tags sent, the newest version is the one that can still be current.
    any_version, versions = False, set[int]()
    if if_none_match and not page.cursor:
        any_version, versions = held_versions(if_none_match, store_id)
    answer = await resources.pricing_service.GetPriceBook(
        pb.GetPriceBookRequest(
            store_id=store_id,
            since_version=since_version,
            known_version=max(versions, default=0),
            page=page.request(size=1 if any_version else None),
        ),
    )
    headers = {"ETag": book_etag(answer.store_id or store_id, answer.version), "Cache-Control": "no-cache"}
    if answer.not_modified or any_version:
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return PriceBookOut(
        store_id=answer.store_id or store_id,
        version=answer.version,
        delta=answer.delta,
        entries=[map_book_entry(entry) for entry in answer.entries],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.put(
    "/stores/{store_id}/labels/{label_id}", responses=created_or_changed(LabelOut, 404, 409), response_model=LabelOut
)
async def put_label(
    store_id: StoreId,
    label_id: Annotated[str, Path(pattern=ID_PATTERN, description="the label id (an OpenEPaperLink tag's MAC)")],
    body: LabelIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(LABELS_WRITE))],
) -> Response:
    """Link a shelf label to a SKU listed in the store (`201` new, `200` changed); its price is
    pushed to the label and its acknowledgement tracked.

    Scope `labels:write`: the store's manager or headquarters; `Idempotency-Key` required.
    """
    ensure_store_staff(call.principal, store_id, managers_only=True)
    message = pb.PutLabelRequest(
        request_id=call.request_id,
        store_id=store_id,
        label_id=label_id,
        sku=body.sku,
        template=body.template or "",
        actor=actor_of(call.principal),
    )

    return await call.forward(
        lambda: resources.pricing_service.PutLabel(message),
        lambda answer: (created_status(answer.created), map_label(answer.label)),
    )


@router.get("/stores/{store_id}/labels", responses=problems.problem_responses(404))
async def list_labels(
    store_id: StoreId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(LABELS_READ))],
    page: Paging,
    state: Annotated[LabelStateName | None, Query(description="only labels in this sync state")] = None,
) -> LabelPage:
    """A page of a store's shelf labels with their sync state. Scope `labels:read`: the store's staff, headquarters."""
    ensure_store_staff(principal, store_id, managers_only=False)
    answer = await resources.pricing_service.ListLabels(
        pb.ListLabelsRequest(
            store_id=store_id, state=enum_number(pb.LabelSyncState, "LABEL_SYNC_STATE", state), page=page.request()
        ),
    )
    return LabelPage(
        labels=[map_label(label) for label in answer.labels],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.get("/stores/{store_id}/label-mismatches", responses=problems.problem_responses(404))
async def label_mismatches(
    store_id: StoreId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(LABELS_READ))],
    page: Paging,
) -> LabelAuditOut:
    """The parity audit of a store: labels showing a price other than the POS charges now, and
    labels that have not acknowledged their content within the deadline, with the mismatch rate.

    Scope `labels:read`: the store's staff, headquarters.
    """
    ensure_store_staff(principal, store_id, managers_only=False)
    answer = await resources.pricing_service.ListLabelMismatches(
        pb.ListLabelMismatchesRequest(store_id=store_id, page=page.request()),
    )
    return LabelAuditOut(
        store_id=store_id,
        label_count=answer.label_count,
        mismatch_count=answer.mismatch_count,
        mismatch_rate=answer.mismatch_rate.value or "0",
        deadline_seconds=answer.deadline_seconds,
        mismatches=[
            LabelMismatchOut(
                label=map_label(m.label),
                pos_price=optional_amount(m, "pos_price"),
                reason=enum_name(pb.MismatchReason, "MISMATCH_REASON", m.reason) or "unspecified",
            )
            for m in answer.mismatches
        ],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.get("/stores/{store_id}/markdown-suggestions", responses=problems.problem_responses(404))
async def list_markdowns(
    store_id: StoreId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MARKDOWNS_READ))],
    page: Paging,
    state: Annotated[MarkdownStateName | None, Query(description="default: open")] = None,
) -> MarkdownPage:
    """A store's markdown suggestions for slow movers and overstock, by SKU.

    Scope `markdowns:read`: the store's manager, headquarters.
    """
    ensure_store_staff(principal, store_id, managers_only=True)
    answer = await resources.pricing_service.ListMarkdownSuggestions(
        pb.ListMarkdownSuggestionsRequest(
            store_id=store_id, page=page.request(), state=enum_number(pb.MarkdownState, "MARKDOWN_STATE", state)
        ),
    )
    return MarkdownPage(
        suggestions=[map_markdown(suggestion) for suggestion in answer.suggestions],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.post(
    "/markdown-suggestions/{markdown_id}:decide",
    responses=problems.problem_responses(404, 409),
    response_model=DecisionOut,
)
async def decide_markdown(
    markdown_id: Annotated[str, Path(pattern=_MARKDOWN_ID)],
    body: DecisionIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MARKDOWNS_DECIDE))],
) -> Response:
    """Approve a markdown suggestion (it becomes a scheduled price change, at `effective_at` or as
    soon as possible) or reject it.

    Scope `markdowns:decide`: headquarters, or the manager of the suggestion's store (the
    pricing service refuses another store's manager); `Idempotency-Key` required.
    """
    principal = call.principal
    if not principal.is_headquarters and (
        principal.staff_role is not StaffRole.STORE_MANAGER or principal.store_id is None
    ):
        raise forbidden("only headquarters and store managers decide markdowns")
    message = pb.DecideMarkdownRequest(
        request_id=call.request_id, markdown_id=markdown_id, approve=body.approve, actor=actor_of(principal)
    )
    if body.effective_at is not None:
        message.effective_at.CopyFrom(timestamp(body.effective_at))

    return await call.forward(
        lambda: resources.pricing_service.DecideMarkdown(message), lambda answer: (200, map_decision(answer))
    )
