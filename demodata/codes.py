"""Check digits for the identifiers that carry one: EAN-13 barcodes and POS card numbers."""

from __future__ import annotations


def ean13_check_digit(first_twelve: str) -> str:
    """The GS1 check digit of a 12-digit EAN-13 body (weights 1, 3, 1, 3... from the left)."""
    if len(first_twelve) != 12 or not first_twelve.isdigit():
        raise ValueError(f"an EAN-13 body is 12 digits, not {first_twelve!r}")
    total = sum(int(digit) * (3 if position % 2 else 1) for position, digit in enumerate(first_twelve))
    return str((10 - total % 10) % 10)


def is_valid_ean13(barcode: str) -> bool:
    """Whether ``barcode`` is 13 digits whose last digit is the right check digit."""
    return len(barcode) == 13 and barcode.isdigit() and ean13_check_digit(barcode[:12]) == barcode[12]


def luhn_check_digit(body: str) -> str:
    """The Luhn (mod 10) check digit that makes ``body + digit`` a valid card number."""
    if not body.isdigit():
        raise ValueError(f"a card number body is digits only, not {body!r}")
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit)
        if position % 2 == 0:  # these get doubled once the check digit is appended
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def is_valid_luhn(number: str) -> bool:
    return len(number) > 1 and number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]
