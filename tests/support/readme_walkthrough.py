"""The README's first-five-minutes walk-through as a test runs it: its blocks, how to run them, their checks.

The shell blocks between the README's ``walkthrough-begin`` and ``walkthrough-end`` markers
run in order in one bash (as a reader pastes them into one terminal), in a folder whose
``.local/stack.json`` is the stack's; each block's ``curl`` answers are then checked, so a
wrong path, a wrong field or a stale demo identifier in the README fails a test.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.marketing.demo import CAMPAIGN_NAME

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN, END = "<!-- walkthrough-begin -->", "<!-- walkthrough-end -->"
BLOCK_DONE = "@@walkthrough block done@@"
DEMO_MEMBER_PHONE = "15778321934"  # the README's demo member (M0000001 of the demo seed)


def walkthrough_blocks(readme: str) -> list[str]:
    """The fenced shell blocks between the walk-through's markers, in order."""
    assert (readme.count(BEGIN), readme.count(END)) == (1, 1), f"the README must hold {BEGIN} … {END} once"
    section = readme[readme.index(BEGIN) : readme.index(END)]
    return re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class HttpAnswer:
    """One answer as `curl -i` printed it."""

    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def http_answers(output: str) -> list[HttpAnswer]:
    """Every answer in `curl -i` output. A body printed without a final newline runs straight
    into the next status line, so answers are split at status lines, not at line starts."""
    starts = list(re.finditer(r"HTTP/[0-9.]+ ([0-9]{3})[^\r\n]*\r\n", output))
    answers = []
    for number, start in enumerate(starts):
        end = starts[number + 1].start() if number + 1 < len(starts) else len(output)
        head, _, body = output[start.end() : end].partition("\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.split("\r\n") if line)
        answers.append(HttpAnswer(int(start.group(1)), {k.lower(): v for k, v in headers.items()}, body.strip()))
    return answers


def only_answer(output: str, status: int) -> HttpAnswer:
    answers = http_answers(output)
    assert [answer.status for answer in answers] == [status], output
    return answers[0]


def check_setup(output: str) -> None:
    assert output.strip() == ""


def check_token(output: str) -> None:
    token = json.loads(output)
    assert token["token_type"] == "Bearer"
    assert token["access_token"].count(".") == 2, "not a JWT"
    assert {"stock:read", "reservations:write", "members:read"} <= set(token["scope"].split())


def check_stock(output: str) -> None:
    stock = only_answer(output, 200).json()
    assert stock["sku"] == "SKU00109"
    assert {"ONLINE01", "S001", "W01"} <= {level["location_id"] for level in stock["levels"]}
    assert Decimal(stock["total_available_to_promise"]) >= 2


def check_reservation(output: str) -> None:
    reservation = only_answer(output, 201).json()
    assert (reservation["sku"], reservation["status"]) == ("SKU00109", "active")
    assert reservation["allocations"] == [{"location_id": "ONLINE01", "quantity": "2"}]


def check_sales_batch(output: str) -> None:
    batch = only_answer(output, 200).json()
    assert (batch["accepted"], batch["duplicates"], batch["rejected"]) == (1, 0, 0), batch
    assert batch["results"][0]["sale_id"].startswith("S001-POS01-")
    assert batch["results"][0]["status"] == "accepted"


def check_price_book(output: str) -> None:
    answer = only_answer(output, 200)
    etag = re.fullmatch(r'"pb-S001-([0-9]+)"', answer.headers.get("etag", ""))
    assert etag is not None, answer.headers
    book = answer.json()
    assert (book["store_id"], book["version"]) == ("S001", int(etag.group(1)))
    assert len(book["entries"]) == 2
    assert book["next_page_token"]


def check_not_modified(output: str) -> None:
    answer = only_answer(output, 304)
    assert answer.body == ""
    assert re.fullmatch(r'"pb-S001-[0-9]+"', answer.headers.get("etag", ""))


def check_member(output: str) -> None:
    answer = only_answer(output, 200)
    member = answer.json()
    assert member["member_id"] == "M0000001"
    assert member["personal_data"] == "masked"
    assert DEMO_MEMBER_PHONE not in answer.body, "an app back end must not see the phone number in clear"


def check_marketing(output: str) -> None:
    campaigns_answer, tags_answer = http_answers(output)
    assert (campaigns_answer.status, tags_answer.status) == (200, 200), output
    (campaign,) = campaigns_answer.json()["campaigns"]
    assert (campaign["name"], campaign["status"]) == (CAMPAIGN_NAME, "running")
    progress = campaign["progress"]
    assert progress["treatment"] > 0
    assert progress["control"] > 0
    assert progress["issued"] == progress["treatment"]
    tags = tags_answer.json()
    assert tags["member_id"] == "M0000001"
    assert tags["engagement"] in ("new", "active", "at_risk", "sleeping", "lost")


# One check per README block, in the README's order.
CHECKS: list[Callable[[str], None]] = [
    check_setup,
    check_token,
    check_stock,
    check_reservation,
    check_sales_batch,
    check_price_book,
    check_not_modified,
    check_member,
    check_marketing,
]


def run_walkthrough(blocks: list[str], checkout: Path) -> list[str]:
    """Run the blocks in one strict bash in ``checkout`` (the folder holding `.local/stack.json`);
    the output of each block, in order."""
    script = "set -euo pipefail\n" + "".join(f"{block}printf '\\n%s\\n' '{BLOCK_DONE}'\n" for block in blocks)
    # Bytes, decoded here: text mode would turn the HTTP answers' CRLF into LF.
    finished = subprocess.run(["bash", "-c", script], cwd=checkout, capture_output=True, timeout=120, check=False)
    stdout, stderr = finished.stdout.decode(), finished.stderr.decode()
    outputs = stdout.split(f"\n{BLOCK_DONE}\n")
    failed = len(outputs) - 1
    assert finished.returncode == 0, (
        f"README walk-through block {failed} failed (exit {finished.returncode}):\n{blocks[failed]}"
        f"\nstdout:\n{outputs[-1]}\nstderr:\n{stderr}"
    )
    assert outputs[-1] == "", stdout
    return outputs[:-1]


def check_walkthrough(blocks: list[str], outputs: list[str]) -> None:
    """Each block's output against its check; a failure names the block and shows what it printed."""
    for number, (check, output) in enumerate(zip(CHECKS, outputs, strict=True)):
        try:
            check(output)
        except AssertionError as failure:
            raise AssertionError(f"README walk-through block {number}:\n{blocks[number]}\ngave:\n{output}") from failure
