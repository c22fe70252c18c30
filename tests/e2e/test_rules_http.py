"""End to end (SQLite and PostgreSQL): ``commons rules register --dev`` against the database
of a real ``commons serve``, then a client that knows nothing but the platform's URL fetches
the active rule set, pins it by version and hash, and verifies its token with the keys the
platform publishes; a version not in effect yet is served for pinning but not as active."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.e2e.test_serve import COMMONS, commons_env
from tests.ports import free_port

from credit_commons.core.encoding import canonical_json, sha256_hex
from credit_commons.keys import public_key_from_jwk
from credit_commons.reputation import verify_rule_set
from credit_commons.reputation.rules import rule_set_kid
from credit_commons.reputation.rules_service import dev_rule_set_document


@pytest.fixture
def platform(tmp_path: Path, backend_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**commons_env(tmp_path / "var", backend_url), "COMMONS_PUBLIC_URL": base}
    migrated = commons(["db", "upgrade"], env)
    assert migrated.returncode == 0, migrated.stderr
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*COMMONS, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield base, env
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)


def test_a_client_pins_and_verifies_the_active_rule_set(
    platform: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = platform
    with httpx.Client(base_url=base, timeout=5) as client:
        nothing = client.get("/v1/rules/active")
        assert nothing.status_code == 404
        assert nothing.headers["content-type"] == "application/problem+json"
        assert nothing.json()["code"] == "reputation.rules_unknown"

        registered = commons(["rules", "register", "--dev", "--json"], env)
        assert registered.returncode == 0, registered.stderr
        # The next version gives a week's notice: registered now, in effect later.
        later = dev_rule_set_document(
            valid_from=datetime.now(UTC) + timedelta(days=7, minutes=5), trusted_issuer=base
        )
        later.update(version=2, timeLockDays=7)
        path = tmp_path / "v2.json"
        path.write_text(json.dumps(later))
        second = commons(["rules", "register", str(path), "--json"], env)
        assert second.returncode == 0, second.stderr

        active = client.get("/v1/rules/active")
        assert active.status_code == 200
        body = active.json()
        assert (body["id"], body["version"], body["dev"]) == ("shg-rules", 1, True)
        assert body["rule_set"]["kyc"]["trustedIssuers"] == [base]
        assert sha256_hex(canonical_json(body["rule_set"])) == body["hash"]
        keys = client.get("/v1/rules/jwks").json()["keys"]
        (jwk,) = [k for k in keys if k["kid"] == rule_set_kid(body["token"])]
        verified = verify_rule_set(body["token"], public_key_from_jwk(jwk), iss=base)
        assert verified.rule_set.hash == body["hash"]
        assert verified.rule_set.document() == body["rule_set"]
        pinned = client.get("/v1/rules/shg-rules", params={"version": 1}).json()
        assert pinned == body
        newest = client.get("/v1/rules/shg-rules").json()
        assert (newest["version"], newest["dev"]) == (2, False)
        assert newest["hash"] != body["hash"]
