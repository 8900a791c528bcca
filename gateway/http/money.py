"""Money on the gateway's HTTP face: integer fen on the wire, and the same amount as a yuan string.

The yuan string is exact (fen have no further decimals): always two decimals, a leading "-" for
negative amounts, no exponent and no grouping — 12345 fen is "123.45", -5 fen is "-0.05".
"""

from __future__ import annotations

from decimal import Decimal


def yuan_text(fen: int) -> str:
    """Whole fen as yuan with two decimals, exactly."""
    return str(Decimal(fen).scaleb(-2))
