"""Summarise py-spy's collapsed stacks (``BENCH_PROFILE``'s files): where a server spends its CPU.

    python -m bench.profile_summary .local/profiles/reservations-hot-gateway.txt [--top 25]

Prints the total of samples (py-spy counts only threads that were running, not idle ones),
then the functions with the largest inclusive share (the function and everything it
called) and the largest self share (samples whose innermost frame is the function). A
function is named ``file:function`` with the line numbers dropped, so a function's
samples on different lines add up; recursion is counted once per stack.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# "function (path/to/file.py:123)" — py-spy's frame; native or idle frames have no file.
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")
_SITE_PACKAGES = re.compile(r".*/(site-packages|lib/python3\.\d+)/")


def frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    file = _SITE_PACKAGES.sub("", match["file"])
    return f"{file}:{match['function']}"


def summarise(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, and samples per function inclusive and self."""
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # The first two frames are py-spy's process and thread labels.
        frames = [frame_name(frame) for frame in stack.split(";")[2:]]
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    return total, inclusive, own


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_summary", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.files:
        total, inclusive, own = summarise(path)
        print(f"== {path.name}: {total:,} samples")
        if not total:
            continue
        print("  inclusive")
        for name, count in inclusive.most_common(args.top):
            print(f"  {100 * count / total:5.1f}%  {name}")
        print("  self")
        for name, count in own.most_common(args.top):
            print(f"  {100 * count / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
