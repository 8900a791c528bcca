"""Coupon codes: unguessable, forgiving to read, and a typo told apart from a wrong code."""

import math
from collections import Counter

import pytest

from services.marketing.domain.codes import (
    ALPHABET,
    PERSONAL_LENGTH,
    RANDOM_BITS,
    RANDOM_SYMBOLS,
    MalformedCode,
    MistypedCode,
    check_symbol,
    generic_code,
    new_personal_code,
    read_code,
)


def test_a_personal_code_carries_at_least_60_random_bits_and_reads_back_as_itself() -> None:
    assert RANDOM_BITS >= 60
    code = new_personal_code()
    assert len(code.value) == PERSONAL_LENGTH
    assert read_code(code.value) == code
    assert read_code(code.display) == code


def test_codes_are_spread_evenly_over_the_alphabet_and_never_repeat() -> None:
    codes = [new_personal_code().value for _ in range(20_000)]
    assert len(set(codes)) == len(codes)
    counts = Counter(symbol for code in codes for symbol in code[:RANDOM_SYMBOLS])
    expected = len(codes) * RANDOM_SYMBOLS / len(ALPHABET)
    chi_square = sum((counts[symbol] - expected) ** 2 / expected for symbol in ALPHABET)
    # 31 degrees of freedom: the 99.9th percentile is about 61.1.
    assert chi_square < 61.1


def test_reading_forgives_case_separators_and_look_alike_letters() -> None:
    code = new_personal_code()
    typed = code.display.lower().replace("0", "o").replace("1", "l")
    assert read_code(f"  {typed} ") == code
    assert read_code(" ".join(code.value)) == code


def test_every_single_mistyped_symbol_is_caught_as_a_typo() -> None:
    code = new_personal_code().value
    for position in range(PERSONAL_LENGTH):
        for symbol in ALPHABET:
            if symbol == code[position]:
                continue
            with pytest.raises(MistypedCode):
                read_code(code[:position] + symbol + code[position + 1 :])


def test_every_swap_of_neighbours_but_luhns_blind_spot_is_caught() -> None:
    base = "7KQ2M9XD4RTBW"
    undetected = set()
    for first in ALPHABET:
        for second in ALPHABET:
            for position in range(RANDOM_SYMBOLS - 1):
                body = base[:position] + first + second + base[position + 2 :]
                code = body + check_symbol(body)
                swapped = code[:position] + second + first + code[position + 2 :]
                if first == second:
                    continue
                try:
                    read_code(swapped)
                except MistypedCode:
                    continue
                undetected.add(frozenset((first, second)))
    assert undetected == {frozenset("0Z")}


def test_text_that_is_no_code_at_all_is_malformed() -> None:
    for text in ["", "ab", "a" * 33, "CODE!", "满100减20"]:
        with pytest.raises(MalformedCode):
            read_code(text)


def test_a_generic_code_is_read_as_generic_and_may_not_look_like_a_personal_one() -> None:
    assert read_code("spring-2027") == generic_code("SPRING-2027")
    assert not generic_code("SPRING_2027").personal
    personal_shape = new_personal_code().value
    with pytest.raises(MalformedCode):
        generic_code(personal_shape)
    with pytest.raises(MalformedCode):
        generic_code("no spaces allowed!")


def test_guessing_a_personal_code_is_hopeless() -> None:
    # One million codes issued: the chance that one random guess with a valid check symbol hits one.
    assert math.log2(2**RANDOM_BITS / 1_000_000) > 44
