"""Generate, verify and guard the Python code compiled from the contracts in ``proto/``.

The generated code under ``gen/python`` is committed, so services import it without a build
step, and CI fails when it drifts from ``proto/``. That only works if generation is
byte-for-byte reproducible, so all three jobs share one code path here instead of living as
shell lines in the Makefile:

``generate``
    Compile every ``.proto`` (sorted) with the protoc pinned through grpcio-tools, plus the
    gRPC and mypy-protobuf plugins, into a fresh tree that replaces the output directory
    whole, so a deleted contract leaves no stale module behind.
``check``
    Generate into a temporary directory and compare it with the committed tree.
``breaking``
    Run ``buf breaking`` against ``main`` (or ``origin/main`` in a clone without a local
    ``main``), passing when the baseline has no contracts yet.
"""

from __future__ import annotations

import argparse
import importlib.resources
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DESCRIPTION = "Generate, verify and guard the Python code compiled from the contracts in proto/."
REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
GENERATED_ROOT = REPO_ROOT / "gen" / "python"

# Where the contracts live inside a commit, relative to the repository root (see buf.yaml).
PROTO_DIR_IN_REPO = "proto"
BUF_CONFIG_IN_REPO = "buf.yaml"
# Baselines for `breaking`, tried in order: a fresh clone of main has a local `main`; a CI
# checkout of another branch often has only the remote-tracking one.
DEFAULT_BASELINES = ("refs/heads/main", "refs/remotes/origin/main")

# Everything protoc and this script write. Anything else found in the output directory was
# not generated, so `generate` refuses to delete it rather than lose someone's work.
GENERATED_SUFFIXES = frozenset({".py", ".pyi", ".typed", ".pyc"})
# Byte-code caches appear in the committed tree whenever tests import it; they are not output.
IGNORED_DIR_NAMES = frozenset({"__pycache__"})


class ProtogenError(Exception):
    """A problem the user must fix before the contracts can be generated or compared."""


@dataclass(frozen=True, order=True)
class DriftedFile:
    """One file where the committed generated tree differs from a fresh generation."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def _tool(name: str) -> str:
    """The executable ``name`` from this interpreter's environment, else from ``PATH``.

    The plugins and buf are installed into the project venv, which is usually not activated
    when make runs us, so the venv's scripts directory is searched first.
    """
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ProtogenError(f"{name} not found; run `make venv` to install the pinned toolchain")
    return found


def _well_known_types_root() -> Path:
    """The include directory of google/protobuf/*.proto bundled with grpcio-tools.

    Using the bundled copy keeps imports such as timestamp.proto in step with the protoc
    that grpcio-tools ships, and needs no system protobuf installation.
    """
    root = importlib.resources.files("grpc_tools").joinpath("_proto")
    if not isinstance(root, Path) or not root.is_dir():
        raise ProtogenError("grpcio-tools is installed without its bundled well-known .proto files")
    return root


def proto_sources(proto_root: Path) -> list[Path]:
    """Every .proto under ``proto_root``, sorted by relative path so protoc output is stable."""
    return sorted(proto_root.rglob("*.proto"), key=lambda path: path.relative_to(proto_root).as_posix())


def _protoc_command(proto_root: Path, out_dir: Path, sources: Sequence[Path]) -> list[str]:
    """The protoc invocation producing messages, gRPC stubs and their type stubs."""
    return [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={proto_root}",
        f"--proto_path={_well_known_types_root()}",
        f"--plugin=protoc-gen-mypy={_tool('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_tool('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        # An unused import or similar warning is a contract defect; do not let it through.
        "--fatal_warnings",
        *(str(source) for source in sources),
    ]


def _mark_packages(tree: Path) -> None:
    """Make every generated directory a regular package and declare the top ones typed.

    Regular packages (not namespace packages) let mypy and importers resolve
    ``retail.common.v1`` unambiguously; ``py.typed`` tells type checkers to trust the
    generated ``.pyi`` stubs (PEP 561).
    """
    for directory in sorted(path for path in tree.rglob("*") if path.is_dir()):
        (directory / "__init__.py").touch()
    for top_package in sorted(path for path in tree.iterdir() if path.is_dir()):
        (top_package / "py.typed").touch()


def _ensure_only_generated(out_dir: Path) -> None:
    """Refuse to wipe ``out_dir`` if it holds anything this script would not have written."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ProtogenError(f"{out_dir} is not a directory")
    foreign = [path for path in out_dir.rglob("*") if path.is_file() and path.suffix not in GENERATED_SUFFIXES]
    if foreign:
        listed = ", ".join(str(path) for path in sorted(foreign)[:5])
        raise ProtogenError(f"refusing to replace {out_dir}: it holds files that were not generated ({listed})")


def generate(proto_root: Path = PROTO_ROOT, out_dir: Path = GENERATED_ROOT) -> list[Path]:
    """Regenerate ``out_dir`` from scratch from every contract under ``proto_root``.

    Output goes to a staging directory beside ``out_dir`` first and replaces it only when
    protoc succeeded, so a broken contract never leaves a half-deleted tree behind.
    Returns the generated files, sorted.
    """
    proto_root, out_dir = proto_root.resolve(), out_dir.resolve()
    sources = proto_sources(proto_root)
    if not sources:
        raise ProtogenError(f"no .proto files under {proto_root}")
    _ensure_only_generated(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-staging-", dir=out_dir.parent))
    try:
        result = subprocess.run(
            _protoc_command(proto_root, staging, sources),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ProtogenError(f"protoc failed:\n{result.stderr.strip()}")
        _mark_packages(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return sorted(path for path in out_dir.rglob("*") if path.is_file())


def _generated_files(tree: Path) -> dict[str, Path]:
    """Files of a generated tree keyed by relative POSIX path, without byte-code caches."""
    if not tree.is_dir():
        return {}
    return {
        path.relative_to(tree).as_posix(): path
        for path in tree.rglob("*")
        if path.is_file() and path.suffix != ".pyc" and not IGNORED_DIR_NAMES.intersection(path.relative_to(tree).parts)
    }


def find_drift(proto_root: Path = PROTO_ROOT, generated_root: Path = GENERATED_ROOT) -> list[DriftedFile]:
    """Where ``generated_root`` differs from what ``generate`` would write now; empty if nowhere."""
    with tempfile.TemporaryDirectory(prefix="protogen-check-") as scratch:
        fresh_root = Path(scratch) / "python"
        generate(proto_root, fresh_root)
        fresh = _generated_files(fresh_root)
        committed = _generated_files(generated_root)
        drift = [DriftedFile(path, "missing, would be generated") for path in fresh.keys() - committed.keys()]
        drift += [DriftedFile(path, "stale, no contract generates it") for path in committed.keys() - fresh.keys()]
        drift += [
            DriftedFile(path, "content differs")
            for path in fresh.keys() & committed.keys()
            if fresh[path].read_bytes() != committed[path].read_bytes()
        ]
    return sorted(drift)


def _git(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo_root, capture_output=True, text=True, check=False)


def _resolve_commit(repo_root: Path, ref: str) -> str | None:
    """The full commit id ``ref`` names in ``repo_root``, or None if it names none."""
    result = _git(repo_root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return result.stdout.strip() if result.returncode == 0 else None


def _baseline(repo_root: Path, against: str | None) -> tuple[str, str]:
    """The ref to compare against and its commit id: ``against``, else main, else origin/main."""
    candidates = (against,) if against else DEFAULT_BASELINES
    for ref in candidates:
        commit = _resolve_commit(repo_root, ref)
        if commit:
            return ref.removeprefix("refs/heads/").removeprefix("refs/remotes/"), commit
    tried = " or ".join(candidates)
    raise ProtogenError(f"no baseline to compare the contracts with: {tried} does not exist (pass --against REF)")


def _baseline_has_contracts(repo_root: Path, commit: str) -> bool:
    """Whether ``commit`` holds a buf workspace with at least one .proto in it."""
    has_config = _git(repo_root, "cat-file", "-e", f"{commit}:{BUF_CONFIG_IN_REPO}").returncode == 0
    listed = _git(repo_root, "ls-tree", "-r", "--name-only", commit, "--", PROTO_DIR_IN_REPO)
    if listed.returncode != 0:
        raise ProtogenError(f"git ls-tree failed: {listed.stderr.strip()}")
    return has_config and any(name.endswith(".proto") for name in listed.stdout.splitlines())


def breaking(repo_root: Path = REPO_ROOT, against: str | None = None) -> int:
    """Run ``buf breaking`` on the working tree against the baseline; return buf's exit code.

    The baseline is handed to buf as a commit id inside this repository's git directory
    (``<git-dir>#format=git,ref=<sha>``) rather than as ``.git#branch=main``: that works
    the same for a local branch, a remote-tracking ``origin/main``, a shallow clone and a
    linked worktree (whose ``.git`` is a file, not a directory), and it compares exactly the
    commit inspected here. buf reads the baseline's own buf.yaml at the repository root,
    which maps the module to ``proto/``.
    """
    name, commit = _baseline(repo_root, against)
    if not _baseline_has_contracts(repo_root, commit):
        print(f"{name} ({commit[:12]}) has no contracts under {PROTO_DIR_IN_REPO}/ yet: nothing to break.")
        return 0
    common_dir = _git(repo_root, "rev-parse", "--git-common-dir")
    if common_dir.returncode != 0:
        raise ProtogenError(f"not a git repository: {repo_root}")
    git_dir = (repo_root / common_dir.stdout.strip()).resolve()
    result = subprocess.run(
        [_tool("buf"), "breaking", "--against", f"{git_dir}#format=git,ref={commit}"],
        cwd=repo_root,
        check=False,
    )
    if result.returncode == 0:
        print(f"no breaking changes against {name} ({commit[:12]}).")
    else:
        print(f"breaking changes against {name} ({commit[:12]}), or buf failed (exit {result.returncode}).")
    return result.returncode


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.protogen", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    for command, help_text in (
        ("generate", "regenerate gen/python from proto/"),
        ("check", "fail when gen/python differs from what generate would write"),
    ):
        subparser = commands.add_parser(command, help=help_text)
        subparser.add_argument("--proto-root", type=Path, default=PROTO_ROOT, help="directory of the .proto tree")
        subparser.add_argument("--out", type=Path, default=GENERATED_ROOT, help="generated Python tree")
    breaking_parser = commands.add_parser("breaking", help="buf breaking against main (or origin/main)")
    breaking_parser.add_argument("--against", help="git ref to compare with instead of main / origin/main")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    args = _parse_args(argv)
    try:
        if args.command == "generate":
            files = generate(args.proto_root, args.out)
            print(f"generated {len(files)} files into {args.out}")
            return 0
        if args.command == "check":
            drift = find_drift(args.proto_root, args.out)
            if not drift:
                print(f"{args.out} is up to date with {args.proto_root}")
                return 0
            print(f"{args.out} has drifted from {args.proto_root}:", file=sys.stderr)
            for drifted in drift:
                print(f"  {drifted}", file=sys.stderr)
            print("run `make proto` and commit the result", file=sys.stderr)
            return 1
        return breaking(REPO_ROOT, args.against)
    except ProtogenError as error:
        print(f"protogen: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
