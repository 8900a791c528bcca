"""Access tokens, scopes, rate limits and the POS sale rules, without I/O."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.domain import sales as rules
from gateway.domain.clients import ClientKind, StaffRole
from gateway.domain.scopes import CATALOGUE, default_scopes
from gateway.domain.tokens import InvalidToken, TokenClaims, TokenSigner
from gateway.security.rate_limits import RateLimiter, retry_after_header
from gateway.settings import parse_signing_keys

NEW = ("new", b"n" * 32)
OLD = ("old", b"o" * 32)


def claims(issued_at: int = 1_000, lifetime: int = 900, **bindings: str) -> TokenClaims:
    return TokenClaims(
        "S001-POS01", "pos_terminal", frozenset({"pos:sync:read"}), issued_at, issued_at + lifetime, "jti-1", **bindings
    )


def test_a_token_verifies_to_the_claims_it_was_issued_with() -> None:
    signer = TokenSigner([NEW])
    issued = claims(store_id="S001", terminal_id="S001-POS01")
    assert signer.verify(signer.issue(issued), now=1_100) == issued


def test_new_tokens_are_signed_with_the_first_key_and_old_keys_still_verify() -> None:
    rotated = TokenSigner([NEW, OLD])
    from_before = TokenSigner([OLD]).issue(claims())
    header = json.loads(base64.urlsafe_b64decode(rotated.issue(claims()).split(".")[0] + "=="))
    assert header["kid"] == "new"
    assert rotated.verify(from_before, now=1_100).client_id == "S001-POS01"
    with pytest.raises(InvalidToken, match="unknown signing key"):
        TokenSigner([NEW]).verify(from_before, now=1_100)


@pytest.mark.parametrize("now", [1_900, 5_000])
def test_an_expired_token_is_refused(now: int) -> None:
    signer = TokenSigner([NEW])
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(signer.issue(claims()), now=now)


def test_a_token_from_the_future_is_refused() -> None:
    signer = TokenSigner([NEW])
    with pytest.raises(InvalidToken, match="future"):
        signer.verify(signer.issue(claims(issued_at=2_000)), now=1_000)


@pytest.mark.parametrize("algorithm", ["none", "None", "HS512", "RS256", None])
def test_only_hs256_is_accepted(algorithm: str | None) -> None:
    signer = TokenSigner([NEW])
    _, payload, signature = signer.issue(claims()).split(".")
    header = base64.urlsafe_b64encode(json.dumps({"alg": algorithm, "kid": "new"}).encode()).rstrip(b"=").decode()
    for forged in (f"{header}.{payload}.{signature}", f"{header}.{payload}."):
        with pytest.raises(InvalidToken, match="algorithm"):
            signer.verify(forged, now=1_100)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.", "W10.e30.AAAA", "x" * 9000])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        TokenSigner([NEW]).verify(token, now=1_100)


def test_every_kind_of_client_gets_catalogued_default_scopes() -> None:
    terminal = default_scopes(ClientKind.POS_TERMINAL)
    assert {"pos:sales:write", "pos:sync:read"} <= terminal
    assert "clients:admin" in default_scopes(ClientKind.STAFF, StaffRole.HEADQUARTERS)
    assert "clients:admin" not in default_scopes(ClientKind.STAFF, StaffRole.STORE_MANAGER)
    for kind in (ClientKind.APP, ClientKind.POS_TERMINAL, ClientKind.SUPPLIER_USER):
        assert default_scopes(kind) <= CATALOGUE.keys()
    for role in StaffRole:
        assert default_scopes(ClientKind.STAFF, role) <= CATALOGUE.keys()


def test_signing_keys_are_parsed_in_order_and_bad_ones_are_named_without_the_key() -> None:
    assert parse_signing_keys(f"a:{'x' * 32}, b:{'y' * 40}") == [("a", b"x" * 32), ("b", b"y" * 40)]
    for spec, message in [
        ("a:short", "entry 1 \\(a\\).*32"),
        ("nokid", "entry 1 must be kid:key"),
        (f"a:{'x' * 32},a:{'y' * 32}", "appears twice"),
    ]:
        with pytest.raises(ValueError, match=message) as raised:
            parse_signing_keys(spec)
        assert "x" * 32 not in str(raised.value)


def test_the_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("pos-1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("pos-1")
    assert wait == pytest.approx(0.5)
    assert retry_after_header(wait) == "1"
    assert limiter.acquire("pos-2") == 0.0  # each client has its own bucket
    now[0] = 0.5
    assert limiter.acquire("pos-1") == 0.0


# ---- sale rules ----------------------------------------------------------------------------------


def test_amounts_must_be_plain_non_negative_decimals_with_at_most_two_places() -> None:
    assert rules.check_money("12.50", "x") is None
    for bad in ("12.505", "-1", "1e3", "NaN", "1,5"):
        rejection = rules.check_money(bad, "lines.0.unit_price")
        assert rejection is not None, bad
        assert rejection.reason == "invalid-amount", bad


def test_quantities_are_positive_with_at_most_three_places() -> None:
    assert rules.check_quantity("0.455", "q") is None
    assert rules.check_quantity("0", "q") == rules.SaleRejection(
        "non-positive-quantity", "quantities are positive; a return says so by its kind", "q"
    )
    assert rules.check_quantity("-2", "q").reason == "non-positive-quantity"  # type: ignore[union-attr]
    assert rules.check_quantity("1.0001", "q").reason == "invalid-quantity"  # type: ignore[union-attr]


def test_a_line_carries_at_most_what_inventory_moves_in_one_movement() -> None:
    assert rules.check_quantity("100000", "q") is None
    assert rules.check_quantity("100000.001", "q").reason == "invalid-quantity"  # type: ignore[union-attr]
    assert rules.check_quantity("999999999999", "q").reason == "invalid-quantity"  # type: ignore[union-attr]


def test_a_sale_dated_beyond_the_tolerance_ahead_or_the_max_age_behind_is_refused() -> None:
    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    tolerance, max_age = timedelta(minutes=5), timedelta(days=90)
    assert rules.check_occurred_at(now + timedelta(minutes=4), now, tolerance, max_age) is None
    assert rules.check_occurred_at(now - timedelta(days=3), now, tolerance, max_age) is None
    assert rules.check_occurred_at(now - timedelta(days=89, hours=23), now, tolerance, max_age) is None
    ahead = rules.check_occurred_at(now + timedelta(minutes=6), now, tolerance, max_age)
    assert ahead is not None
    assert ahead.reason == "occurred-in-future"
    for long_ago in (now - timedelta(days=90, seconds=1), datetime(1970, 1, 1, tzinfo=UTC)):
        behind = rules.check_occurred_at(long_ago, now, tolerance, max_age)
        assert behind is not None
        assert (behind.reason, behind.location) == ("occurred-too-long-ago", "occurred_at")


def test_line_totals_round_half_up_to_the_fen() -> None:
    assert rules.line_total_minor(Decimal("0.455"), Decimal("39.90"), Decimal("0")) == 1815  # 18.1545
    assert rules.line_total_minor(Decimal("2"), Decimal("12.50"), Decimal("1.00")) == 2400


def test_phone_numbers_hash_the_same_however_they_are_written_and_never_appear_in_clear() -> None:
    key = b"k" * 32
    spellings = ["13800138000", "+86 138 0013 8000", "0086-138-0013-8000"]
    hashes = {rules.member_identity_hash(key, "phone", phone) for phone in spellings}
    assert len(hashes) == 1
    [digest] = hashes
    assert b"13800138000" not in digest
    assert digest != rules.member_identity_hash(key, "pos_card", "13800138000")
    assert digest != rules.member_identity_hash(b"j" * 32, "phone", "13800138000")
