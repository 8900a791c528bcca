"""The member context, asked for the member a SALES journal's lookup hash belongs to (gRPC)."""

from __future__ import annotations

import grpc
from retail.member.v1 import member_service_pb2 as member_pb2
from retail.member.v1 import member_service_pb2_grpc as member_grpc


class MemberServiceDirectory:
    """Asks the member service; an unknown hash is None (not a member), any other failure raises so the
    consumer retries the journal entry later (never records the buyer as a non-member by mistake)."""

    def __init__(self, target: str, *, timeout: float) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = member_grpc.MemberServiceStub(self._channel)
        self._timeout = timeout

    async def member_of(self, identity_hash: bytes) -> str | None:
        try:
            found = await self._stub.FindMemberByLookupHash(
                member_pb2.FindMemberByLookupHashRequest(identity_hash=identity_hash), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return found.member_id or None

    async def close(self) -> None:
        await self._channel.close(None)
