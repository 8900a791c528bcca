"""Money on the gateway's HTTP face: integer fen on the wire, and the same amount as a yuan string.

The yuan string is exact (fen have no further decimals): always two decimals, a leading "-" for
negative amounts, no exponent and no grouping — 12345 fen is "123.45", -5 fen is "-0.05".
"""

from __future__ import annotations


def yuan_text(fen: int) -> str:
    """Whole fen as yuan with two decimals, exactly (integer arithmetic: a basket's answer has 60 of them)."""
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole}.{cents:02d}"
