"""Coupon codes: unguessable, typed by hand at a till, and a typo told apart from a wrong code.

A **personal code** (issued to one member) is 13 random symbols of Crockford's base-32
alphabet — 65 bits from the operating system's CSPRNG, so guessing one of a million issued
codes takes some 2^45 tries — followed by one check symbol, shown in groups of four or five
(``7KQ2-M9XD-4RTB-WZ``). The check symbol is Luhn mod 32 over the symbols: it catches every
single mistyped symbol and every swap of two neighbours but ``0Z`` ↔ ``Z0`` (Luhn's one
blind spot, values 0 and 31), so a till can answer "mistyped,
read it again" (:class:`MistypedCode`) instead of "no such coupon" without asking the server.

Reading a code forgives what people do: lower case, spaces and hyphens, and the letters
Crockford's alphabet leaves out because they look like digits (``O`` → ``0``, ``I``/``L`` → ``1``).

A **generic code** (one code printed on a poster, used by many up to a limit) is chosen by
the marketer: 4 to 32 letters, digits, hyphens or underscores, stored upper case. It has no
check symbol; :func:`read_code` tells the two shapes apart by the check symbol, so a
generic code must not look like a personal one (:func:`generic_code` refuses one that does).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from servicekit.errors import InvalidArgument

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_SYMBOLS = 13
RANDOM_BITS = RANDOM_SYMBOLS * 5
PERSONAL_LENGTH = RANDOM_SYMBOLS + 1
_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
# Crockford's reading rules: letters that are easily mistaken for digits mean those digits.
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s\-]+")
_GENERIC = re.compile(r"[A-Z0-9_-]{4,32}")


class MalformedCode(InvalidArgument):
    """The text cannot be a coupon code at all (wrong length or symbols)."""

    reason = "coupon-code-malformed"


class MistypedCode(InvalidArgument):
    """The text has a personal code's shape but its check symbol is wrong: a typo, not a wrong code."""

    reason = "coupon-code-mistyped"


@dataclass(frozen=True, slots=True)
class CouponCode:
    """A code in its canonical form: upper case, no separators, aliases resolved."""

    value: str
    personal: bool

    def __str__(self) -> str:
        return self.value

    @property
    def display(self) -> str:
        """How a code is printed and shown: a personal code in groups (``7KQ2-M9XD-4RTB-WZ``)."""
        if not self.personal:
            return self.value
        return "-".join(self.value[start : start + 4] for start in range(0, len(self.value), 4))


def check_symbol(symbols: str) -> str:
    """The Luhn mod 32 check symbol of ``symbols`` (every one of them in :data:`ALPHABET`)."""
    total = 0
    factor = 2
    for symbol in reversed(symbols):
        addend = factor * _VALUE[symbol]
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def new_personal_code() -> CouponCode:
    """A fresh personal code: 65 random bits and a check symbol."""
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_SYMBOLS))
    return CouponCode(symbols + check_symbol(symbols), personal=True)


def _canonical(text: str) -> str:
    return _SEPARATORS.sub("", text.strip()).upper()


def read_code(text: str) -> CouponCode:
    """The code a person or a till typed, in canonical form.

    Raises :class:`MistypedCode` for a personal code with a wrong check symbol and
    :class:`MalformedCode` for text that is no code at all.
    """
    canonical = _canonical(text)
    as_personal = canonical.translate(_ALIASES)
    if len(as_personal) == PERSONAL_LENGTH and all(symbol in _VALUE for symbol in as_personal):
        if check_symbol(as_personal[:-1]) == as_personal[-1]:
            return CouponCode(as_personal, personal=True)
        # No generic code has this shape (generic_code refuses it), so this is a typo of a personal one.
        raise MistypedCode("the coupon code's check symbol does not match: it was probably mistyped")
    if _GENERIC.fullmatch(canonical):
        return CouponCode(canonical, personal=False)
    raise MalformedCode("a coupon code is 4 to 32 letters, digits, hyphens or underscores")


def generic_code(text: str) -> CouponCode:
    """A marketer's generic code, refused when it is malformed or could be read as a personal code."""
    canonical = _canonical(text)
    if not _GENERIC.fullmatch(canonical):
        raise MalformedCode("a generic coupon code is 4 to 32 letters, digits, hyphens or underscores")
    as_personal = canonical.translate(_ALIASES)
    if len(as_personal) == PERSONAL_LENGTH and all(symbol in _VALUE for symbol in as_personal):
        raise MalformedCode(
            f"a generic coupon code may not be {PERSONAL_LENGTH} base-32 symbols: that is a personal code's shape"
        )
    return CouponCode(canonical, personal=False)
