"""The Checkov gate's bookkeeping: written exceptions, what they excuse, and image pinning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tools import k8s_scan, pin_image
from tools.k8s_scan import Finding, OverlayScan, ScanError, judge, load_exceptions
from tools.k8s_validate import K8S_ROOT

DIGEST = "sha256:" + "5e" * 32


def scan(overlay: str, *findings: tuple[str, str]) -> OverlayScan:
    return OverlayScan(
        overlay, {"passed": 10, "failed": len(findings)}, [Finding(overlay, c, "", r) for c, r in findings]
    )


def test_the_committed_exceptions_each_carry_a_check_id_and_a_reason() -> None:
    exceptions = load_exceptions()
    assert exceptions
    assert all(e.check.startswith(("CKV_K8S_", "CKV2_K8S_")) and len(e.reason) >= 20 for e in exceptions)
    # Production accepts nothing for good: each of its exceptions is lifted by the release.
    assert all(e.until_release for e in exceptions if "prod" in e.overlays)


def test_a_finding_without_a_written_exception_fails_and_one_with_it_passes() -> None:
    exceptions = load_exceptions()
    verdict = judge(
        [
            scan("prod", ("CKV_K8S_43", "Deployment.retail.gateway"), ("CKV2_K8S_6", "Deployment.retail.gateway")),
            scan("dev", ("CKV_K8S_43", "StatefulSet.retail.nats")),
        ],
        exceptions,
        release=False,
        all_overlays=False,
    )
    assert [(f.overlay, f.check) for f in verdict.unexcepted] == [("prod", "CKV2_K8S_6")]
    assert {(f.overlay, f.check) for f, _ in verdict.excepted} == {("prod", "CKV_K8S_43"), ("dev", "CKV_K8S_43")}


def test_the_release_refuses_the_until_release_exceptions() -> None:
    findings = scan("prod", ("CKV_K8S_43", "StatefulSet.retail.nats"), ("CKV_K8S_15", "Job.retail.supply-migrate"))
    verdict = judge([findings], load_exceptions(), release=True, all_overlays=False)
    assert [f.resource for f in verdict.unexcepted] == ["StatefulSet.retail.nats", "Job.retail.supply-migrate"]


def test_an_exception_that_excuses_nothing_any_more_fails(tmp_path: Path) -> None:
    path = tmp_path / "exceptions.yaml"
    path.write_text(
        "exceptions:\n"
        "  - {check: CKV_K8S_43, overlays: [dev], resources: ['*'], reason: tags in dev are rebuilt per commit}\n"
        "  - {check: CKV_K8S_40, overlays: [dev], resources: ['*'], reason: a low UID that has since been fixed}\n"
    )
    verdict = judge(
        [scan("dev", ("CKV_K8S_43", "Deployment.retail.x"))], load_exceptions(path), release=False, all_overlays=True
    )
    assert [e.check for e in verdict.stale] == ["CKV_K8S_40"]
    assert verdict.unexcepted == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{check: CKV_K8S_43, overlays: [dev], resources: ['*']}", "a reason of a sentence or more is required"),
        ("{check: CKV_AWS_1, overlays: [dev], resources: ['*'], reason: xxxxxxxxxxxxxxxxxxxxxxxx}", "not a Checkov"),
        ("{check: CKV_K8S_43, overlays: [], resources: ['*'], reason: xxxxxxxxxxxxxxxxxxxxxxxx}", "non-empty lists"),
        ("{check: CKV_K8S_43, overlay: [dev], resources: ['*'], reason: xxxxxxxxxxxxxxxxxxxxxxx}", "unknown field"),
    ],
)
def test_a_malformed_exception_is_refused(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "exceptions.yaml"
    path.write_text(f"exceptions:\n  - {entry}\n")
    with pytest.raises(ScanError, match=message):
        load_exceptions(path)


def test_checkov_missing_is_reported_with_the_target_that_installs_it(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="run `make lint-venv`"):
        k8s_scan.checkov_report(tmp_path / "no-checkov", tmp_path / "x.yaml")


def test_pinning_writes_the_digest_into_the_entry_and_kustomize_renders_it(tmp_path: Path) -> None:
    overlay = tmp_path / "deploy" / "overlays" / "prod"
    # A copy of the real tree, so the overlay's relative bases resolve.
    shutil.copytree(K8S_ROOT, tmp_path / "deploy", dirs_exist_ok=True)
    kustomization = overlay / "kustomization.yaml"
    original = kustomization.read_text()
    pinned = pin_image.pin(original, "retail-platform", DIGEST)
    assert pin_image.pin(pinned, "retail-platform", DIGEST) == pinned  # pinning again changes nothing
    kustomization.write_text(pin_image.pin(pinned, "nats", DIGEST))
    images = pin_image.rendered_images(overlay)
    assert images == {f"registry.example.com/retail/platform:0.1.0@{DIGEST}", f"nats:2.15.1-alpine@{DIGEST}"}
    assert [line for line in original.splitlines() if line.lstrip().startswith("#")] == [
        line for line in pinned.splitlines() if line.lstrip().startswith("#")
    ]


def test_pinning_refuses_what_is_not_a_registry_digest_and_an_unknown_image(tmp_path: Path) -> None:
    text = (K8S_ROOT / "overlays" / "prod" / "kustomization.yaml").read_text()
    with pytest.raises(pin_image.PinError, match="is not a sha256 digest"):
        pin_image.pin(text, "retail-platform", "sha256:abc")
    with pytest.raises(pin_image.PinError, match="no entry named 'postgres'"):
        pin_image.pin(text, "postgres", DIGEST)
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps({"containerimage.digest": DIGEST, "image.name": "registry.example.com/x"}))
    assert pin_image.digest_from_buildx_metadata(metadata) == DIGEST
    metadata.write_text(json.dumps({"containerimage.config.digest": DIGEST}))
    with pytest.raises(pin_image.PinError, match=r"no containerimage\.digest"):
        pin_image.digest_from_buildx_metadata(metadata)
