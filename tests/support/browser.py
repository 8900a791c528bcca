"""Real Chromium for the console's browser tests: Debian's `chromium`, driven by Playwright.

Playwright's own browser downloads are never used: the tests launch the system's
``/usr/bin/chromium``. When it is missing, the set-up installs Debian's package (with
``fonts-noto-cjk``, so that the Chinese pages' screenshots show their characters) if it runs
as root with apt-get; otherwise it fails saying how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
PACKAGES = ("chromium", "fonts-noto-cjk")
HOW_TO_INSTALL = (
    "the console's browser tests need Debian's chromium at {path}: install it with "
    "`sudo apt-get install -y chromium fonts-noto-cjk` (or point CHROMIUM_PATH at a Chromium binary)"
)


def ensure_chromium() -> tuple[Path, str]:
    """The Chromium binary, installed first when missing and possible; the second value says what was done."""
    if CHROMIUM.exists():
        return CHROMIUM, "present"
    apt_get = shutil.which("apt-get")
    if os.geteuid() != 0 or apt_get is None:
        raise RuntimeError(HOW_TO_INSTALL.format(path=CHROMIUM))
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt_get, "update", "-qq"], [apt_get, "install", "-y", "-qq", *PACKAGES]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=1800)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed:\n{result.stderr[-2000:]}\n" + HOW_TO_INSTALL.format(path=CHROMIUM)
            )
    if not CHROMIUM.exists():
        raise RuntimeError(HOW_TO_INSTALL.format(path=CHROMIUM))
    return CHROMIUM, f"installed with apt-get in {time.monotonic() - started:.0f} s"
