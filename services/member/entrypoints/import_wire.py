"""The member import's protobuf mapping: ImportMembers requests to a command, results back.

Kept apart from ``wire`` (the rest of the member contract) only for size. A member whose
identities, profile or purchases cannot even be read becomes an :class:`UnreadableMember`,
rejected with its reason while the rest of the request imports.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from retail.common.v1 import money_pb2
from retail.member.v1 import member_service_pb2 as pb

from servicekit.errors import DomainError, InvalidArgument
from servicekit.idempotency import ReplyCodec, fingerprint, message_codec
from servicekit.protowire import from_wire, moment, to_wire
from services.member.domain.model import Profile, check_name, parse_birthday
from services.member.entrypoints.wire import map_actor, map_address, map_consents, map_gender, map_identity
from services.member.service_layer.commands import (
    ImportedLine,
    ImportedPurchase,
    ImportMembers,
    ImportResult,
    MemberToImport,
    UnreadableMember,
)

CURRENCY = "CNY"


def map_import(request: pb.ImportMembersRequest, today: date) -> ImportMembers:
    return ImportMembers(
        request=fingerprint(request),
        members=[_member(member, today) for member in request.members],
        actor=map_actor(request.actor),
    )


def _member(message: pb.ImportedMember, today: date) -> MemberToImport | UnreadableMember:
    try:
        profile = message.profile
        return MemberToImport(
            external_id=message.external_id,
            identities=[map_identity(identity) for identity in message.identities],
            profile=Profile(
                name=check_name(profile.name) if profile.name else None,
                birthday=parse_birthday(profile.birthday, today) if profile.birthday else None,
                address=map_address(profile.address) if profile.HasField("address") else None,
                gender=map_gender(profile.gender),
            ),
            preferences=dict(profile.preferences),
            consents=map_consents(message.consents),
            purchases=[_purchase(purchase, number) for number, purchase in enumerate(message.purchases, start=1)],
            store_id=message.store_id,
        )
    except DomainError as error:
        return UnreadableMember(message.external_id, error.reason, error.message)


def _amount(money: money_pb2.Money, where: str) -> int:
    if money.currency_code not in ("", CURRENCY):
        raise InvalidArgument(f"{where}: amounts are in {CURRENCY}", reason="invalid-currency")
    return money.minor_units


def _quantity(value: money_pb2.Decimal, where: str) -> Decimal:
    try:
        quantity = Decimal(value.value)
    except InvalidOperation:
        raise InvalidArgument(
            f"{where}: quantity {value.value!r} is not a decimal", reason="invalid-quantity"
        ) from None
    if not quantity.is_finite():
        raise InvalidArgument(f"{where}: quantity is not a number", reason="invalid-quantity")
    return quantity


def _purchase(message: pb.ImportedPurchase, number: int) -> ImportedPurchase:
    where = f"purchase {number}"
    if not message.HasField("occurred_at"):
        raise InvalidArgument(f"{where} has no occurred_at", reason="purchase-time-missing")
    if not message.HasField("amount"):
        raise InvalidArgument(f"{where} has no amount", reason="invalid-purchase-amount")
    return ImportedPurchase(
        occurred_at=moment(message.occurred_at),
        amount_minor=_amount(message.amount, where),
        store_id=message.store_id,
        lines=[
            ImportedLine(line.sku, _quantity(line.quantity, where), _amount(line.amount, where))
            for line in message.lines
        ],
    )


def map_import_answer(results: list[ImportResult]) -> pb.ImportMembersResponse:
    return pb.ImportMembersResponse(
        results=[
            pb.ImportResult(
                external_id=result.external_id,
                member_id=result.member_id,
                status=to_wire(pb.ImportStatus, "IMPORT_STATUS", result.status),
                reason=result.reason,
                message=result.message,
                purchases_imported=result.purchases_imported,
            )
            for result in results
        ]
    )


def map_import_answer_back(message: pb.ImportMembersResponse) -> list[ImportResult]:
    return [
        ImportResult(
            result.external_id,
            result.member_id,
            from_wire(pb.ImportStatus, "IMPORT_STATUS", result.status),
            result.reason,
            result.message,
            result.purchases_imported,
        )
        for result in message.results
    ]


# The import's answer is kept as its RPC's response: a retry reads it back and is answered the same.
IMPORT_ANSWER: ReplyCodec[list[ImportResult]] = message_codec(
    pb.ImportMembersResponse, map_import_answer, map_import_answer_back
)
