"""Identity resolution coalesced across requests: one ``ResolveMembers`` call for many callers.

Apps and mini-programs resolve a member on almost every request, so resolutions are the
gateway's most frequent call to the member service. Sent one by one, each pays a whole gRPC
round trip on both sides (the call's machinery was a quarter of the gateway's CPU per
resolution, and most of the member service's). Here concurrent resolutions queue up
(:class:`servicekit.coalescing.Coalescer`): one ``ResolveMembers`` call is in flight at a
time, carrying everything that queued while the previous one ran, and each caller gets its
own answer. An idle gateway adds no delay: the first resolution goes at once.

An identity the member service refuses (no member has it, or it is malformed) fails only its
own caller, with the error the unary call would have raised (:func:`refusal_error`); a call
that fails as a whole (the service unavailable, the deadline passed) fails every caller in it.
"""

from __future__ import annotations

from collections.abc import Sequence

from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc

from gateway.http.grpc_errors import refusal_error
from servicekit.coalescing import Coalescer

# Identities per ResolveMembers call at most (the member service accepts up to 500).
RESOLVE_BATCH_MAX = 200


class MemberResolver:
    """Resolves identities through coalesced ``ResolveMembers`` calls."""

    def __init__(self, stub: member_service_pb2_grpc.MemberServiceAsyncStub, *, max_batch: int = RESOLVE_BATCH_MAX):
        self._stub = stub
        self._coalescer: Coalescer[None, pb.Identity, str] = Coalescer(self._resolve, max_batch=max_batch)

    @property
    def stats(self) -> tuple[int, int]:
        """(calls made, identities resolved through them) so far."""
        return self._coalescer.stats.batches, self._coalescer.stats.items

    async def resolve(self, identity: pb.Identity) -> str:
        """The member id ``identity`` belongs to; the unary call's error when it has none."""
        return await self._coalescer.submit(None, identity)

    async def _resolve(self, _: None, identities: Sequence[pb.Identity]) -> list[str | BaseException]:
        answer = await self._stub.ResolveMembers(pb.ResolveMembersRequest(identities=identities))
        if len(answer.resolutions) != len(identities):
            raise RuntimeError(f"{len(answer.resolutions)} resolutions answered for {len(identities)} identities")
        return [
            resolution.member_id
            if resolution.WhichOneof("outcome") == "member_id"
            else refusal_error(resolution.refusal)
            for resolution in answer.resolutions
        ]
