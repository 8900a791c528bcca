"""The supply HTTP models' shared vocabulary: identifiers, quantities, rates, fen and amounts.

The models themselves are by resource, as the routes are: :mod:`~gateway.supply.supplier_schemas`
(suppliers, contracts, fees, scorecards, sell-through), :mod:`~gateway.supply.order_schemas`
(purchase orders, goods receipts, invoices) and :mod:`~gateway.supply.statement_schemas`.

Money is integer fen on the wire, as the supply service keeps it: every amount a request
carries is a ``*_fen`` integer, and every amount an answer holds is a ``*_fen`` integer
beside the same amount as a yuan string (``"12.34"``, for people). Amounts are rounded once,
per line, half up (ordered value = quantity × unit cost per line; a concession line =
revenue × (1 − commission rate)); a total is the sum of its lines' fen and never rounded
again. Quantities are decimal strings (units, or kg to the gram); rates are decimal strings
from 0 to 1 (``"0.25"`` is 25%). Dates are ``YYYY-MM-DD`` in the chain's business time zone.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field

from gateway.http.integer_types import Int64

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
QUANTITY_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,3})?$"
RATE_PATTERN = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$"
MAX_LINES = 1_000

SupplierId = Annotated[str, Path(pattern=ID_PATTERN, description="the supplier, e.g. SUP001")]
ContractId = Annotated[str, Path(pattern=ID_PATTERN, description="the contract")]
PoId = Annotated[str, Path(pattern=ID_PATTERN, description="the purchase order")]
StatementId = Annotated[str, Path(pattern=ID_PATTERN, description="the statement")]

Quantity = Annotated[
    str, Field(pattern=QUANTITY_PATTERN, description="units, or kg with up to 3 decimals", examples=["24"])
]
Rate = Annotated[str, Field(pattern=RATE_PATTERN, description="a share from 0 to 1, e.g. 0.25 for 25%")]
Fen = Annotated[Int64, Field(ge=0, le=10**15, description="whole fen (1 yuan = 100 fen), never negative")]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


class Amount(BaseModel):
    """An amount of money: whole fen, and the same as yuan for display."""

    fen: Int64 = Field(description="signed whole fen", examples=[123456])
    yuan: str = Field(description="the same amount in yuan, two decimals", examples=["1234.56"])
