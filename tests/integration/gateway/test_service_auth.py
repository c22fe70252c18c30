"""Service-to-service auth through HTTP and the CLI, on SQLite and PostgreSQL (issue 21
item 2): the internal routes take a short-lived service token with the scope they declare;
an expired token, one without the scope, one naming scopes its service may not hold, one
for another audience and one signed by a retired key are refused; and rotating the service
key twice while callers hammer the routes fails no call."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.conftest import make_settings

from credit_commons.cli import main
from credit_commons.core.clock import FixedClock
from credit_commons.core.db import transaction
from credit_commons.core.encoding import b64url_decode
from credit_commons.core.settings import Settings
from credit_commons.formats.jws import sign_compact
from credit_commons.gateway.deps import platform_audience
from credit_commons.keys import (
    SERVICE_TYP,
    ServiceScopeMissing,
    ServiceTokenSource,
    issue_service_token,
    rotate_service_key,
    service_key_name,
)
from credit_commons.runtime import Runtime

STATE = "/v1/internal/log/state"
KEYS = "/v1/internal/service-keys"
CALLS = 2_000
THREADS = 8


@pytest.fixture
def settings(tmp_path: Path, backend_url: str) -> Settings:
    # One address and one token for thousands of calls a minute: the internal group's
    # limits are raised here (they are tested with every group's in test_rate_limits.py),
    # and a request may wait longer for its turn on a loaded test machine (load shedding,
    # a 503 after COMMONS_ADMISSION_WAIT, is tested in test_admission.py; this test counts
    # failures of authentication).
    return make_settings(
        tmp_path,
        database_url=backend_url,
        rate_limits={"internal.ip": "1000000/minute", "internal.client": "1000000/minute"},
        admission_wait=30.0,
    )


def _token(runtime: Runtime, service: str, *scopes: str, ttl: int = 300) -> str:
    with transaction(runtime.sessions) as session:
        return issue_service_token(
            session,
            runtime,
            service=service,
            scopes=scopes,
            audience=platform_audience(runtime),
            ttl=ttl,
        )


def _get(client: TestClient, path: str, token: str | None) -> tuple[int, dict[str, object]]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    answer = client.get(path, headers=headers)
    return answer.status_code, answer.json()


def test_a_scoped_token_reads_the_internal_routes(client: TestClient, runtime: Runtime) -> None:
    status, body = _get(client, STATE, _token(runtime, "worker", "log:state", "keys:read"))
    assert status == 200
    assert body["size"] == 0
    assert body["checkpoint_size"] is None
    status, body = _get(client, KEYS, _token(runtime, "worker", "keys:read"))
    assert status == 200
    assert [(k["service"], k["version"], k["state"]) for k in body["keys"]] == [
        ("worker", 1, "signing")
    ]


def test_no_token_or_another_kind_is_refused(client: TestClient, runtime: Runtime) -> None:
    assert _get(client, STATE, None)[0] == 401
    status, body = _get(client, STATE, "cct_not-a-service-token")
    assert (status, body["code"]) == (401, "auth.service_token_invalid")


def test_a_token_without_the_scope_is_refused(client: TestClient, runtime: Runtime) -> None:
    status, body = _get(client, KEYS, _token(runtime, "worker", "log:state"))
    assert (status, body["code"]) == (403, "auth.service_scope_missing")
    # A node may never hold keys:read: not issued, and not accepted when forged.
    with pytest.raises(ServiceScopeMissing):
        _token(runtime, "node", "keys:read")
    _token(runtime, "node", "log:state")  # makes the node's key
    with transaction(runtime.sessions) as session:
        signer = runtime.key_store.signer(session, service_key_name("node"))
    now = int(runtime.clock.now().timestamp())
    claims = {"iss": "node", "sub": "node", "aud": platform_audience(runtime), "iat": now}
    forged = sign_compact(
        {"typ": SERVICE_TYP, "kid": signer.kid},
        {**claims, "exp": now + 60, "jti": "x1", "scope": "keys:read log:state"},
        signer,
    )
    status, body = _get(client, KEYS, forged)
    assert (status, body["code"]) == (401, "auth.service_token_invalid")


def test_an_expired_token_is_refused(
    client: TestClient, runtime: Runtime, clock: FixedClock
) -> None:
    token = _token(runtime, "witness", "log:state", ttl=60)
    clock.advance(timedelta(seconds=59))
    assert _get(client, STATE, token)[0] == 200
    clock.advance(timedelta(seconds=1))
    status, body = _get(client, STATE, token)
    assert (status, body["code"], body["detail"]) == (
        401,
        "auth.service_token_invalid",
        "the service token has expired",
    )


def test_a_token_for_another_platform_is_refused(client: TestClient, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        token = issue_service_token(
            session,
            runtime,
            service="worker",
            scopes=["log:state"],
            audience="https://other.example",
            ttl=60,
        )
    status, body = _get(client, STATE, token)
    assert (status, body["detail"]) == (401, "the service token is not for this platform")


def test_a_retired_key_is_refused_after_the_overlap(
    client: TestClient, runtime: Runtime, clock: FixedClock
) -> None:
    overlap = runtime.settings.service_key_overlap
    before = _token(runtime, "console", "log:state")
    with transaction(runtime.sessions) as session:
        old = runtime.key_store.signer(session, service_key_name("console"))
        rotate_service_key(session, runtime, "console")
    # The previous version keeps verifying through the overlap window...
    assert _get(client, STATE, before)[0] == 200
    clock.advance(timedelta(seconds=overlap - 1))
    now = int(clock.now().timestamp())
    claims = {"iss": "console", "sub": "console", "aud": platform_audience(runtime)}
    late = {**claims, "iat": now, "exp": now + 60, "jti": "late", "scope": "log:state"}
    assert (
        _get(client, STATE, sign_compact({"typ": SERVICE_TYP, "kid": old.kid}, late, old))[0] == 200
    )
    # ... and not a second longer: a token the old key signs then (a leaked key) is refused.
    clock.advance(timedelta(seconds=1))
    now = int(clock.now().timestamp())
    retired = {**claims, "iat": now, "exp": now + 60, "jti": "retired", "scope": "log:state"}
    status, body = _get(
        client, STATE, sign_compact({"typ": SERVICE_TYP, "kid": old.kid}, retired, old)
    )
    assert (status, body["detail"]) == (401, "the token's key is unknown or retired")
    assert _get(client, STATE, _token(runtime, "console", "log:state"))[0] == 200
    states = _get(client, KEYS, _token(runtime, "console", "keys:read"))[1]["keys"]
    assert [(k["version"], k["state"]) for k in states] == [(1, "retired"), (2, "signing")]


def test_rotating_twice_under_load_fails_no_call(
    client: TestClient, runtime: Runtime, clock: FixedClock
) -> None:
    """``THREADS`` callers make ``CALLS`` calls in all, each through its service's token
    source (a token reused until a minute before it expires).  Time passes 30 s every 50
    calls (20 minutes in all); the worker's and the node's keys rotate at calls 600 and
    1,300, so the first versions retire (overlap 10 minutes) while the load goes on."""
    sources = {
        service: ServiceTokenSource(
            runtime.sessions,
            runtime,
            service=service,
            scopes=["log:state"],
            audience=platform_audience(runtime),
            ttl=runtime.settings.service_token_ttl,
        )
        for service in ("worker", "node")
    }
    for source in sources.values():
        source.token()  # each key made once, before the load
    lock = threading.Lock()
    done = [0]
    failures: list[tuple[int, object]] = []
    kids: set[str] = set()

    def call(n: int) -> None:
        source = sources["worker" if n % 2 else "node"]
        token = source.token()
        answer = client.get(STATE, headers={"Authorization": f"Bearer {token}"})
        with lock:
            if answer.status_code != 200:
                failures.append((answer.status_code, answer.json()))
            kids.add(json.loads(_segment(token))["kid"])
            done[0] += 1
            count = done[0]
            if count % 50 == 0:
                clock.advance(timedelta(seconds=30))
            if count in (600, 1_300):
                with transaction(runtime.sessions) as session:
                    for service in sources:
                        rotate_service_key(session, runtime, service)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(call, range(CALLS)))
    assert failures == []
    assert done[0] == CALLS
    assert len(kids) == 6  # three versions of each of two keys signed tokens that were used
    states = _get(client, KEYS, _token(runtime, "worker", "keys:read"))[1]["keys"]
    assert [(k["service"], k["version"], k["state"]) for k in states] == [
        ("node", 1, "retired"),
        ("node", 2, "verifying"),
        ("node", 3, "signing"),
        ("worker", 1, "retired"),
        ("worker", 2, "verifying"),
        ("worker", 3, "signing"),
    ]


def _segment(token: str) -> bytes:
    return b64url_decode(token.split(".", maxsplit=1)[0])


def test_the_cli_issues_rotates_and_lists(
    settings: Settings,
    runtime: Runtime,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COMMONS_DATABASE_URL", str(settings.database_url))
    assert (
        main(["service-token", "issue", "--service", "worker", "--scope", "log:state", "--json"])
        == 0
    )
    issued = json.loads(capsys.readouterr().out)
    assert issued["service"] == "worker"
    assert issued["expires_in"] == 300
    assert main(["service-token", "rotate", "--service", "worker", "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)["rotated"]
    assert [(r["service"], r["version"]) for r in rotated] == [("worker", 2)]
    assert main(["service-token", "keys", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["keys"]
    assert [(r["version"], r["state"]) for r in listed] == [(1, "verifying"), (2, "signing")]
    assert main(["service-token", "issue", "--service", "node", "--scope", "keys:read"]) != 0
