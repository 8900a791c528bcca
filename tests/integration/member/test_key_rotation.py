"""Rotating the data key: every sealed value moves to the new key, after which the old key can go."""

from __future__ import annotations

import base64
from collections.abc import Callable

import grpc
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc
from sqlalchemy.ext.asyncio import async_sessionmaker

from servicekit.db import UnitOfWork, create_engine
from services.member.adapters.personal_data import DataKeyring, PersonalDataCodec
from services.member.service_layer.key_rotation import reseal_with_current_key
from services.member.settings import MemberSettings
from tests.integration.member.conftest import clear_view, fetch, random_phone, register, start_member_app
from tests.support.clock import HandClock

OLD_KEY = "k2025:" + base64.b64encode(bytes(range(32))).decode()
NEW_KEY = "k2026:" + base64.b64encode(bytes(range(100, 132))).decode()


async def test_after_resealing_the_old_key_can_be_removed(
    member_settings: Callable[..., MemberSettings], member_url: str, clock: HandClock
) -> None:
    phones = [random_phone() for _ in range(3)]
    old = await start_member_app(member_settings(member_data_keys=OLD_KEY), clock)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{old.server.bound_port}") as channel:
            stub = pb_grpc.MemberServiceStub(channel)  # type: ignore[no-untyped-call]
            members = [
                (
                    await register(
                        stub, "phone", phone, profile=pb.Profile(name=f"会员{n}", birthday=f"1980-01-0{n + 1}")
                    )
                ).member_id
                for n, phone in enumerate(phones)
            ]
    finally:
        await old.server.stop()
        await old.close()

    engine = create_engine(member_url, pool_size=2, max_overflow=0)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        codec = PersonalDataCodec(DataKeyring(member_settings(member_data_keys=f"{NEW_KEY},{OLD_KEY}").data_keys))
        report = await reseal_with_current_key(lambda: UnitOfWork(sessions), codec, batch=2)
        again = await reseal_with_current_key(lambda: UnitOfWork(sessions), codec, batch=2)
    finally:
        await engine.dispose()

    assert (report.members, report.identities, again.total) == (3, 3, 0)
    prefix = DataKeyring.prefix("k2026")
    sealed = await fetch(
        member_url, "SELECT name_sealed AS v FROM member UNION ALL SELECT value_sealed FROM member_identity"
    )
    assert all(bytes(row["v"]).startswith(prefix) for row in sealed)
    new = await start_member_app(member_settings(member_data_keys=NEW_KEY), clock)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{new.server.bound_port}") as channel:
            stub = pb_grpc.MemberServiceStub(channel)  # type: ignore[no-untyped-call]
            views = [await clear_view(stub, member_id) for member_id in members]
    finally:
        await new.server.stop()
        await new.close()
    assert [(view.contact.name, view.contact.phone, view.contact.birthday) for view in views] == [
        (f"会员{n}", phone, f"1980-01-0{n + 1}") for n, phone in enumerate(phones)
    ]
