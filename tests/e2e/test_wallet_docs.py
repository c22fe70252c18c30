"""docs/wallet.md, executed: every command of its `sh` blocks runs, in the page's order, in
a borrower's shell (no COMMONS_* setting but what the page exports) against a real
`commons serve`, on SQLite and PostgreSQL.  What the page leaves to others — the issuer's
offers, the lender's consent requests and retrieval, the platform's checkpoints — the test
does just before the command that needs it; a trailing `# exit N` is the exit code the
command must end with (0 otherwise)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from tests.commons_inprocess import commons
from tests.e2e.test_wallet_consent_e2e import lender
from tests.e2e.test_wallet_e2e import cli, platform  # noqa: F401 - fixture
from tests.factories import readiness_claims

DOC = Path(__file__).resolve().parents[2] / "docs" / "wallet.md"
DOC_URL = "http://127.0.0.1:8201"


def documented_commands() -> list[tuple[str, int]]:
    """Each line of the page's `sh` blocks, with the exit code it must end with."""
    lines: list[tuple[str, int]] = []
    for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            if not line.strip():
                continue
            expected = re.search(r"#\s*exit (\d+)\s*$", line)
            lines.append((line.split("  #")[0].strip(), int(expected[1]) if expected else 0))
    return lines


class Borrower:
    """The shell the page's commands run in, and the parties around it."""

    def __init__(self, base: str, env: dict[str, str], workdir: Path) -> None:
        self.base, self.platform_env, self.workdir = base, env, workdir
        self.shell = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
        self.values: dict[str, str] = {}
        self.http = httpx.Client(base_url=base, timeout=10)
        self.admin = cli(env, "admin", "token", "issuer-desk")["token"]  # type: ignore[call-overload]
        self.lender: httpx.Client | None = None
        self.outputs: dict[str, str] = {}

    def offer(self) -> dict[str, Any]:
        identity = self.values["IDENTITY"]
        made = self.http.post(
            "/v1/credential-offers",
            json={
                "type": "CreditReadinessCredential",
                "subject": identity,
                "claims": readiness_claims(identity, 730),
            },
            headers={"Authorization": f"Bearer {self.admin}"},
        )
        assert made.status_code == 201, made.text
        found: dict[str, Any] = made.json()
        return found

    def consent_requests(self) -> None:
        self.lender, self.values["LENDER"] = lender(self.base, self.platform_env)
        for name in ("CONSENT", "SECOND", "THIRD"):
            made = self.lender.post(
                "/v1/consents",
                json={
                    "template": "loan_underwriting",
                    "borrower": self.values["IDENTITY"],
                    "purpose": "105",
                    "consent_expiry": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
                    "scopes": [
                        {"type": "CreditReadinessCredential", "claims": ["/income_bracket"]}
                    ],
                },
            )
            assert made.status_code == 201, made.text
            self.values[name] = made.json()["consent_id"]

    def checkpoint(self) -> None:
        cli(self.platform_env, "log", "checkpoint", "--publish")

    def before(self, line: str) -> None:
        # What others do before the borrower's next command.
        if '"$OFFER"' in line:
            offer = self.offer()
            self.values["OFFER"], self.values["TX_CODE"] = (
                offer["offer_uri_by_reference"],
                offer["tx_code"],
            )
        elif '"$SPENT_OFFER"' in line:
            self.values["SPENT_OFFER"] = self.offer()["offer_uri_by_reference"]
        elif line == "commons wallet consent list" and "CONSENT" not in self.values:
            self.consent_requests()
        elif line == "commons wallet history":
            assert self.lender is not None
            got = self.lender.get(
                "/v1/lender/credentials", params={"consent_id": self.values["SECOND"]}
            )
            assert got.status_code == 200, got.text
            self.checkpoint()
        elif line == "commons wallet receipts refresh":
            self.checkpoint()
        elif '"$EVENT"' in line:
            kept = json.loads(self.run(["commons", "wallet", "receipts", "list", "--json"]).stdout)
            self.values["EVENT"] = kept[0]["event_id"]
        elif '"$LOG_KEY"' in line:
            self.values["LOG_KEY"] = self.http.get("/v1/log/key").json()["vkey"]

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        assert argv[0] == "commons"
        # In this process, in the shell's environment and directory (a program start is a
        # second of imports; tests/commons_inprocess.py).
        return commons(argv[1:], self.shell, cwd=self.workdir)

    def execute(self, line: str, expected: int) -> str:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            self.shell[name] = shlex.split(value)[0]
            return ""
        self.before(line)
        text = line.replace(DOC_URL, self.base)
        for name, value in self.values.items():
            text = text.replace(f"${name}", value)
        assert "$" not in text, f"nothing provides a value in: {line}"
        result = self.run(shlex.split(text))
        assert result.returncode == expected, f"{line}\n{result.stdout}\n{result.stderr}"
        if line.startswith("commons wallet register"):
            found = re.search(r"idt_[A-Za-z0-9]+", result.stdout)
            assert found is not None, result.stdout
            self.values["IDENTITY"] = found[0]
        self.outputs[line] = result.stdout + result.stderr
        return result.stdout + result.stderr

    def close(self) -> None:
        self.http.close()
        if self.lender is not None:
            self.lender.close()


def test_every_example_of_the_wallet_page_runs(
    platform: tuple[str, dict[str, str]],  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    base, env = platform
    commands = documented_commands()
    assert len(commands) >= 25
    borrower = Borrower(base, env, tmp_path)
    said: list[str] = []
    try:
        for line, expected in commands:
            said.append(borrower.execute(line, expected))
    finally:
        borrower.close()
    text = "\n".join(said)
    # What the page says the commands answer.
    assert "wrong transaction code; this offer is now spent" in text
    assert re.search(r"valid: consent\.revoked evt_\S+ is leaf \d+ of", text)
    assert "receipt included" in text  # the history's receipts verified
    assert re.search(r"subject\.erased\s+included", text)
    assert (tmp_path / "my-data.json").stat().st_mode & 0o777 == 0o600
