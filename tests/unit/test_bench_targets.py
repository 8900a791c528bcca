"""``make bench`` ends with the performance targets, each judged on the figures of that run."""

from __future__ import annotations

import re

from bench.targets import TARGETS, scoreboard


def test_each_target_is_judged_against_its_bound_and_names_its_baseline() -> None:
    results = {
        "reservations": {"hot_vs_pgbench_hot_row": 0.81, "pgbench_hot_row_tps": 2038.4},
        "pricing": {
            "baskets_vs_pgbench_basket_reads": 0.111,
            "pgbench_basket_reads_tps": 6204.0,
            "storm_all_labels_acknowledged_seconds": 12.0,
            "storm_relay_vs_raw_jetstream": 0.69,
            "raw_jetstream_publish_per_s": 3518.0,
        },
    }

    board = {line.split("  ")[0]: line for line in scoreboard(results)}

    assert board["hot-SKU reservations through the gateway"].split()[-1] == "met"
    assert "2,038/s" in board["hot-SKU reservations through the gateway"]
    assert board["20-line baskets through the gateway"].endswith("NOT met")
    assert board["50,000 shelf labels: seconds until all confirmed"].endswith(" met")  # at most 12: 12 is met
    assert board["50,000 shelf labels: outbox relay vs raw JetStream"].endswith("NOT met")
    assert len(board) == 4  # benchmarks that did not run are left out


def test_every_target_reads_a_figure_its_benchmark_prints() -> None:
    printed = {
        "reservations": "bench/reservations.py",
        "members": "bench/members.py",
        "pos": "bench/pos_ingest.py",
        "pricing": "bench/pricing.py",
        "http": "bench/http.py",
    }
    for target in TARGETS:
        source = open(printed[target.bench], encoding="utf-8").read()  # noqa: SIM115 - a small read
        assert f'"{target.figure}"' in source, target
        if target.baseline:
            # A client count may be written as the constant that sets it: pgbench_x_{CLIENTS}_clients_per_s.
            named = re.escape(target.baseline).replace("_8_", r"_(?:8|\{[A-Z_]+\})_")
            assert re.search(f'f?"{named}"', source), target
