"""Sales anomalies on the wire: ``SalesAnomalyDetected`` as an outbox event.

Events go to ``retail.inventory.v1.sales_anomaly_detected.<location_id>`` and belong to the
category's aggregate at the location (``category@location``), like a stock alert's level.
"""

from __future__ import annotations

import uuid

from retail.inventory.v1 import events_pb2

from servicekit.outbox import OutboxEvent
from servicekit.protowire import timestamp
from services.inventory.adapters.integration_events import SUBJECT_PREFIX
from services.inventory.domain.sales_anomalies import Direction, SalesAnomaly
from services.inventory.entrypoints.wire import map_decimal

ANOMALY_SUBJECT = f"{SUBJECT_PREFIX}.sales_anomaly_detected"
DIRECTIONS = {
    Direction.BELOW: events_pb2.SALES_ANOMALY_DIRECTION_BELOW,
    Direction.ABOVE: events_pb2.SALES_ANOMALY_DIRECTION_ABOVE,
}


def anomaly_event(anomaly: SalesAnomaly) -> OutboxEvent:
    """``SalesAnomalyDetected`` for the operations feed; its event id is the finding's stable id."""
    message = events_pb2.SalesAnomalyDetected(
        anomaly_id=anomaly.anomaly_id,
        location_id=anomaly.location_id,
        category=anomaly.category,
        business_date=anomaly.business_date.isoformat(),
        actual_units=map_decimal(anomaly.actual),
        expected_units=map_decimal(anomaly.band.expected),
        lower_units=map_decimal(anomaly.band.lower),
        upper_units=map_decimal(anomaly.band.upper),
        method=anomaly.band.method,
        direction=DIRECTIONS[anomaly.direction],
        skus=list(anomaly.skus),
        occurred_at=timestamp(anomaly.detected_at),
    )
    return OutboxEvent.of(
        f"{ANOMALY_SUBJECT}.{anomaly.location_id}",
        message,
        aggregate_id=f"{anomaly.category}@{anomaly.location_id}",
        event_id=uuid.UUID(anomaly.anomaly_id),
        occurred_at=anomaly.detected_at,
    )
