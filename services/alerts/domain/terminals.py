"""The SALES journal's heartbeat: when a POS terminal, or a whole store, has gone quiet.

A terminal seen before is *silent* when its last journal entry is older than ``allowed`` counted
in its store's opening hours only (a terminal that sent nothing overnight is not silent). A
store's journal is silent from its last entry on; a silence longer than ``min_gap`` is kept as a
spell so that a sales anomaly of that day can point to it (the ``POS_NOT_SYNCING`` cause).
Entries count by when the gateway accepted them into the journal, not when the till rang them
up: a till that is offline for hours and then syncs was silent for those hours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.alerts.domain.opening_hours import StoreHours


@dataclass(frozen=True, slots=True)
class TerminalSeen:
    store_id: str
    terminal_id: str
    last_entry_at: datetime


@dataclass(frozen=True, slots=True)
class SilentTerminal:
    terminal: TerminalSeen
    silent_open_seconds: float
    whole_store: bool  # every terminal of the store seen before is silent


def silent_terminals(
    seen: Iterable[TerminalSeen], hours: StoreHours, now: datetime, allowed: timedelta
) -> list[SilentTerminal]:
    """The terminals silent for longer than ``allowed`` of their store's opening hours, by store and terminal."""
    terminals = sorted(seen, key=lambda t: (t.store_id, t.terminal_id))
    silent: list[tuple[TerminalSeen, float]] = []
    per_store: dict[str, int] = {}
    for terminal in terminals:
        per_store[terminal.store_id] = per_store.get(terminal.store_id, 0) + 1
        quiet = hours.open_seconds_between(terminal.store_id, terminal.last_entry_at, now)
        if quiet > allowed.total_seconds():
            silent.append((terminal, quiet))
    silent_per_store: dict[str, int] = {}
    for terminal, _ in silent:
        silent_per_store[terminal.store_id] = silent_per_store.get(terminal.store_id, 0) + 1
    return [
        SilentTerminal(terminal, quiet, silent_per_store[terminal.store_id] == per_store[terminal.store_id])
        for terminal, quiet in silent
    ]


def silence_spell(
    last_entry_at: datetime | None, entry_at: datetime, min_gap: timedelta
) -> tuple[datetime, datetime] | None:
    """The store's silence an entry ends, when it lasted at least ``min_gap`` (None otherwise)."""
    if last_entry_at is None or entry_at - last_entry_at < min_gap:
        return None
    return last_entry_at, entry_at
