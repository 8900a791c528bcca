"""The shared contracts compile, round-trip on the wire, and the committed code matches them."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from retail.common.v1 import identifiers_pb2, money_pb2, paging_pb2

from tools import protogen


@pytest.fixture
def generated_copy(tmp_path: Path) -> Path:
    """A private copy of the committed generated tree that a test may damage."""
    copy = tmp_path / "python"
    shutil.copytree(protogen.GENERATED_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_money_round_trips_as_integer_minor_units() -> None:
    price = money_pb2.Money(currency_code="CNY", minor_units=1299)

    decoded = money_pb2.Money.FromString(price.SerializeToString())

    assert decoded == price
    assert Decimal(decoded.minor_units) / 100 == Decimal("12.99")


def test_money_keeps_amounts_beyond_float_precision_exact() -> None:
    # 2**53 + 1 fen is where a double would silently round; int64 must not.
    amount = money_pb2.Money(currency_code="CNY", minor_units=2**53 + 1)

    assert money_pb2.Money.FromString(amount.SerializeToString()).minor_units == 2**53 + 1


def test_negative_money_round_trips_for_refunds() -> None:
    refund = money_pb2.Money(currency_code="CNY", minor_units=-450)

    assert money_pb2.Money.FromString(refund.SerializeToString()).minor_units == -450


def test_decimal_quantity_round_trips_digit_for_digit() -> None:
    weight = money_pb2.Decimal(value="0.375")

    decoded = money_pb2.Decimal.FromString(weight.SerializeToString())

    assert Decimal(decoded.value) == Decimal("0.375")
    assert decoded.value == "0.375"


def test_actor_of_a_pos_terminal_round_trips_with_its_store_binding() -> None:
    terminal = identifiers_pb2.Actor(
        client_id="pos-0042", client_kind=identifiers_pb2.CLIENT_KIND_POS_TERMINAL, store_id="store-sh-001"
    )

    decoded = identifiers_pb2.Actor.FromString(terminal.SerializeToString())

    assert decoded == terminal
    assert decoded.supplier_id == ""
    assert decoded.staff_role == identifiers_pb2.STAFF_ROLE_UNSPECIFIED


def test_staff_actor_carries_its_role() -> None:
    manager = identifiers_pb2.Actor(
        client_id="staff-7",
        client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
        store_id="store-sh-001",
        staff_role=identifiers_pb2.STAFF_ROLE_STORE_MANAGER,
    )

    assert identifiers_pb2.Actor.FromString(manager.SerializeToString()).staff_role == (
        identifiers_pb2.STAFF_ROLE_STORE_MANAGER
    )


def test_every_enum_starts_with_an_unspecified_zero_value() -> None:
    for enum in identifiers_pb2.DESCRIPTOR.enum_types_by_name.values():
        zero = enum.values_by_number[0]
        assert zero.name.endswith("_UNSPECIFIED"), enum.full_name


def test_paging_round_trips_the_opaque_token() -> None:
    request = paging_pb2.PageRequest(page_size=50, page_token="opaque-cursor")
    page = paging_pb2.PageInfo(next_page_token="next-cursor")

    assert paging_pb2.PageRequest.FromString(request.SerializeToString()) == request
    assert paging_pb2.PageInfo.FromString(page.SerializeToString()).next_page_token == "next-cursor"


def test_contracts_live_in_the_common_v1_package() -> None:
    for module in (money_pb2, identifiers_pb2, paging_pb2):
        assert module.DESCRIPTOR.package == "retail.common.v1"


def test_committed_generated_code_matches_the_contracts() -> None:
    assert protogen.find_drift(protogen.PROTO_ROOT, protogen.GENERATED_ROOT) == []


def test_generation_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    first = protogen.generate(protogen.PROTO_ROOT, tmp_path / "first")
    second = protogen.generate(protogen.PROTO_ROOT, tmp_path / "second")

    assert [path.relative_to(tmp_path / "first") for path in first] == [
        path.relative_to(tmp_path / "second") for path in second
    ]
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]


def test_generated_packages_are_regular_and_typed(tmp_path: Path) -> None:
    out = tmp_path / "python"

    protogen.generate(protogen.PROTO_ROOT, out)

    assert (out / "retail" / "py.typed").is_file()
    for package in ("retail", "retail/common", "retail/common/v1"):
        assert (out / package / "__init__.py").is_file(), package


def test_check_detects_an_edited_generated_file(generated_copy: Path) -> None:
    edited = generated_copy / "retail" / "common" / "v1" / "money_pb2.py"
    edited.write_text(edited.read_text() + "# edited by hand\n")

    drift = protogen.find_drift(protogen.PROTO_ROOT, generated_copy)

    assert drift == [protogen.DriftedFile("retail/common/v1/money_pb2.py", "content differs")]


def test_check_detects_a_missing_and_a_stale_generated_file(generated_copy: Path) -> None:
    (generated_copy / "retail" / "common" / "v1" / "paging_pb2.pyi").unlink()
    (generated_copy / "retail" / "common" / "v1" / "removed_pb2.py").write_text("")

    drift = protogen.find_drift(protogen.PROTO_ROOT, generated_copy)

    assert [item.path for item in drift] == ["retail/common/v1/paging_pb2.pyi", "retail/common/v1/removed_pb2.py"]


def test_check_command_fails_and_says_how_to_fix_drift(
    generated_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (generated_copy / "retail" / "common" / "v1" / "identifiers_pb2.pyi").write_text("")

    exit_code = protogen.main(["check", "--out", str(generated_copy)])

    assert exit_code == 1
    errors = capsys.readouterr().err
    assert "retail/common/v1/identifiers_pb2.pyi" in errors
    assert "run `make proto`" in errors


def test_check_ignores_bytecode_caches(generated_copy: Path) -> None:
    cache = generated_copy / "retail" / "common" / "v1" / "__pycache__"
    cache.mkdir()
    (cache / "money_pb2.cpython-311.pyc").write_bytes(b"\0")

    assert protogen.find_drift(protogen.PROTO_ROOT, generated_copy) == []


def test_generate_replaces_stale_modules_of_deleted_contracts(generated_copy: Path) -> None:
    stale = generated_copy / "retail" / "common" / "v1" / "removed_pb2.py"
    stale.write_text("")

    protogen.generate(protogen.PROTO_ROOT, generated_copy)

    assert not stale.exists()
    assert protogen.find_drift(protogen.PROTO_ROOT, generated_copy) == []


def test_generate_refuses_to_wipe_a_directory_with_files_it_did_not_write(tmp_path: Path) -> None:
    notes = tmp_path / "python" / "notes.md"
    notes.parent.mkdir()
    notes.write_text("not generated")

    with pytest.raises(protogen.ProtogenError, match="refusing to replace"):
        protogen.generate(protogen.PROTO_ROOT, tmp_path / "python")

    assert notes.read_text() == "not generated"


def test_generate_leaves_the_old_tree_alone_when_a_contract_is_broken(generated_copy: Path, tmp_path: Path) -> None:
    broken_root = tmp_path / "proto"
    shutil.copytree(protogen.PROTO_ROOT, broken_root)
    (broken_root / "retail" / "common" / "v1" / "money.proto").write_text('syntax = "proto3";\nmessage {\n')

    with pytest.raises(protogen.ProtogenError, match="protoc failed"):
        protogen.generate(broken_root, generated_copy)

    assert protogen.find_drift(protogen.PROTO_ROOT, generated_copy) == []
    assert [path.name for path in tmp_path.iterdir() if "staging" in path.name] == []


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Contracts Test", "-c", "user.email=contracts@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def contracts_repo(tmp_path: Path) -> Path:
    """A git repository whose main branch has this project's buf.yaml and contracts committed."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet", "--initial-branch=main")
    shutil.copy(protogen.REPO_ROOT / "buf.yaml", repo / "buf.yaml")
    shutil.copytree(protogen.PROTO_ROOT, repo / "proto")
    _git(repo, "add", "buf.yaml", "proto")
    _git(repo, "commit", "--quiet", "--no-verify", "-m", "contracts")
    return repo


def _narrow_minor_units_to_int32(repo: Path) -> None:
    money = repo / "proto" / "retail" / "common" / "v1" / "money.proto"
    money.write_text(money.read_text().replace("int64 minor_units", "int32 minor_units"))


def test_breaking_passes_when_main_has_no_contracts_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", "before contracts")
    shutil.copy(protogen.REPO_ROOT / "buf.yaml", repo / "buf.yaml")
    shutil.copytree(protogen.PROTO_ROOT, repo / "proto")

    assert protogen.breaking(repo) == 0
    assert "nothing to break" in capsys.readouterr().out


def test_breaking_passes_when_contracts_are_unchanged(contracts_repo: Path) -> None:
    assert protogen.breaking(contracts_repo) == 0


def test_breaking_fails_when_a_field_changes_type(contracts_repo: Path) -> None:
    _narrow_minor_units_to_int32(contracts_repo)

    assert protogen.breaking(contracts_repo) != 0


def test_breaking_compares_with_origin_main_in_a_clone_without_local_main(contracts_repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "--quiet", str(contracts_repo), str(clone))
    _git(clone, "checkout", "--quiet", "-b", "feature")
    _git(clone, "branch", "--quiet", "-D", "main")
    _narrow_minor_units_to_int32(clone)

    assert protogen.breaking(clone) != 0


def test_breaking_without_any_baseline_says_what_to_pass(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet", "--initial-branch=trunk")
    _git(repo, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", "elsewhere")

    with pytest.raises(protogen.ProtogenError, match="--against"):
        protogen.breaking(repo)
