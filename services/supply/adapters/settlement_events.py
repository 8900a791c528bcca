"""Settlement's integration events on the SUPPLY stream: a statement's every change of state."""

from __future__ import annotations

from datetime import datetime

from retail.supply.v1 import events_pb2
from retail.supply.v1 import supply_service_pb2 as pb

from servicekit.outbox import OutboxEvent
from servicekit.protowire import timestamp
from services.supply.adapters.integration_events import money
from services.supply.adapters.statement_store import StatementRow
from services.supply.domain.statements import StatementStatus

SUBJECT = "retail.supply.v1.statement_status_changed"

STATEMENT_STATUSES = {
    StatementStatus.DRAFT: pb.STATEMENT_STATUS_DRAFT,
    StatementStatus.ISSUED: pb.STATEMENT_STATUS_ISSUED,
    StatementStatus.CONFIRMED: pb.STATEMENT_STATUS_CONFIRMED,
    StatementStatus.DISPUTED: pb.STATEMENT_STATUS_DISPUTED,
    StatementStatus.APPROVED: pb.STATEMENT_STATUS_APPROVED,
    StatementStatus.PAID: pb.STATEMENT_STATUS_PAID,
}


def statement_status_changed(before: StatementStatus, after: StatementRow, actor_id: str, at: datetime) -> OutboxEvent:
    message = events_pb2.StatementStatusChanged(
        statement_id=after.statement_id,
        supplier_id=after.supplier_id,
        contract_id=after.contract_id,
        from_status=STATEMENT_STATUSES[before],
        to_status=STATEMENT_STATUSES[after.status],
        total=money(after.total_fen),
        period_start=after.period_start.isoformat(),
        actor_id=actor_id,
        occurred_at=timestamp(at),
    )
    return OutboxEvent.of(SUBJECT, message, aggregate_id=f"statement:{after.statement_id}", occurred_at=at)
