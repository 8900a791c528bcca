"""Key rotation: re-seal personal data still sealed under an older key with the current one.

Put the new key first in ``MEMBER_DATA_KEYS`` (old ones after it, so they still open), roll
the service out, run ``python -m services.member.reencrypt`` until it reports nothing left,
then remove the old key. Rows are taken in small batches with ``SKIP LOCKED`` so a rotation
runs beside live traffic; a value re-sealed concurrently by a command is simply current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text

from servicekit.db import UnitOfWork
from services.member.adapters.personal_data import PersonalDataCodec, identity_context, profile_context

_PROFILE_FIELDS = ("name", "birthday", "address")


@dataclass
class RotationReport:
    members: int = 0
    identities: int = 0

    @property
    def total(self) -> int:
        return self.members + self.identities


async def reseal_with_current_key(
    unit_of_work: Callable[[], UnitOfWork], codec: PersonalDataCodec, *, batch: int = 500
) -> RotationReport:
    """Re-seal every stale value; returns how many rows were rewritten."""
    keyring = codec.keyring
    prefix = {"prefix": keyring.current_prefix, "length": len(keyring.current_prefix), "limit": batch}
    stale = " OR ".join(
        f"({field}_sealed IS NOT NULL AND substring({field}_sealed FROM 1 FOR :length) <> :prefix)"
        for field in _PROFILE_FIELDS
    )
    report = RotationReport()
    while True:
        async with unit_of_work() as uow:
            rows = list(
                await uow.session.execute(
                    text(
                        f"SELECT member_id, name_sealed, birthday_sealed, address_sealed FROM member WHERE {stale} "
                        "ORDER BY member_id LIMIT :limit FOR UPDATE SKIP LOCKED"
                    ),
                    prefix,
                )
            )
            for row in rows:
                values = {"id": row.member_id}
                for field in _PROFILE_FIELDS:
                    sealed = getattr(row, f"{field}_sealed")
                    context = profile_context(row.member_id, field)
                    values[field] = (
                        None if sealed is None else keyring.seal(keyring.open(bytes(sealed), context), context)
                    )
                await uow.session.execute(
                    text(
                        "UPDATE member SET name_sealed = :name, birthday_sealed = :birthday, "
                        "address_sealed = :address WHERE member_id = :id"
                    ),
                    values,
                )
            await uow.commit()
        report.members += len(rows)
        if len(rows) < batch:
            break
    while True:
        async with unit_of_work() as uow:
            rows = list(
                await uow.session.execute(
                    text(
                        "SELECT identity_hash, value_sealed FROM member_identity "
                        "WHERE substring(value_sealed FROM 1 FOR :length) <> :prefix "
                        "ORDER BY identity_hash LIMIT :limit FOR UPDATE SKIP LOCKED"
                    ),
                    prefix,
                )
            )
            for row in rows:
                context = identity_context(bytes(row.identity_hash))
                await uow.session.execute(
                    text("UPDATE member_identity SET value_sealed = :sealed WHERE identity_hash = :hash"),
                    {
                        "hash": row.identity_hash,
                        "sealed": keyring.seal(keyring.open(bytes(row.value_sealed), context), context),
                    },
                )
            await uow.commit()
        report.identities += len(rows)
        if len(rows) < batch:
            break
    return report
