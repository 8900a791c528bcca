"""The documentation points at what exists: files in the repository, routes of the gateway."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.bootstrap import SERVICE_ROUTERS
from tests.support.readme_walkthrough import CHECKS, README, walkthrough_blocks

ROOT = README.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def documents() -> list[Path]:
    """Every Markdown file of the repository (hidden folders such as `.local` and `.git` left out)."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if not name.startswith(".") and name != "__pycache__"]
        found += [Path(folder) / name for name in files if name.endswith(".md")]
    return sorted(found)


def relative_references(text: str) -> list[str]:
    """Markdown link targets, and code spans naming a Markdown file, that are not URLs or anchors."""
    links = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    named_documents = re.findall(r"`([^`\s]+\.md)`", text)
    return [
        target.split("#", 1)[0]
        for target in links + named_documents
        if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")
    ]


def gateway_paths(text: str) -> list[tuple[str | None, str]]:
    """Each `/v1/…` path the text names, with the HTTP method written before it (if any)."""
    # A path starts a word, a code span, a quoted URL or follows `$GATEWAY` (not `proto/retail/<context>/v1/`).
    starts = r"(?:(?<=^)|(?<=[\s`\"'(])|(?<=\$GATEWAY))"
    found = re.findall(rf"(?:\b({'|'.join(METHODS)})\s+`?)?{starts}(/v1/[^\s`\"'?)<>,;…]+)", text, flags=re.MULTILINE)
    return [(method or None, path.rstrip(".:")) for method, path in found]


@cache
def gateway_routes() -> dict[str, set[str]]:
    """Every route of the gateway with all its backends configured: path template → methods."""
    app = create_app(max_request_body_bytes=1024, routers=list(SERVICE_ROUTERS.values()))
    return {path: {method.upper() for method in operations} for path, operations in app.openapi()["paths"].items()}


def routes_matching(path: str) -> set[str]:
    """The methods of the routes a documented path names: a template (`/v1/stock/{sku}`; a
    parameter may go by another name, `{id}`) must be one; a concrete path
    (`/v1/stock/SKU00109`, `/v1/members/$MEMBER_ID`) must fit one."""
    methods: set[str] = set()
    for template, template_methods in gateway_routes().items():
        if "{" in path:
            matches = re.sub(r"\{[^/}]+\}", "{}", template) == re.sub(r"\{[^/}]+\}", "{}", path)
        else:
            matches = re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path) is not None
        if matches:
            methods |= template_methods
    return methods


@pytest.mark.parametrize("document", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_of_a_document_names_a_file_in_the_repository(document: Path) -> None:
    broken = []
    for target in relative_references(document.read_text()):
        resolved = (document.parent / target).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)

    assert broken == [], f"{document.relative_to(ROOT)} points at what the repository does not hold"


def test_the_readme_and_the_architecture_are_among_the_documents_checked() -> None:
    assert {README, ARCHITECTURE} <= set(documents())
    assert "docs/architecture.md" in relative_references(README.read_text())


@pytest.mark.parametrize("document", [ARCHITECTURE, README], ids=lambda path: path.name)
def test_every_gateway_path_a_document_names_is_a_route_of_the_gateway(document: Path) -> None:
    named = gateway_paths(document.read_text())
    unknown = [(method, path) for method, path in named if not routes_matching(path)]
    wrong_method = [(method, path) for method, path in named if method and method not in routes_matching(path)]

    assert unknown == [], f"{document.name} names paths the gateway does not serve"
    assert wrong_method == [], f"{document.name} names a method the route does not take"


def test_the_architecture_names_the_routes_of_its_main_flows() -> None:
    named = {path for _, path in gateway_paths(ARCHITECTURE.read_text())}

    main_flows = {"/v1/auth/token", "/v1/pos/sales/batch", "/v1/pos/price-book", "/v1/reservations"}
    main_flows |= {"/v1/stock/{sku}", "/v1/members/resolve", "/v1/price-changes", "/v1/transfers"}

    assert main_flows <= named


def test_the_readme_walkthrough_has_one_check_per_block() -> None:
    blocks = walkthrough_blocks(README.read_text())

    assert len(blocks) == len(CHECKS), "the README's walk-through and the CHECKS of its test must change together"
    assert all("curl" in block for block in blocks[1:]), "every block after the set-up calls the gateway"
