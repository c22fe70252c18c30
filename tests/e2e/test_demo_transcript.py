"""`commons demo --port N --json` (issue 14 item 7): the platform listens on the port asked
for, the transcript carries the log's verifier key so its receipts verify offline after the
run, and the README's step list is what the demo prints."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.ports import free_port

README = Path(__file__).parents[2] / "README.md"
COMMONS = [sys.executable, "-m", "credit_commons.cli"]


def _readme_steps() -> list[str]:
    text = README.read_text()
    block = text.split("<!-- demo-steps: begin -->")[1].split("<!-- demo-steps: end -->")[0]
    return re.findall(r"^\d+\. \*\*(.+?)\*\*", block, flags=re.MULTILINE)


def _commons(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    return subprocess.run(
        [*COMMONS, *args],
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_demo_transcript_verifies_after_the_run(tmp_path: Path) -> None:
    port = free_port()
    demo = _commons(tmp_path, "demo", "--port", str(port), "--json")
    assert demo.returncode == 0, demo.stderr[-2000:]
    transcript = json.loads(demo.stdout)
    assert transcript["platform"] == f"http://127.0.0.1:{port}"

    # The README lists exactly the steps the demo printed, in order.
    printed = re.findall(r"^\[\s*(\d+)\] (.+)$", demo.stderr, flags=re.MULTILINE)
    assert [int(n) for n, _ in printed] == list(range(1, len(printed) + 1))
    assert [title for _, title in printed] == _readme_steps()
    assert [s["title"] for s in transcript["steps"]] == _readme_steps()

    # Its receipt verifies offline, after the run, with the key the transcript printed.
    vkey = transcript["log"]["vkey"]
    assert vkey.startswith(transcript["log"]["origin"] + "+")
    (receipt,) = [s["receipt"] for s in transcript["steps"] if "receipt" in s]
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    verified = _commons(tmp_path, "log", "verify-receipt", str(path), "--log-key", vkey, "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["valid"] is True
    # And only with that key.
    receipt["index"] += 1
    path.write_text(json.dumps(receipt))
    tampered = _commons(tmp_path, "log", "verify-receipt", str(path), "--log-key", vkey)
    assert tampered.returncode == 7


def test_a_port_in_use_is_one_line_and_exit_9(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = _commons(tmp_path, "demo", "--port", str(port))
    assert demo.returncode == 9
    assert demo.stderr.strip().splitlines() == [
        f"error: service.unavailable: cannot listen on 127.0.0.1:{port}: address already in use; "
        "hint: choose another --port, or leave it out for a free one"
    ]
