"""The chain's locations as inventory knows them: stores, warehouses and online fulfilment points."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """An active location and the sales channels it serves (``kind``: store, warehouse or online)."""

    location_id: str
    name: str
    kind: str
    city: str
    channels: tuple[str, ...]
