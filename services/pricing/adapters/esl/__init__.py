"""Electronic-shelf-label stations: the contract the pricing service calls, and its adapters.

``open_station(kind, base_url, ...)`` builds an adapter; the service only relies on the
:class:`LabelStation` protocol and the value types re-exported here.
"""

from __future__ import annotations

from services.pricing.adapters.esl.base import (
    LabelContent,
    LabelPush,
    LabelStation,
    LabelStatus,
    PushResult,
    PushState,
    StationUnavailable,
    open_station,
)

__all__ = [
    "LabelContent",
    "LabelPush",
    "LabelStation",
    "LabelStatus",
    "PushResult",
    "PushState",
    "StationUnavailable",
    "open_station",
]
