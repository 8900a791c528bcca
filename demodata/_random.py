"""Seeded randomness that does not depend on generation order.

Every part of the demo data draws from its own stream, derived from the seed and a label
(``"sales", "2026-05-05", "S001"``), so a day's receipts or one member can be produced
on their own, in any order, and always come out the same. ``random.Random`` is only ever
seeded with integers (never ``hash()``), so results do not depend on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

MASK64 = (1 << 64) - 1


def mix64(value: int) -> int:
    """SplitMix64's finaliser: a cheap bijection of 64-bit integers that scatters its input."""
    z = value & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def derive_key(seed: int, *labels: object) -> int:
    """A 64-bit key for the stream named by ``labels`` (stable across processes and platforms)."""
    text = "|".join([str(seed), *(str(label) for label in labels)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def substream(seed: int, *labels: object) -> random.Random:
    """An independent generator for one named part of the data."""
    return random.Random(derive_key(seed, *labels))


def unit_interval(value: int) -> float:
    """A float in [0, 1) determined by ``value`` (53 well-mixed bits)."""
    return (mix64(value) >> 11) * (1.0 / (1 << 53))


def hashed_bytes(seed: int, *labels: object, size: int) -> bytes:
    return hashlib.blake2b("|".join([str(seed), *(str(label) for label in labels)]).encode(), digest_size=size).digest()


class FeistelPermutation:
    """A keyed bijection of ``range(half_modulus ** 2)``.

    Used to hand out unique, random-looking numbers (phone numbers, card numbers) to
    member *i* without remembering which numbers were already taken: a Feistel network
    is invertible whatever its round function, so distinct inputs give distinct outputs.
    """

    def __init__(self, half_modulus: int, round_keys: Sequence[int]) -> None:
        self._half_modulus = half_modulus
        self._round_keys = tuple(round_keys)

    @property
    def size(self) -> int:
        return self._half_modulus * self._half_modulus

    def __call__(self, value: int) -> int:
        if not 0 <= value < self.size:
            raise ValueError(f"{value} is outside the permutation's domain of {self.size}")
        left, right = divmod(value, self._half_modulus)
        for key in self._round_keys:
            left, right = right, (left + mix64(right ^ key)) % self._half_modulus
        return left * self._half_modulus + right
