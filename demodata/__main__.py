"""``python -m demodata``: print what the demo retailer holds, or write it as JSON lines.

python -m demodata                          # counts at demo scale
python -m demodata --scale benchmark --summary
python -m demodata --seed 7 --jsonl /tmp/demo   # one <entity>.jsonl per kind of record
python -m demodata --end-date 2026-10-31        # the history ending on a given day (default yesterday)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from demodata.export import to_json_line, write_jsonl
from demodata.model import Sale
from demodata.retailer import DEFAULT_SEED, DemoRetailer
from demodata.sales import aggregate_daily_sales
from demodata.scale import DemoScale

_SCALES = {"demo": DemoScale.demo, "benchmark": DemoScale.benchmark}


def _parse(arguments: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demodata", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--scale", choices=sorted(_SCALES), default="demo", help="size preset (default demo)")
    parser.add_argument(
        "--end-date", type=date.fromisoformat, metavar="YYYY-MM-DD", help="last day of the history (default yesterday)"
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--summary", action="store_true", help="print counts and totals (the default)")
    output.add_argument("--jsonl", type=Path, metavar="DIR", help="write one JSON-lines file per record kind into DIR")
    return parser.parse_args(arguments)


def _summary(retailer: DemoRetailer) -> None:
    started = time.perf_counter()
    receipts = lines = member_receipts = 0
    revenue = Decimal("0.00")
    for sale in retailer.iter_sales():
        receipts += 1
        lines += len(sale.lines)
        member_receipts += sale.member_id is not None
        revenue += sale.total_amount
    sales_seconds = time.perf_counter() - started
    print(f"demo retailer {retailer.chain_name}, seed {retailer.seed}")
    print(f"  history             {retailer.history_start} .. {retailer.history_end}")
    print(f"  stores              {len(retailer.stores)}")
    print(f"  warehouses          {len(retailer.warehouses)}")
    print(f"  online locations    {len(retailer.online_locations)}")
    print(f"  categories          {len(retailer.categories)}")
    print(f"  SKUs                {len(retailer.skus)}")
    print(f"  suppliers           {len(retailer.suppliers)}")
    print(f"  promotions          {len(retailer.promotions)}")
    print(f"  holidays            {len(retailer.holidays)}")
    print(f"  API clients         {len(retailer.clients)}")
    print(f"  members             {retailer.member_count}")
    print(f"  receipts            {receipts}  ({member_receipts / max(receipts, 1):.0%} by members)")
    print(f"  sale lines          {lines}")
    print(f"  revenue             ¥{revenue:,}")
    print(f"  sales generated in  {sales_seconds:.1f} s")


def _write(retailer: DemoRetailer, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    reference = {
        "locations": retailer.locations,
        "categories": retailer.categories,
        "skus": retailer.skus,
        "suppliers": retailer.suppliers,
        "promotions": retailer.promotions,
        "holidays": retailer.holidays,
        "clients": retailer.clients,
    }
    for name, records in reference.items():
        print(f"{name}: {write_jsonl(directory / f'{name}.jsonl', records)}")
    print(f"stock_levels: {write_jsonl(directory / 'stock_levels.jsonl', retailer.stock_levels())}")
    print(f"members: {write_jsonl(directory / 'members.jsonl', retailer.iter_members())}")
    receipts = 0
    with (directory / "sales.jsonl").open("w", encoding="utf-8") as sales_file:

        def written_sales() -> Iterator[Sale]:
            """Write each receipt as it passes on to the daily roll-up: one generation pass for both files."""
            nonlocal receipts
            for sale in retailer.iter_sales():
                sales_file.write(to_json_line(sale) + "\n")
                receipts += 1
                yield sale

        daily = write_jsonl(directory / "daily_sales.jsonl", aggregate_daily_sales(written_sales()))
    print(f"sales: {receipts}")
    print(f"daily_sales: {daily}")


def main(arguments: Sequence[str] | None = None) -> int:
    options = _parse(arguments)
    scale = _SCALES[options.scale]()
    if options.end_date is not None:
        scale = dataclasses.replace(scale, end_date=options.end_date)
    retailer = DemoRetailer(seed=options.seed, scale=scale)
    if options.jsonl is not None:
        _write(retailer, options.jsonl)
    else:
        _summary(retailer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
