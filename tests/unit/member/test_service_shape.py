"""The member service is written the one way a new service copies: protobuf mapping in one wire
module, handlers that own their unit of work, no protobuf below the entrypoints, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[3] / "services" / "member"


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def relative(path: Path) -> str:
    return str(path.relative_to(SERVICE))


def test_every_protobuf_mapping_is_a_named_map_function_of_the_wire_module() -> None:
    defined_elsewhere = sorted(
        f"{relative(path)}:{node.name}"
        for path in SERVICE.rglob("*.py")
        if relative(path) != "entrypoints/wire.py"
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.FunctionDef) and node.name.startswith("map_")
    )
    assert defined_elsewhere == []
    wire = {node.name for node in parsed(SERVICE / "entrypoints" / "wire.py").body if isinstance(node, ast.FunctionDef)}
    assert {"map_register", "map_update", "map_member", "map_entry", "map_sale", "map_kpis"} <= wire


def test_no_module_re_exports_the_wire_helpers() -> None:
    re_exports = sorted(
        f"{relative(path)}:{alias.name}"
        for path in SERVICE.rglob("*.py")
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name
    )
    assert re_exports == []


def test_no_application_class_grows_into_a_god_object() -> None:
    """Handlers are split along the context's seams (sales, points, tiers, read models, KPIs):
    none offers more than ten methods."""
    sizes = {
        f"{relative(path)}:{node.name}": len(
            [
                item
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not item.name.startswith("_")
            ]
        )
        for path in (SERVICE / "service_layer").rglob("*.py")
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.ClassDef)
    }
    assert {name: size for name, size in sizes.items() if size > 10} == {}


def test_no_module_is_longer_than_600_lines() -> None:
    lengths = {relative(path): len(path.read_text().splitlines()) for path in SERVICE.rglob("*.py")}
    assert {module: length for module, length in lengths.items() if length > 600} == {}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_domain_and_the_service_layer_know_no_protobuf() -> None:
    wire_imports = {
        relative(path): sorted(name for name in imported_modules(path) if "_pb2" in name or "protobuf" in name)
        for folder in ("domain", "service_layer")
        for path in (SERVICE / folder).rglob("*.py")
    }
    assert {module: names for module, names in wire_imports.items() if names} == {}


def test_the_servicer_runs_no_effect_of_its_own() -> None:
    """Each RPC maps its request, calls one handler and maps the answer: no closure runs in a unit
    of work, no unit of work is opened and no request-id store is used by the servicer."""
    source = (SERVICE / "entrypoints" / "grpc_api.py").read_text()
    servicer = next(
        node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ClassDef) and node.name == "MemberServicer"
    )
    nested = [
        f"{method.name}.{inner.name}"
        for method in servicer.body
        if isinstance(method, ast.AsyncFunctionDef | ast.FunctionDef)
        for inner in ast.walk(method)
        if inner is not method and isinstance(inner, ast.AsyncFunctionDef | ast.FunctionDef)
    ]
    assert nested == []
    assert "run_request_once" not in source
    assert "_uow" not in source
