"""Alerts: one finding in the feed, its handling, and who may see it.

A finding names its kind, its place (a store or location, or a supplier) and its subject
inside the place (a category and day, a SKU, a label, a statement, a terminal, a coupon).
Together they are the alert's *dedup key*: while an alert with that key is open (OPEN or
ACKNOWLEDGED) a repeated finding bumps it instead of raising another; once it is resolved, the
next finding raises a new alert.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from servicekit.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.alerts.domain.causes import Cause

MAX_NOTE = 500


class AlertKind(enum.Enum):
    SALES_ANOMALY = "sales_anomaly"
    LOW_STOCK = "low_stock"
    OVERSTOCK = "overstock"
    LABEL_SYNC_GIVEN_UP = "label_sync_given_up"
    STATEMENT_DISPUTED = "statement_disputed"
    REDEMPTION_CONFLICT = "redemption_conflict"
    TERMINAL_SILENT = "terminal_silent"


class AlertState(enum.Enum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    CRITICAL = 3


class AlertNotFound(NotFound):
    reason = "alert-not-found"


class AlertNotOpen(FailedPrecondition):
    reason = "alert-not-open"


class AlertAlreadyResolved(FailedPrecondition):
    reason = "alert-already-resolved"


class AlertVersionConflict(Conflict):
    reason = "version-conflict"


class InvalidNote(InvalidArgument):
    reason = "invalid-note"


class SuppliersHaveNoFeed(PermissionDenied):
    reason = "alerts-for-staff-only"


class HeadquartersOnly(PermissionDenied):
    reason = "headquarters-only"


def dedup_key(kind: AlertKind, store_id: str, supplier_id: str, subject: str) -> str:
    place = store_id or (f"supplier:{supplier_id}" if supplier_id else "chain")
    return f"{kind.value}|{place}|{subject}"


@dataclass(frozen=True)
class Finding:
    """What a context found, as the alerts service raises it."""

    kind: AlertKind
    severity: Severity
    store_id: str
    supplier_id: str
    subject: str
    summary: str
    facts: dict[str, str]
    link: str
    seen_at: datetime
    causes: tuple[Cause, ...] = ()

    @property
    def dedup_key(self) -> str:
        return dedup_key(self.kind, self.store_id, self.supplier_id, self.subject)


@dataclass
class Alert:
    alert_id: str
    kind: AlertKind
    severity: Severity
    state: AlertState
    store_id: str
    supplier_id: str
    subject: str
    dedup_key: str
    summary: str
    facts: dict[str, str]
    causes: list[Cause]
    link: str
    raised_at: datetime
    last_seen_at: datetime
    occurrences: int = 1
    acknowledged_by: str = ""
    acknowledged_at: datetime | None = None
    resolved_by: str = ""
    resolved_at: datetime | None = None
    resolution_note: str = ""
    version: int = 1

    @property
    def is_open(self) -> bool:
        return self.state is not AlertState.RESOLVED

    def check_version(self, expected: int) -> None:
        if expected and expected != self.version:
            raise AlertVersionConflict(
                f"the alert is at version {self.version}, not {expected}", details={"version": self.version}
            )

    def acknowledge(self, who: str, at: datetime, expected_version: int = 0) -> AlertState:
        self.check_version(expected_version)
        if self.state is not AlertState.OPEN:
            raise AlertNotOpen(f"the alert is {self.state.value}", details={"state": self.state.value})
        before, self.state = self.state, AlertState.ACKNOWLEDGED
        self.acknowledged_by, self.acknowledged_at = who, at
        self.version += 1
        return before

    def resolve(self, who: str, at: datetime, note: str, expected_version: int = 0) -> AlertState:
        self.check_version(expected_version)
        if len(note) > MAX_NOTE:
            raise InvalidNote(f"a note is at most {MAX_NOTE} characters", details={"field": "note"})
        if self.state is AlertState.RESOLVED:
            raise AlertAlreadyResolved("the alert is already resolved")
        before, self.state = self.state, AlertState.RESOLVED
        self.resolved_by, self.resolved_at, self.resolution_note = who, at, note
        self.version += 1
        return before


@dataclass(frozen=True)
class Actor:
    """Who asks, as the gateway vouched for it."""

    client_id: str
    kind: str  # app, pos_terminal, supplier_user, staff
    role: str  # store_guide, store_manager, headquarters ('' for non-staff)
    store_id: str = ""
    supplier_id: str = ""

    @property
    def headquarters(self) -> bool:
        return self.kind == "staff" and self.role == "headquarters" and not self.supplier_id and not self.store_id

    def check_reads_feed(self) -> None:
        """Staff read the feed; a supplier user or a client that is not staff has none."""
        if self.kind != "staff" or self.supplier_id:
            raise SuppliersHaveNoFeed("the operations feed is for the chain's staff")

    def store_scope(self, wanted: str) -> str:
        """The store a list is confined to: a store's staff get their own whatever they ask."""
        return self.store_id or wanted

    def sees(self, alert: Alert) -> bool:
        return not self.store_id or alert.store_id == self.store_id

    def check_headquarters(self) -> None:
        self.check_reads_feed()
        if not self.headquarters:
            raise HeadquartersOnly("webhooks are managed by headquarters")
