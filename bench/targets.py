"""The platform's performance targets, checked against a bench run's figures.

Each target is a ratio to a raw baseline measured in the same run (or, for the label storm,
a time bound too), so that a run on a slower or busier machine is judged as fairly as one on
a quiet one. ``make bench`` ends with this table for the benchmarks it ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """``figure`` of benchmark ``bench``, ``at_least`` or ``at_most`` the bound."""

    what: str
    bench: str
    figure: str
    baseline: str
    at_least: float | None = None
    at_most: float | None = None

    def met(self, value: float) -> bool:
        if self.at_least is not None and value < self.at_least:
            return False
        return self.at_most is None or value <= self.at_most

    @property
    def bound(self) -> str:
        return f">= {self.at_least:g}" if self.at_least is not None else f"<= {self.at_most:g}"


TARGETS = (
    Target(
        "hot-SKU reservations through the gateway",
        "reservations",
        "hot_vs_pgbench_hot_row",
        "pgbench_hot_row_tps",
        at_least=0.8,
    ),
    Target(
        "identity resolution through the gateway, 1 M members",
        "members",
        "resolve_vs_pgbench_lookup",
        "pgbench_identity_lookup_tps",
        at_least=0.15,
    ),
    Target(
        "POS sale lines end to end",
        "pos",
        "end_to_end_vs_pgbench_sale_line_apply",
        "pgbench_sale_line_apply_8_clients_per_s",
        at_least=0.6,
    ),
    Target(
        "points earned from the journal",
        "members",
        "earn_vs_pgbench_sale_earn",
        "pgbench_sale_earn_8_clients_per_s",
        at_least=0.4,
    ),
    Target(
        "20-line baskets through the gateway",
        "pricing",
        "baskets_vs_pgbench_basket_reads",
        "pgbench_basket_reads_tps",
        at_least=0.25,
    ),
    Target(
        "50,000 shelf labels: seconds until all confirmed",
        "pricing",
        "storm_all_labels_acknowledged_seconds",
        "",
        at_most=12,
    ),
    Target(
        "50,000 shelf labels: outbox relay vs raw JetStream",
        "pricing",
        "storm_relay_vs_raw_jetstream",
        "raw_jetstream_publish_per_s",
        at_least=0.7,
    ),
    Target("gateway /healthz", "http", "gateway_vs_bare_fastapi", "bare_fastapi_rps", at_least=0.7),
)


def scoreboard(results: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The lines of the targets table for the benchmarks in ``results`` (figures by benchmark)."""
    rows = []
    for target in TARGETS:
        figures = results.get(target.bench)
        if not figures or target.figure not in figures:
            continue
        value = figures[target.figure]
        baseline = f"{figures[target.baseline]:,.0f}/s" if target.baseline in figures else ""
        verdict = "met" if target.met(value) else "NOT met"
        rows.append((target.what, f"{value:,.3f}", target.bound, baseline, verdict))
    if not rows:
        return []
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
