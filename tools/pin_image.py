"""Pin an image of an overlay to a digest: write ``digest: sha256:…`` into its ``images:`` entry.

The release build runs this after pushing the platform image, with the digest the registry
returned for it, and once per third-party image with the digest its registry reports::

    python -m tools.pin_image --overlay prod retail-platform --buildx-metadata build/meta.json
    python -m tools.pin_image --overlay prod nats --digest "$(crane digest nats:2.15.1-alpine)"

``--buildx-metadata`` reads ``containerimage.digest`` from the file that
``docker buildx build --push --metadata-file FILE`` writes. The digest is never computed or
guessed here: it must come from the registry that serves the image. The entry keeps its
``newName`` and ``newTag`` (kustomize renders ``name:tag@sha256:…``, and the runtime pulls by
the digest); only the ``digest:`` line is added or replaced, so the file's comments survive.
The overlay is rendered afterwards to check that every container of that image carries it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from tools.k8s_validate import K8S_ROOT, RenderError, containers_of, pod_template, render

DIGEST: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
_ENTRY: Final = re.compile(r"^(?P<indent>\s*)- name:\s*(?P<name>\S+)\s*$")


class PinError(RuntimeError):
    """The digest or the overlay's images: list is not what this tool can pin."""


def digest_from_buildx_metadata(path: Path) -> str:
    """The pushed image's digest from `docker buildx build --metadata-file` output."""
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PinError(f"cannot read buildx metadata {path}: {exc}") from None
    digest = metadata.get("containerimage.digest") if isinstance(metadata, dict) else None
    if not isinstance(digest, str):
        raise PinError(f"{path} has no containerimage.digest (was the image pushed with --push?)")
    return digest


def pin(kustomization: str, image: str, digest: str) -> str:
    """`kustomization`'s text with the images: entry named `image` pinned to `digest`."""
    if not DIGEST.match(digest):
        raise PinError(f"{digest!r} is not a sha256 digest (sha256: and 64 lowercase hex digits)")
    lines = kustomization.splitlines(keepends=True)
    try:
        images_at = next(i for i, line in enumerate(lines) if line.rstrip() == "images:")
    except StopIteration:
        raise PinError("the kustomization has no top-level images: list") from None
    start = indent = None
    for i in range(images_at + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line.startswith((" ", "-", "#")):
            break  # the next top-level key: the images: list has ended
        match = _ENTRY.match(line)
        if match and match.group("name").strip("\"'") == image:
            start, indent = i, len(match.group("indent")) + 2
            break
    if start is None or indent is None:
        raise PinError(f"images: has no entry named {image!r}")
    end = start + 1
    while end < len(lines) and lines[end].strip() and len(lines[end]) - len(lines[end].lstrip()) >= indent:
        end += 1
    body = [line for line in lines[start + 1 : end] if not line.lstrip().startswith("digest:")]
    pinned = [*body, f"{' ' * indent}digest: {digest}\n"]
    return "".join([*lines[: start + 1], *pinned, *lines[end:]])


def rendered_images(overlay: Path) -> set[str]:
    images: set[str] = set()
    for doc in render(overlay):
        template = pod_template(doc)
        if template is not None:
            images |= {str(c.get("image", "")) for _, c in containers_of(template.get("spec") or {})}
    return images


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.pin_image", description=__doc__.splitlines()[0])
    parser.add_argument("image", help="the name in the overlay's images: list (e.g. retail-platform, nats)")
    parser.add_argument("--overlay", default="prod", help="overlay under deploy/k8s/overlays (default: prod)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--digest", help="sha256:… as the registry reports it")
    source.add_argument("--buildx-metadata", type=Path, help="the --metadata-file of `docker buildx build --push`")
    args = parser.parse_args(argv)
    overlay = K8S_ROOT / "overlays" / args.overlay
    path = overlay / "kustomization.yaml"
    try:
        digest = args.digest if args.digest else digest_from_buildx_metadata(args.buildx_metadata)
        original = path.read_text()
        path.write_text(pin(original, args.image, digest))
        pinned = {image for image in rendered_images(overlay) if image.endswith("@" + digest)}
        if not pinned:
            path.write_text(original)
            raise PinError(f"no container of overlays/{args.overlay} renders with {digest}; left unchanged")
    except (PinError, RenderError, OSError) as exc:
        print(f"pin-image: {exc}", file=sys.stderr)
        return 1
    print(f"pin-image: overlays/{args.overlay}: {', '.join(sorted(pinned))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
