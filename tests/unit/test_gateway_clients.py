"""Client registrations: binding rules and secret hashing (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain.clients import (
    ClientKind,
    ClientRegistration,
    InvalidClientRegistration,
    StaffRole,
    hash_client_secret,
    verify_client_secret,
)

SECRET = "s3cret-for-unit-tests-only"
HASH = hash_client_secret(SECRET)


def registration(kind: ClientKind, **bindings: Any) -> ClientRegistration:
    return ClientRegistration(
        client_id="client-1", kind=kind, display_name="Client", secret_hash=HASH, scopes=frozenset(), **bindings
    )


@pytest.mark.parametrize(
    ("kind", "bindings"),
    [
        (ClientKind.APP, {}),
        (ClientKind.POS_TERMINAL, {"store_id": "S001", "terminal_id": "T01"}),
        (ClientKind.SUPPLIER_USER, {"supplier_id": "SUP-7"}),
        (ClientKind.STAFF, {"staff_role": StaffRole.STORE_GUIDE, "store_id": "S001"}),
        (ClientKind.STAFF, {"staff_role": StaffRole.STORE_MANAGER, "store_id": "S001"}),
        (ClientKind.STAFF, {"staff_role": StaffRole.HEADQUARTERS}),
    ],
)
def test_each_kind_of_client_can_be_registered_with_its_own_bindings(
    kind: ClientKind, bindings: dict[str, Any]
) -> None:
    assert registration(kind, **bindings).kind is kind


@pytest.mark.parametrize(
    ("kind", "bindings", "complaint"),
    [
        (ClientKind.POS_TERMINAL, {"store_id": "S001"}, "needs a terminal_id"),
        (ClientKind.POS_TERMINAL, {"terminal_id": "T01"}, "needs a store_id"),
        (ClientKind.SUPPLIER_USER, {}, "needs a supplier_id"),
        (ClientKind.SUPPLIER_USER, {"supplier_id": "SUP-7", "store_id": "S001"}, "store_id must be empty"),
        (ClientKind.STAFF, {"store_id": "S001"}, "staff need a staff_role"),
        (ClientKind.STAFF, {"staff_role": StaffRole.STORE_MANAGER}, "needs a store_id"),
        (ClientKind.STAFF, {"staff_role": StaffRole.HEADQUARTERS, "store_id": "S001"}, "store_id must be empty"),
        (ClientKind.APP, {"supplier_id": "SUP-7"}, "only a supplier_user has one"),
        (ClientKind.APP, {"staff_role": StaffRole.HEADQUARTERS}, "only staff have one"),
    ],
)
def test_bindings_that_do_not_fit_the_kind_are_refused(
    kind: ClientKind, bindings: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidClientRegistration, match=complaint):
        registration(kind, **bindings)


def test_a_plaintext_secret_is_never_accepted_as_the_hash() -> None:
    with pytest.raises(InvalidClientRegistration, match="secret_hash must be an scrypt hash"):
        ClientRegistration(client_id="client-1", kind=ClientKind.APP, display_name="App", secret_hash=SECRET)


def test_malformed_scopes_are_refused() -> None:
    with pytest.raises(InvalidClientRegistration, match="malformed scopes"):
        ClientRegistration(
            client_id="client-1", kind=ClientKind.APP, display_name="App", secret_hash=HASH, scopes=frozenset({"A B"})
        )


def test_the_secret_hash_verifies_the_secret_and_nothing_else() -> None:
    assert HASH.startswith("scrypt$16384$8$1$")
    assert SECRET not in HASH
    assert verify_client_secret(SECRET, HASH)
    assert not verify_client_secret(SECRET + "x", HASH)
    assert not verify_client_secret("", HASH)


def test_hashing_the_same_secret_twice_gives_different_salted_hashes() -> None:
    assert hash_client_secret(SECRET) != hash_client_secret(SECRET)


@pytest.mark.parametrize(
    "tampered",
    [
        "plaintext",
        "scrypt$16384$8$1$c2FsdA",
        "scrypt$1099511627776$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",  # would cost terabytes
        "scrypt$16384$8$1$not base64$aGFzaA",
        "bcrypt$16384$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    ],
)
def test_a_malformed_or_tampered_hash_verifies_nothing(tampered: str) -> None:
    assert not verify_client_secret(SECRET, tampered)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        hash_client_secret("short")
