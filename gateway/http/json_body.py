"""Response bodies written as FastAPI writes them: compact JSON, UTF-8 as it is.

A route that answers with a ``Response`` it built itself (an Idempotency-Key answer, stored
and replayed; a basket written straight from the pricing message) writes its JSON with
:func:`json_text`, so that the bytes are the ones FastAPI would have sent for the same body.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_text"]

# Built once: json.dumps with these options would build an encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_text(body: Any) -> str:
    """``body`` (JSON-ready: dicts, lists, strings, numbers, booleans, None) as FastAPI's JSON."""
    return _ENCODER.encode(body)
