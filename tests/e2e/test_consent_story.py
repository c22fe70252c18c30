"""The demo's story through the HTTP API (uvicorn on loopback), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.conftest import make_settings, migrate

from credit_commons.demo import bound_socket, run_story, serve_in_thread
from credit_commons.gateway.app import create_app
from credit_commons.ledger.receipts import verify_receipt
from credit_commons.runtime import Runtime


def test_the_whole_story(tmp_path: Path, backend_url: str) -> None:
    sock = bound_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = make_settings(tmp_path, database_url=backend_url, public_url=base)
    rt = Runtime.build(settings)
    migrate(rt.engine)
    lines: list[str] = []
    with serve_in_thread(create_app(settings, runtime=rt), sock) as url:
        transcript = run_story(rt, url, tmp_path, say=lines.append)
        vkey = httpx.get(f"{url}/v1/log/key").json()["vkey"]
    titles = [s["title"] for s in transcript.steps]
    assert titles[0] == "Issuer set up"
    assert titles[-1] == "Log audited"
    steps = {s["title"]: s for s in transcript.steps}
    retrieved = steps["Credential retrieved and verified"]
    assert retrieved["disclosed"] == ["/debt_ratio_bracket", "/income_bracket"]
    assert retrieved["status"] == "valid"
    assert steps["Out-of-scope request denied"]["status"] == 403
    assert steps["Consent revoked; retrieval denied"]["status"] == 403
    history = steps["Access history"]["entries"]
    outcomes = [(e["outcome"], e["reason"]) for e in reversed(history)]
    assert outcomes == [
        ("allowed", None),
        ("denied", "consent.scope_not_granted"),
        ("denied", "consent.revoked"),
    ]
    # Every entry's receipt carries the full event and verifies against the log key.
    assert steps["Log audited"]["leaves"] >= len(history)
    for entry in history:
        verified = verify_receipt(entry["receipt"], vkey)
        assert verified.event_checked
        assert verified.entry.type == f"access.{entry['outcome']}"
    assert any("denied" in line for line in lines)
