"""The alerts context's integration events: AlertRaised and AlertStateChanged on the ALERTS stream.

Subjects are ``retail.alerts.v1.<event>.<store_id or "chain">``; an alert's events share one
aggregate (``alert:<alert_id>``), so the relay publishes them in the order they happened.
"""

from __future__ import annotations

import re
from datetime import datetime

from retail.alerts.v1 import events_pb2

from servicekit.messaging import StreamSpec
from servicekit.outbox import OutboxEvent
from servicekit.protowire import timestamp
from services.alerts.domain.alerts import Alert, AlertState
from services.alerts.entrypoints.wire import map_alert, map_state

SUBJECT_PREFIX = "retail.alerts.v1"
ALERTS_STREAM = StreamSpec(name="ALERTS", subjects=[f"{SUBJECT_PREFIX}.>"], description="Facts of the alerts context")
ALERT_RAISED = f"{SUBJECT_PREFIX}.alert_raised"
ALERT_STATE_CHANGED = f"{SUBJECT_PREFIX}.alert_state_changed"


def place_token(store_id: str) -> str:
    """The store as one subject token ("chain" for an alert without a store)."""
    return re.sub(r"[.*>\s]", "_", store_id) if store_id else "chain"


def alert_raised(alert: Alert, at: datetime) -> OutboxEvent:
    message = events_pb2.AlertRaised(alert=map_alert(alert), occurred_at=timestamp(at))
    return OutboxEvent.of(
        f"{ALERT_RAISED}.{place_token(alert.store_id)}", message, aggregate_id=f"alert:{alert.alert_id}", occurred_at=at
    )


def alert_state_changed(alert: Alert, before: AlertState, actor_id: str, at: datetime) -> OutboxEvent:
    message = events_pb2.AlertStateChanged(
        alert_id=alert.alert_id,
        store_id=alert.store_id,
        from_state=map_state(before),
        to_state=map_state(alert.state),
        actor_id=actor_id,
        occurred_at=timestamp(at),
    )
    return OutboxEvent.of(
        f"{ALERT_STATE_CHANGED}.{place_token(alert.store_id)}",
        message,
        aggregate_id=f"alert:{alert.alert_id}",
        occurred_at=at,
    )
