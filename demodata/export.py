"""Plain JSON for demo records: what the CLI writes and what loaders can reuse.

Money and quantities become decimal strings (never floats), dates and times ISO 8601
with their +08:00 offset, enums their string values, nested records objects.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any


@cache
def _field_names(record_type: type) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(record_type))


def to_record(value: Any) -> Any:
    """``value`` (a demo record, or anything inside one) as JSON-ready Python data."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [to_record(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: to_record(getattr(value, name)) for name in _field_names(type(value))}
    return value


def to_json_line(value: Any) -> str:
    return json.dumps(to_record(value), ensure_ascii=False, separators=(",", ":"))


def write_jsonl(path: Path, records: Iterable[Any]) -> int:
    """Write one JSON object per line, streaming; returns how many were written."""
    written = 0
    with path.open("w", encoding="utf-8") as output:
        for record in records:
            output.write(to_json_line(record))
            output.write("\n")
            written += 1
    return written
