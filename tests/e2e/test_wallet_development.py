"""Against a development instance on loopback the wallet just works (issue 14 item 5), on
SQLite and PostgreSQL: a fresh `commons serve` on a free port with default settings, and a
wallet in another shell with no COMMONS_* setting but its own file and passphrase — no
COMMONS_INSECURE_* anywhere.  Anything else stays refused, naming the setting that allows
it; a wrong transaction code is bad input (exit 3) and spends the offer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.e2e.test_serve import commons_env
from tests.e2e.test_wallet_e2e import COMMONS
from tests.factories import readiness_claims
from tests.ports import free_port

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def development(tmp_path: Path, backend_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """`commons serve --port N` with the defaults (no public URL, no insecure flag)."""
    env = commons_env(tmp_path / "var", backend_url)
    assert commons(["db", "upgrade"], env).returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*COMMONS, "serve", "--port", str(port), "--no-worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(log_path.read_text())
                time.sleep(0.1)
            yield base, env
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)


def borrower_shell(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Another shell: no COMMONS_* setting but the wallet's file and passphrase."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    env.update(
        COMMONS_WALLET_FILE=str(tmp_path / "wallet.json"),
        COMMONS_WALLET_PASSPHRASE=PASSPHRASE,
        **extra,
    )
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # The shell's command, in this process with exactly that environment
    # (tests/commons_inprocess.py); the server is a real process.
    return commons(args, env)


def offer(base: str, env: dict[str, str]) -> dict[str, Any]:
    admin = json.loads(run(env, "admin", "token", "issuer-desk", "--json").stdout)["token"]
    with httpx.Client(base_url=base, timeout=10) as http:
        person = http.post("/v1/identities", json={"profile": {"name": "Meghna"}}).json()
        made = http.post(
            "/v1/credential-offers",
            json={
                "type": "CreditReadinessCredential",
                "subject": person["identity_token"],
                "claims": readiness_claims(person["identity_token"], 700),
            },
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert made.status_code == 201, made.text
        found: dict[str, Any] = made.json()
        return found


def test_init_and_accept_offer_with_no_insecure_setting(
    development: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = development
    assert not any(k.startswith("COMMONS_INSECURE") for k in env)
    shell = borrower_shell(tmp_path)
    assert run(shell, "wallet", "init").returncode == 0
    first = offer(base, env)
    accepted = run(
        shell, "wallet", "accept-offer", first["offer_uri_by_reference"],
        "--tx-code", first["tx_code"], "--json",
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["issuer"] == base

    # A wrong transaction code: bad input (exit 3), and the offer is spent.
    second = offer(base, env)
    wrong = "000000" if second["tx_code"] != "000000" else "111111"
    refused = run(
        shell, "wallet", "accept-offer", second["offer_uri_by_reference"], "--tx-code", wrong
    )
    assert refused.returncode == 3, refused.stderr
    assert "wrong transaction code; this offer is now spent" in refused.stderr
    spent = run(
        shell, "wallet", "accept-offer", second["offer_uri_by_reference"],
        "--tx-code", second["tx_code"],
    )  # fmt: skip
    assert spent.returncode != 0
    listed = run(shell, "wallet", "list", "--json")
    assert [c["id"] for c in json.loads(listed.stdout)] == ["c1"]


@pytest.mark.parametrize(
    ("url", "env", "setting"),
    [
        ("http://192.0.2.10:8201", {}, "COMMONS_INSECURE_ALLOW_HTTP"),
        ("https://10.1.2.3", {}, "COMMONS_INSECURE_ALLOW_PRIVATE_NETWORK"),
        # In production loopback gets no allowance either.
        ("http://127.0.0.1:8201", {"COMMONS_ENV": "production"}, "COMMONS_INSECURE_ALLOW_HTTP"),
    ],
)
def test_anything_else_is_refused_naming_the_setting(
    tmp_path: Path, url: str, env: dict[str, str], setting: str
) -> None:
    shell = borrower_shell(tmp_path, **env)
    assert run(borrower_shell(tmp_path), "wallet", "init").returncode == 0
    refused = run(shell, "wallet", "register", "--url", url, "--name", "Asha")
    assert refused.returncode == 3, refused.stderr
    assert "net.url_refused" in refused.stderr
    assert setting in refused.stderr
    as_json = run(shell, "wallet", "register", "--url", url, "--name", "Asha", "--json")
    assert json.loads(as_json.stderr)["code"] == "net.url_refused"
