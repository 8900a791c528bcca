"""A gateway rolled out before its services keeps answering: batched calls fall back to unary ones.

A real in-process gRPC server plays a member service of an older release: it has
``ResolveMember`` but not ``ResolveMembers`` (the server answers that ``UNIMPLEMENTED``),
until the new release replaces it on the same address. Concurrent resolutions through the gateway's coalesced calls must
each get the unary call's answer (or its error), go unary for the configured while, and
return to batched calls once that while has passed and the backend has the batched call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc

from gateway.adapters.coalesced_calls import member_resolutions

if TYPE_CHECKING:
    from retail.member.v1.member_service_pb2_grpc import MemberServiceAsyncStub

MEMBERS = {f"1390000{n:04d}": f"M{n:06d}" for n in range(30)}


SERVICE = "retail.member.v1.MemberService"


class MemberBackend:
    """A member service on one port: an older release without ``ResolveMembers`` (the server
    itself answers it UNIMPLEMENTED), then, after :meth:`upgrade`, the new release with it."""

    def __init__(self) -> None:
        self.unary_calls = 0
        self.batched_calls = 0
        self.port = 0
        self.server: grpc.aio.Server | None = None

    async def resolve_member(self, request: pb.ResolveMemberRequest, context: Any) -> pb.ResolveMemberResponse:
        self.unary_calls += 1
        if request.identity.value not in MEMBERS:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no member has this phone")
        return pb.ResolveMemberResponse(member_id=MEMBERS[request.identity.value])

    async def resolve_members(self, request: pb.ResolveMembersRequest, context: Any) -> pb.ResolveMembersResponse:
        self.batched_calls += 1
        # An identity it cannot answer fails the whole call (UNKNOWN), as a bug would.
        return pb.ResolveMembersResponse(
            resolutions=[pb.Resolution(member_id=MEMBERS[identity.value]) for identity in request.identities]
        )

    async def start(self, *, batched: bool) -> None:
        handlers = {
            "ResolveMember": grpc.unary_unary_rpc_method_handler(
                self.resolve_member,
                request_deserializer=pb.ResolveMemberRequest.FromString,
                response_serializer=pb.ResolveMemberResponse.SerializeToString,
            )
        }
        if batched:
            handlers["ResolveMembers"] = grpc.unary_unary_rpc_method_handler(
                self.resolve_members,
                request_deserializer=pb.ResolveMembersRequest.FromString,
                response_serializer=pb.ResolveMembersResponse.SerializeToString,
            )
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self.server.start()

    async def upgrade(self) -> None:
        """Roll out the release with the batched call, on the same address."""
        await self.stop()
        await self.start(batched=True)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def backend() -> AsyncIterator[tuple[MemberBackend, MemberServiceAsyncStub]]:
    service = MemberBackend()
    await service.start(batched=False)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    try:
        yield service, member_service_pb2_grpc.MemberServiceStub(channel)
    finally:
        await channel.close(None)
        await service.stop()


def phone(value: str) -> pb.Identity:
    return pb.Identity(type=pb.IDENTITY_TYPE_PHONE, value=value)


async def test_an_older_backend_gets_unary_calls_until_it_has_the_batched_one(
    backend: tuple[MemberBackend, MemberServiceAsyncStub],
) -> None:
    service, stub = backend
    clock = Clock()
    resolve = member_resolutions(stub, clock=clock)
    asked = [*MEMBERS, "13999999999"] * 3  # every member three times, and a phone nobody has

    answers = await asyncio.gather(*(resolve(phone(value)) for value in asked), return_exceptions=True)

    for value, answer in zip(asked, answers, strict=True):
        if value in MEMBERS:
            assert answer == MEMBERS[value]
        else:
            assert isinstance(answer, grpc.aio.AioRpcError)
            assert answer.code() is grpc.StatusCode.NOT_FOUND  # the unary call's own refusal
    assert service.unary_calls == len(asked)
    assert service.batched_calls == 0

    # Upgraded meanwhile, the backend is still sent unary calls within the while...
    await service.upgrade()
    clock.now += 59
    assert await resolve(phone("13900000001")) == "M000001"
    assert (service.unary_calls, service.batched_calls) == (len(asked) + 1, 0)

    # ...and batched ones after it.
    clock.now += 2
    batched = await asyncio.gather(*(resolve(phone(value)) for value in MEMBERS))
    assert batched == list(MEMBERS.values())
    assert service.unary_calls == len(asked) + 1
    assert 1 <= service.batched_calls < len(MEMBERS)


async def test_other_failures_of_the_batched_call_are_not_retried_as_unary_calls(
    backend: tuple[MemberBackend, MemberServiceAsyncStub],
) -> None:
    service, stub = backend
    await service.upgrade()
    resolve = member_resolutions(stub)

    # An identity the upgraded service cannot answer makes its batched call fail as a whole (UNKNOWN).
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await resolve(phone("13999999999"))

    assert failed.value.code() is grpc.StatusCode.UNKNOWN
    assert service.unary_calls == 0
