"""Checkov, the standard IaC scanner, on every rendered overlay, with written exceptions.

Each overlay is rendered with ``kubectl kustomize`` (as ``tools.k8s_validate`` does) and
scanned by Checkov's Kubernetes checks. Checkov lives in its own pinned environment,
``.local/lint-venv`` (``requirements-lint.txt``, installed by ``make lint-venv``), because its
dependencies clash with the application's pins. It runs offline (``--skip-download``).

A failed check is accepted only when ``deploy/k8s/checkov-exceptions.yaml`` lists its check
id, overlay and resource with a reason; an entry that matches no finding fails too, so the
list never outlives what it excuses. ``--release`` does not honour the entries marked
``until_release`` (images by digest in production), which is the release's gate.

``python -m tools.k8s_scan [--release] [OVERLAY ...]``; the exit status is 1 when a finding
has no exception, an exception is stale or malformed, or Checkov cannot run.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml  # type: ignore[import-untyped]

from tools.k8s_validate import K8S_ROOT, REPO_ROOT, RenderError, render

CHECKOV: Final = REPO_ROOT / ".local" / "lint-venv" / "bin" / "checkov"
EXCEPTIONS: Final = K8S_ROOT / "checkov-exceptions.yaml"
_CHECK_ID: Final = re.compile(r"^CKV2?_K8S_[0-9]+$")


class ScanError(RuntimeError):
    """Checkov could not scan, or the exceptions file is malformed."""


@dataclass(frozen=True)
class WrittenException:
    """One accepted finding pattern, with its reason."""

    check: str
    overlays: tuple[str, ...]
    resources: tuple[str, ...]
    reason: str
    until_release: bool = False

    def covers(self, finding: Finding) -> bool:
        return (
            finding.check == self.check
            and finding.overlay in self.overlays
            and any(fnmatch.fnmatchcase(finding.resource, pattern) for pattern in self.resources)
        )

    @property
    def label(self) -> str:
        return f"{self.check} on {', '.join(self.resources)} in {', '.join(self.overlays)}"


@dataclass(frozen=True)
class Finding:
    overlay: str
    check: str
    name: str
    resource: str


@dataclass
class OverlayScan:
    overlay: str
    summary: Mapping[str, Any]
    findings: list[Finding] = field(default_factory=list)


def load_exceptions(path: Path = EXCEPTIONS) -> list[WrittenException]:
    """The written exceptions; every entry needs a check id, overlays, resources and a reason."""
    content = yaml.safe_load(path.read_text()) or {}
    entries = content.get("exceptions") if isinstance(content, dict) else None
    if not isinstance(entries, list):
        raise ScanError(f"{path}: expected a mapping with an `exceptions:` list")
    exceptions: list[WrittenException] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path.name} entry {number}"
        if not isinstance(entry, dict):
            raise ScanError(f"{where}: not a mapping")
        unknown = set(entry) - {"check", "overlays", "resources", "reason", "until_release"}
        if unknown:
            raise ScanError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        check, reason = str(entry.get("check", "")), str(entry.get("reason") or "").strip()
        overlays, resources = entry.get("overlays") or [], entry.get("resources") or []
        if not _CHECK_ID.match(check):
            raise ScanError(f"{where}: check {check!r} is not a Checkov Kubernetes check id (CKV_K8S_n, CKV2_K8S_n)")
        if len(reason) < 20:
            raise ScanError(f"{where} ({check}): a reason of a sentence or more is required")
        if not isinstance(overlays, list) or not overlays or not isinstance(resources, list) or not resources:
            raise ScanError(f"{where} ({check}): overlays and resources must be non-empty lists")
        exceptions.append(
            WrittenException(
                check=check,
                overlays=tuple(str(o) for o in overlays),
                resources=tuple(str(r) for r in resources),
                reason=reason,
                until_release=bool(entry.get("until_release", False)),
            )
        )
    return exceptions


def checkov_report(checkov: Path, manifest: Path) -> dict[str, Any]:
    """Checkov's JSON report on one rendered manifest file."""
    if not os.access(checkov, os.X_OK):
        raise ScanError(f"{checkov} not found; run `make lint-venv`")
    command = [
        str(checkov),
        "--framework",
        "kubernetes",
        "--file",
        str(manifest),
        "--output",
        "json",
        "--quiet",  # failed checks only in the report; the summary still counts the passed
        "--skip-download",  # offline: no policy or guideline downloads
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise ScanError(f"checkov exited {result.returncode} without a JSON report: {detail}") from None
    if isinstance(report, list):  # one report per framework when several ran
        report = next((r for r in report if r.get("check_type") == "kubernetes"), {})
    if not isinstance(report, dict) or "summary" not in report:
        raise ScanError(f"checkov's report has no summary (exit {result.returncode})")
    return report


def scan_overlay(overlay: str, checkov: Path = CHECKOV) -> OverlayScan:
    docs = render(K8S_ROOT / "overlays" / overlay)
    with tempfile.TemporaryDirectory(prefix="k8s-scan-") as folder:
        manifest = Path(folder) / f"{overlay}.yaml"
        manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        report = checkov_report(checkov, manifest)
    scan = OverlayScan(overlay, report["summary"])
    for failed in (report.get("results") or {}).get("failed_checks") or []:
        scan.findings.append(
            Finding(overlay, str(failed["check_id"]), str(failed.get("check_name", "")), str(failed["resource"]))
        )
    return scan


@dataclass
class Verdict:
    unexcepted: list[Finding] = field(default_factory=list)
    excepted: list[tuple[Finding, WrittenException]] = field(default_factory=list)
    stale: list[WrittenException] = field(default_factory=list)


def judge(
    scans: Sequence[OverlayScan], exceptions: Sequence[WrittenException], *, release: bool, all_overlays: bool
) -> Verdict:
    """Which findings are excused, which are not, and which exceptions excuse nothing."""
    honoured = [e for e in exceptions if not (release and e.until_release)]
    verdict = Verdict()
    used: set[WrittenException] = set()
    for scan in scans:
        for finding in scan.findings:
            excuse = next((e for e in honoured if e.covers(finding)), None)
            if excuse is None:
                verdict.unexcepted.append(finding)
            else:
                verdict.excepted.append((finding, excuse))
                used.add(excuse)
    scanned = {scan.overlay for scan in scans}
    if all_overlays:
        verdict.stale = [e for e in honoured if e not in used and set(e.overlays) <= scanned]
    return verdict


def overlays_present() -> list[str]:
    return sorted(path.parent.name for path in (K8S_ROOT / "overlays").glob("*/kustomization.yaml"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.k8s_scan", description=__doc__.splitlines()[0])
    parser.add_argument("overlays", nargs="*", help="overlays under deploy/k8s/overlays (default: all)")
    parser.add_argument("--release", action="store_true", help="refuse the until_release exceptions")
    parser.add_argument("--checkov", type=Path, default=CHECKOV, help=f"the checkov to run (default: {CHECKOV})")
    parser.add_argument("--exceptions", type=Path, default=EXCEPTIONS, help="the written exceptions")
    args = parser.parse_args(argv)
    overlays = args.overlays or overlays_present()
    try:
        exceptions = load_exceptions(args.exceptions)
        # One Checkov process per overlay, side by side (each spends most of its time in its own start-up).
        with ThreadPoolExecutor(max_workers=len(overlays)) as pool:
            scans = list(pool.map(lambda overlay: scan_overlay(overlay, args.checkov), overlays))
    except (ScanError, RenderError, OSError) as exc:
        print(f"checkov: {exc}", file=sys.stderr)
        return 1
    verdict = judge(scans, exceptions, release=args.release, all_overlays=not args.overlays)
    for scan in scans:
        excused = sum(1 for finding, _ in verdict.excepted if finding.overlay == scan.overlay)
        summary = scan.summary
        print(
            f"checkov {summary.get('checkov_version', '?')}: overlays/{scan.overlay:<6} "
            f"{summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed "
            f"({excused} under a written exception), {summary.get('skipped', 0)} skipped"
        )
    for finding in verdict.unexcepted:
        print(f"  FAIL overlays/{finding.overlay}: {finding.check} {finding.name} on {finding.resource}")
    for stale in verdict.stale:
        print(f"  FAIL {args.exceptions.name}: {stale.label} matches no finding any more; remove it")
    if verdict.unexcepted:
        print(f"  fix them, or add each to {args.exceptions} with its reason")
    failed = bool(verdict.unexcepted or verdict.stale)
    mode = " (release: until_release exceptions refused)" if args.release else ""
    print(f"checkov: FAILED{mode}" if failed else f"checkov: no finding without a written exception{mode}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
