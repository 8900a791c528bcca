"""The inventory service is written one way, the way a new service should copy it."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[3] / "services" / "inventory"
MAX_MODULE_LINES = 600


def modules(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (SERVICE / folder).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_module_is_longer_than_600_lines() -> None:
    long = {
        str(p.relative_to(SERVICE)): n
        for p in SERVICE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_the_domain_and_the_service_layer_know_no_protobuf() -> None:
    wire_imports = {
        str(path.relative_to(SERVICE)): sorted(
            name for name in imported_modules(path) if "_pb2" in name or "protobuf" in name
        )
        for path in modules("domain", "service_layer")
    }
    assert {module: names for module, names in wire_imports.items() if names} == {}


def test_a_quantity_has_one_wire_mapping() -> None:
    definitions = [
        str(path.relative_to(SERVICE))
        for path in SERVICE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name == "map_decimal"
    ]
    assert set(definitions) == {"entrypoints/wire.py"}


def test_the_servicer_opens_no_transaction_of_its_own() -> None:
    """Each RPC maps the request to a command or query and calls one handler: no closures run
    inside a unit of work, no unit of work is opened, no adapter is read, no saga is built."""
    source = (SERVICE / "entrypoints" / "grpc_api.py").read_text()
    servicer = next(
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef) and node.name == "InventoryServicer"
    )
    nested = [
        f"{method.name}.{inner.name}"
        for method in servicer.body
        if isinstance(method, ast.AsyncFunctionDef | ast.FunctionDef)
        for inner in ast.walk(method)
        if inner is not method and isinstance(inner, ast.AsyncFunctionDef | ast.FunctionDef)
    ]
    assert nested == []
    assert "adapters" not in " ".join(imported_modules(SERVICE / "entrypoints" / "grpc_api.py"))
    assert "async with" not in source
    assert "TransferSaga(" not in source
