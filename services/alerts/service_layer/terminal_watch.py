"""The periodic look for silent POS terminals (TERMINAL_SILENT), one replica at a time.

A round runs in its own unit of work under a transaction-level advisory lock taken with
``pg_try_advisory_xact_lock``: when another replica holds it, this one skips the round. Each
silent terminal raises (or bumps) its alert; when every terminal of the store seen before is
silent, the alert is critical and carries the POS_NOT_SYNCING cause.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import text

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from services.alerts.adapters import projection_store
from services.alerts.domain.alerts import AlertKind, Finding, Severity
from services.alerts.domain.causes import Cause, CauseKind
from services.alerts.domain.terminals import silent_terminals
from services.alerts.service_layer.findings import Findings

LOCK = "alerts.terminal-watch"


class TerminalWatch:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        findings: Findings,
        *,
        allowed: timedelta = timedelta(minutes=60),
        clock: Clock = utc_now,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._findings = findings
        self._allowed = allowed
        self._clock = clock

    async def check(self) -> int:
        """One round: how many silent terminals were found (0 when another replica holds the round)."""
        async with self._unit_of_work() as uow:
            leader = await uow.session.execute(
                text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": LOCK}
            )
            if not leader.scalar():
                return 0
            now = self._clock()
            seen = await projection_store.terminals_seen(uow.session)
            silent = silent_terminals(seen, self._findings.hours, now, self._allowed)
            for found in silent:
                terminal = found.terminal
                minutes = round(found.silent_open_seconds / 60)
                causes: tuple[Cause, ...] = ()
                if found.whole_store:
                    causes = (
                        Cause(
                            CauseKind.POS_NOT_SYNCING,
                            1.0,
                            f"No terminal of {terminal.store_id} has sent a journal entry",
                            {"store_id": terminal.store_id},
                            terminal.last_entry_at,
                        ),
                    )
                await self._findings.raise_finding(
                    uow,
                    Finding(
                        AlertKind.TERMINAL_SILENT,
                        Severity.CRITICAL if found.whole_store else Severity.WARNING,
                        terminal.store_id,
                        "",
                        terminal.terminal_id,
                        f"Terminal {terminal.terminal_id} at {terminal.store_id} has sent no journal entry for "
                        f"{minutes} minutes of opening hours",
                        {
                            "terminal_id": terminal.terminal_id,
                            "last_entry_at": terminal.last_entry_at.isoformat(),
                            "silent_open_minutes": str(minutes),
                            "whole_store": "true" if found.whole_store else "false",
                        },
                        f"/overview?store={terminal.store_id}",
                        now,
                        causes,
                    ),
                )
            await uow.commit()
            return len(silent)
