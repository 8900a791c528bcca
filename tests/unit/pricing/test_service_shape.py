"""The pricing service is written the one way a new service should copy (issue 12)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[3] / "services" / "pricing"
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
        str(path.relative_to(SERVICE)): lines
        for path in SERVICE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
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


def test_the_protobuf_mapping_has_one_home() -> None:
    mappers = {
        str(path.relative_to(SERVICE))
        for path in SERVICE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name.startswith(("map_", "wire_"))
    }
    assert mappers == {"entrypoints/wire.py"}
    assert not (SERVICE / "adapters" / "wire.py").exists()


def test_the_servicer_only_maps_and_calls_one_handler() -> None:
    """No RPC runs a closure in a unit of work or opens one: mutating calls go to a handler."""
    tree = ast.parse((SERVICE / "entrypoints" / "grpc_api.py").read_text())
    servicer = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "PricingServicer")
    closures = [
        f"{method.name}.{inner.name}"
        for method in servicer.body
        if isinstance(method, ast.AsyncFunctionDef)
        for inner in ast.walk(method)
        if inner is not method and isinstance(inner, ast.AsyncFunctionDef | ast.FunctionDef)
    ]
    assert closures == []
    names = {node.id for node in ast.walk(servicer) if isinstance(node, ast.Name)}
    attributes = {node.attr for node in ast.walk(servicer) if isinstance(node, ast.Attribute)}
    assert not ({"UnitOfWork", "run_request_once", "run_once"} & (names | attributes))
    assert "_uow" not in attributes


def test_a_type_ignore_names_why() -> None:
    """A ``type: ignore`` stays only where a third-party stub is wrong, with the reason beside it."""
    tests = SERVICE.parents[1] / "tests"
    folders = [
        SERVICE,
        tests / "unit" / "pricing",
        tests / "integration" / "pricing",
        tests / "integration" / "pricing_esl",
    ]
    unexplained = [
        f"{path}:{number}"
        for folder in folders
        for path in folder.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"#\s*type:\s*ignore\[[^\]]*\]\s*$", line)
    ]
    assert unexplained == []
