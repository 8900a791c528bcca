"""A member's identities: link one (and merge two members), undo a merge, erase a member (PIPL).

The member records themselves are :mod:`gateway.members.routes`. Answers carry ids and facts
only, never personal data.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Query, Response
from retail.member.v1 import member_service_pb2 as pb

from gateway.domain.scopes import MEMBERS_ERASE, MEMBERS_MERGES_UNDO, MEMBERS_WRITE
from gateway.http import problems
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.members.schemas import ErasedOut, Linked, LinkIn, MemberId, UndoneOut
from gateway.members.wire import actor_of, identity_message, map_linked, map_undone
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from servicekit.protowire import moment

router = ContextRouter(prefix="/v1", tags=["members"])


@router.post("/members/{member_id}/identities", responses=problems.problem_responses(404, 409), response_model=Linked)
async def link_identity(
    member_id: MemberId,
    body: LinkIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MEMBERS_WRITE))],
) -> Response:
    """Link a channel identity to a member. An identity that belongs to another member merges the
    two (the older or more complete survives; headquarters may choose with `survivor_member_id`);
    the answer names the merge, which `POST /v1/merges/{merge_id}/undo` reverses. An identity
    the member already has is `409` (`identity-already-linked`).

    Scope `members:write`; `Idempotency-Key` required.
    """
    if body.survivor_member_id and not call.principal.is_headquarters:
        raise problems.ProblemError(problems.FORBIDDEN, "only headquarters staff choose the survivor of a merge")
    message = pb.LinkIdentityRequest(
        request_id=call.request_id,
        member_id=member_id,
        identity=identity_message(body),
        survivor_member_id=body.survivor_member_id or "",
        actor=actor_of(call.principal),
    )

    return await call.forward(
        lambda: resources.member_service.LinkIdentity(message), lambda answer: (200, map_linked(answer))
    )


@router.post("/merges/{merge_id}/undo", responses=problems.problem_responses(404, 409), response_model=UndoneOut)
async def undo_merge(
    merge_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MEMBERS_MERGES_UNDO))],
) -> Response:
    """Undo a merge: both members exactly as they were before it. `409` with a `reason` when that
    is no longer possible: `merge-already-undone`, `survivor-merged-again` (undo the later merge
    first), `merge-diverged` (moved points were spent since) or `merged-member-erased`.

    Scope `members:merges:undo`; `Idempotency-Key` required.
    """
    message = pb.UndoMergeRequest(request_id=call.request_id, merge_id=merge_id, actor=actor_of(call.principal))

    return await call.forward(
        lambda: resources.member_service.UndoMerge(message), lambda answer: (200, map_undone(answer))
    )


@router.delete("/members/{member_id}", responses=problems.problem_responses(404))
async def erase_member(
    member_id: MemberId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MEMBERS_ERASE))],
    reason: Annotated[str, Query(max_length=200, description="ticket or request reference; no personal data")] = "",
) -> ErasedOut:
    """Erase a member (PIPL): every personal datum and identity of the member, and of members merged
    into it, is removed from the member service; only anonymous aggregates remain. Erasing again
    answers the first erasure. Scope `members:erase`.
    """
    answer = await resources.member_service.EraseMember(
        pb.EraseMemberRequest(
            request_id=f"{principal.client_id}/erase/{uuid.uuid4()}",
            member_id=member_id,
            reason=reason,
            actor=actor_of(principal),
        ),
    )
    return ErasedOut(
        member_id=answer.member_id,
        erased_at=moment(answer.erased_at),
        also_erased_member_ids=list(answer.also_erased_member_ids),
    )
