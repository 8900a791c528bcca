"""Integers as the wire carries them: every integer a request may hold is one of these types.

Each maps a query, path or body integer to the protobuf field it travels in, so that a value
the field cannot hold is refused with a validation problem instead of failing while the
gRPC message is built (a 500). Narrow one further where the domain needs it:
``Annotated[Int64, Query(ge=0)]``. The OpenAPI document states the wire type as the
integer's ``format`` and its bounds as ``minimum``/``maximum``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

# format → (lowest, highest) value the protobuf scalar of that name holds.
WIRE_RANGES: dict[str, tuple[int, int]] = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}


def _wire(format_name: str) -> Any:
    lowest, highest = WIRE_RANGES[format_name]
    return Field(ge=lowest, le=highest, json_schema_extra={"format": format_name})


Int32 = Annotated[int, _wire("int32")]
Int64 = Annotated[int, _wire("int64")]
UInt32 = Annotated[int, _wire("uint32")]
UInt64 = Annotated[int, _wire("uint64")]


def restore_integer_bounds(node: Any) -> None:
    """Give the integer schemas of an OpenAPI document back their exact integer bounds.

    FastAPI's document model holds ``minimum``/``maximum`` as floats, which turns 5 into 5.0
    and rounds 2**63 - 1 up to 2**63, a value the wire type cannot hold. The ``format`` says
    which wire type it is, so the bounds are made integers again and clamped into its range.
    """
    if isinstance(node, dict):
        if node.get("type") == "integer":
            lowest, highest = WIRE_RANGES.get(str(node.get("format")), (None, None))
            for name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                value = node.get(name)
                if isinstance(value, float) and value.is_integer():
                    exact = int(value)
                    if lowest is not None and highest is not None:
                        exact = min(max(exact, lowest), highest)
                    node[name] = exact
        for child in node.values():
            restore_integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            restore_integer_bounds(child)
