"""End to end (SQLite and PostgreSQL): a service outside the platform's processes — a full
node, through the node's own HTTP client (``node.Platform``) and key file
(``keys.ServiceIdentity``) — calls a real ``commons serve`` with tokens it signs itself,
under a key the operator registered (``commons service-token register``); it rotates that
key twice from its own side while 4 threads call ``GET /v1/internal/log/state`` in a loop
(count-bounded), and no call fails; once the overlap window has passed, a token signed with
a copy of the first key is refused, and the key listing says ``retired``."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.e2e.test_serve import commons_env, serving
from tests.ports import free_port

from credit_commons.core.clock import SystemClock
from credit_commons.formats.jws import parse_compact
from credit_commons.keys import ACCEPTED_ALGS, ServiceIdentity
from credit_commons.node import Platform, PlatformLag, rotate_node_key

TTL = 30  # the platform's COMMONS_SERVICE_TOKEN_TTL, and the overlap window
CALLS = 600
THREADS = 4
ROTATE_AT = (150, 380)  # the calls after which the caller rotates its key
NAME = "node-e2e01"


@pytest.fixture
def platform(tmp_path: Path, backend_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **commons_env(tmp_path / "var", backend_url),
        "COMMONS_PUBLIC_URL": base,
        "COMMONS_SERVICE_TOKEN_TTL": str(TTL),
        "COMMONS_SERVICE_KEY_OVERLAP": str(TTL),
        # One address, thousands of calls: the internal group's limits are raised (they
        # are tested in test_rate_limits.py), and a request may wait long for its turn on
        # a loaded machine (this test counts failures of authentication).
        "COMMONS_RATE_LIMITS": json.dumps(
            {"internal.ip": "1000000/minute", "internal.client": "1000000/minute"}
        ),
        "COMMONS_ADMISSION_WAIT": "30",
    }
    with serving(env, port, tmp_path / "server.log", stop_wait=30):
        yield base, env


def _register(env: dict[str, str], identity: ServiceIdentity) -> dict[str, Any]:
    done = commons(
        [
            "service-token",
            "register",
            "--service",
            "node",
            "--name",
            identity.name,
            "--public-key",
            json.dumps(identity.public_jwk()),
            "--json",
        ],
        env,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _states(env: dict[str, str]) -> list[tuple[int, str]]:
    listed = commons(["service-token", "keys", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    return [
        (k["version"], k["state"]) for k in json.loads(listed.stdout)["keys"] if k["name"] == NAME
    ]


def _kid(token: str) -> str:
    kid: str = parse_compact(token, algs=ACCEPTED_ALGS).header["kid"]
    return kid


def test_a_node_rotates_its_own_key_under_load_and_no_call_fails(
    platform: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = platform
    identity = ServiceIdentity.create(tmp_path / "service-key.json", service="node", name=NAME)
    client = Platform(base, timeout=60)
    try:
        audience = client.audience()
        assert audience == base
        # Not registered yet: refused, and the node's lag reading says why.
        lag = PlatformLag(client, identity, lambda: 0, SystemClock(), ttl=TTL)
        assert lag.check()["error"] == "net.fetch_failed"
        assert _register(env, identity)["version"] == 1
        reading = lag.check()
        assert reading["error"] is None
        assert reading["platform_size"] == reading["lag"] >= 0

        shutil.copy(identity.path, tmp_path / "first-key.json")  # a copy of version 1
        first = ServiceIdentity(tmp_path / "first-key.json")
        lock = threading.Lock()
        done, failures, kids = 0, [], Counter[str]()
        rotations: list[str] = []

        def token() -> str:
            issued = identity.token(audience=audience, scopes=["log:state"], ttl=TTL)
            with lock:
                kids[_kid(issued)] += 1
            return issued

        def caller() -> None:
            nonlocal done
            while True:
                with lock:
                    if done >= CALLS:
                        return
                    done += 1
                    turn = done
                try:
                    state = client.log_state(token)
                    assert isinstance(state["size"], int)
                except Exception as e:
                    with lock:
                        failures.append(repr(e))
                if turn in ROTATE_AT:
                    rotations.append(rotate_node_key(client, identity, ttl=TTL))

        threads = [threading.Thread(target=caller) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(rotations) == 2
        assert set(kids) == {first.kid, *rotations}  # every version signed calls
        states = _states(env)
        assert [v for v, _ in states] == [1, 2, 3]
        assert states[-1] == (3, "signing")

        # The overlap window over: version 1 (and 2) retired; a token signed with a copy of
        # version 1 is refused, the current key's tokens are not.
        for _ in range(200):
            if [s for _, s in _states(env)] == ["retired", "retired", "signing"]:
                break
            time.sleep(0.5)
        assert [s for _, s in _states(env)] == ["retired", "retired", "signing"]
        stale = first.token(audience=audience, scopes=["log:state"], ttl=TTL)
        with httpx.Client(base_url=base, timeout=60) as http:
            refused = http.get(
                "/v1/internal/log/state", headers={"Authorization": f"Bearer {stale}"}
            )
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == "auth.service_token_invalid"
            # A retired key cannot pick a successor either.
            proof = first.rotation_proof(audience=audience)
            assert client.rotate_service_key(stale, proof) == 401
        assert client.log_state(token)["size"] >= 0
    finally:
        client.close()
    log = (tmp_path / "server.log").read_text()
    assert log.count('"service.access"') >= CALLS
    assert f'"instance": "{NAME}"' in log
    assert '"jti": "' in log
    assert identity.token(audience=audience, scopes=["log:state"], ttl=TTL) not in log
