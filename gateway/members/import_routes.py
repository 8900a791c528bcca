"""Members: bring a legacy CRM's members and their purchase history onto the platform (headquarters).

Each member is imported once per `external_id`: importing it again answers its member, and a
member one of whose identities already belongs to a member is linked to that member, never
duplicated. A member the service cannot accept is rejected with its reason while the others
import. Imported purchases count in purchase profiles, lifecycle, KPIs and marketing's models;
they never earn points nor move stock.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response
from retail.member.v1 import member_service_pb2 as pb

from gateway.domain.scopes import MEMBERS_IMPORT
from gateway.http import problems
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.members.schemas import MemberImportIn, MemberImportOut
from gateway.members.wire import actor_of, imported_member_message, map_import_results

router = ContextRouter(prefix="/v1", tags=["members"])

# An import of 1,000 members with their history takes longer than a usual call; a retry with
# the same Idempotency-Key is answered by the member service's kept answer, never imported twice.
IMPORT_DEADLINE_SECONDS = 120.0


@router.post(
    "/member-imports", status_code=200, responses=problems.problem_responses(409), response_model=MemberImportOut
)
async def import_members(
    body: MemberImportIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MEMBERS_IMPORT))],
) -> Response:
    """Import up to 1,000 members of a legacy CRM, each with its identities (as at registration),
    optional profile and consent, and purchases (`occurred_at`, `amount` in yuan, optional
    `store_id` and `lines`). The answer maps every `external_id` to its `member_id` and status:
    `created`, `existing` (imported before, or an identity already belonged to that member) or
    `rejected` with a `reason` (e.g. `invalid-phone`, `purchase-in-future`,
    `identities-of-different-members`, `duplicate-external-id`).

    Scope `members:import` (headquarters only); `Idempotency-Key` required.
    """
    request = pb.ImportMembersRequest(
        request_id=call.request_id,
        members=[imported_member_message(member) for member in body.members],
        actor=actor_of(call.principal),
    )
    deadline = max(resources.grpc_deadline, IMPORT_DEADLINE_SECONDS)
    return await call.forward(
        lambda: resources.member_service.ImportMembers(request, timeout=deadline),
        lambda answer: (200, map_import_results(answer)),
    )
