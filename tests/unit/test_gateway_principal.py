"""Ownership rules of an authenticated client, without I/O."""

from __future__ import annotations

import pytest

from gateway.domain.clients import ClientKind, StaffRole
from gateway.http.problems import ProblemError
from gateway.security.authentication import Principal

TERMINAL = Principal("S001-POS01", ClientKind.POS_TERMINAL, frozenset(), store_id="S001", terminal_id="S001-POS01")
GUIDE = Principal("guide", ClientKind.STAFF, frozenset(), store_id="S001", staff_role=StaffRole.STORE_GUIDE)
MANAGER = Principal("manager", ClientKind.STAFF, frozenset(), store_id="S001", staff_role=StaffRole.STORE_MANAGER)
HEADQUARTERS = Principal("hq", ClientKind.STAFF, frozenset(), staff_role=StaffRole.HEADQUARTERS)
SUPPLIER = Principal("sup-user", ClientKind.SUPPLIER_USER, frozenset(), supplier_id="SUP01")
APP = Principal("app", ClientKind.APP, frozenset())


def status_of(check: object) -> int | None:
    try:
        check()  # type: ignore[operator]
    except ProblemError as problem:
        return problem.status
    return None


@pytest.mark.parametrize("principal", [TERMINAL, GUIDE, MANAGER])
def test_terminals_and_store_staff_touch_only_their_own_store(principal: Principal) -> None:
    assert status_of(lambda: principal.ensure_store("S001")) is None
    assert status_of(lambda: principal.ensure_store("S002")) == 403


def test_headquarters_and_app_back_ends_touch_any_store_and_suppliers_none() -> None:
    for principal in (HEADQUARTERS, APP):
        assert status_of(lambda principal=principal: principal.ensure_store("S002")) is None
    assert status_of(lambda: SUPPLIER.ensure_store("S001")) == 403


def test_a_supplier_sees_only_its_own_supplier_and_another_ones_existence_does_not_leak() -> None:
    assert status_of(lambda: SUPPLIER.ensure_supplier("SUP01")) is None
    assert status_of(lambda: SUPPLIER.ensure_supplier("SUP02")) == 404
    assert status_of(lambda: HEADQUARTERS.ensure_supplier("SUP02")) is None
    for principal in (TERMINAL, GUIDE, MANAGER, APP):
        assert status_of(lambda principal=principal: principal.ensure_supplier("SUP01")) == 403


def test_only_headquarters_staff_count_as_headquarters() -> None:
    assert status_of(HEADQUARTERS.ensure_headquarters) is None
    for principal in (TERMINAL, GUIDE, MANAGER, SUPPLIER, APP):
        assert status_of(principal.ensure_headquarters) == 403
