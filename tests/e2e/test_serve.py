"""End to end: `commons db upgrade` then `commons serve` as real processes, over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.ports import free_port

from credit_commons.core.migrate import head_revision
from credit_commons.gateway.surface_pin import SURFACE_REGISTRY_SHA256

PEPPER = "c2VjcmV0LXBlcHBlci1mb3ItdGhlLWUyZS10ZXN0LW9ubHk"
COMMONS = [sys.executable, "-m", "credit_commons.cli"]


def commons_env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    env.update(
        COMMONS_DATA_DIR=str(data_dir),
        COMMONS_DATABASE_URL=database_url,
        COMMONS_PSEUDONYM_PEPPER=PEPPER,
    )
    return env


@contextmanager
def serving(
    env: dict[str, str],
    port: int,
    log_path: Path,
    *,
    stop_wait: float = 15,
    migrate: bool = True,
) -> Iterator[str]:
    """``commons db upgrade`` (in this process: tests/commons_inprocess.py; not with
    ``migrate=False``), then ``commons serve`` with ``env`` on 127.0.0.1:``port``, its output
    in ``log_path``, until ``/healthz`` answers 200 (at most 120 s, for a start on a loaded
    machine; the test fails with the log otherwise); yields its base URL, and stops it with
    SIGTERM (waiting ``stop_wait`` s)."""
    if migrate:
        migrated = commons(["db", "upgrade"], env)
        assert migrated.returncode == 0, migrated.stderr
    base = f"http://127.0.0.1:{port}"
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
            yield base
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=stop_wait)


@pytest.fixture
def server(tmp_path: Path, backend_url: str) -> Iterator[tuple[str, Path]]:
    log_path = tmp_path / "server.log"
    env = commons_env(tmp_path / "var", backend_url)
    with serving(env, free_port(), log_path) as base:
        yield base, log_path


def test_serves_health_readiness_metrics_and_problems(server: tuple[str, Path]) -> None:
    base, log_path = server
    with httpx.Client(base_url=base, timeout=5) as client:
        health = client.get("/healthz")
        assert health.json()["status"] == "ok"
        assert health.headers["x-request-id"].startswith("req_")
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready"
        assert ready["schema"] == head_revision()
        assert ready["routes"] == SURFACE_REGISTRY_SHA256
        assert client.get("/v1/routes").json()["sha256"] == SURFACE_REGISTRY_SHA256
        assert "commons_http_requests_total" in client.get("/metrics").text
        spec = client.get("/openapi.json").json()
        assert spec["info"]["title"] == "Credit Commons"
        missing = client.get("/v1/nothing-here", params={"access_token": "sekrit-token"})
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "resource.not_found"
    time.sleep(0.2)  # let the access log flush
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    requests = [entry for entry in lines if entry.get("message") == "request"]
    assert {"route", "status", "duration_ms", "request_id"} <= set(requests[0])
    text = log_path.read_text()
    assert PEPPER not in text
    assert "sekrit-token" not in text


def test_an_unmigrated_database_is_503_until_upgraded(tmp_path: Path, backend_url: str) -> None:
    # The docs' set-up once left out `commons db upgrade`: the API answered 500 on a missing
    # table and the log worker logged a failure every half second.  Now serve says so on
    # stderr, every route but the operations' answers 503 service.not_migrated (as /readyz),
    # the worker waits with one warning, and all of it starts once the database is migrated.
    env = commons_env(tmp_path / "var", backend_url)
    log_path = tmp_path / "server.log"
    with (
        serving(env, free_port(), log_path, migrate=False) as base,
        httpx.Client(base_url=base, timeout=5) as client,
    ):
        assert client.get("/healthz").status_code == 200
        for method, path in [
            ("GET", "/v1/log/key"),
            ("GET", "/.well-known/jwt-vc-issuer"),
            ("POST", "/v1/identities"),
            ("GET", "/readyz"),
        ]:
            answer = client.request(method, path, json={} if method == "POST" else None)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "service.not_migrated"
            assert "commons db upgrade" in answer.json()["detail"]
            assert int(answer.headers["retry-after"]) > 0
        time.sleep(1.5)  # three of the worker's polls
        migrated = commons(["db", "upgrade"], env)
        assert migrated.returncode == 0, migrated.stderr
        deadline = time.monotonic() + 30
        while (key := client.get("/v1/log/key")).status_code == 503:
            assert time.monotonic() < deadline, key.text
            time.sleep(0.2)
        assert key.status_code == 200
        assert key.json()["origin"]
        assert client.get("/readyz").json()["status"] == "ready"
        created = client.post("/v1/identities", json={"profile": {"name": "Asha"}})
        assert created.status_code == 201, created.text
        time.sleep(1.0)  # the worker's next poll
    text = log_path.read_text()
    assert "every API route answers 503 service.not_migrated" in text
    assert "`commons db upgrade`" in text
    assert "log worker step failed" not in text
    assert "Traceback" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    messages = [entry["message"] for entry in lines]
    waits = [m for m in messages if m.startswith("database not migrated")]
    assert len(waits) == 1, messages
    assert "database migrated: the log worker starts" in messages


def test_production_refuses_to_serve_with_sqlite(tmp_path: Path) -> None:
    env = commons_env(tmp_path / "var", f"sqlite:///{tmp_path}/x.db")
    env["COMMONS_ENV"] = "production"
    result = subprocess.run(
        [*COMMONS, "serve", "--port", str(free_port())],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 8
    assert "COMMONS_DATABASE_URL" in result.stderr


def test_serve_refuses_a_registry_other_than_the_audited_one(tmp_path: Path) -> None:
    env = commons_env(tmp_path / "var", f"sqlite:///{tmp_path}/x.db")
    env["COMMONS_SURFACE_REGISTRY_SHA256"] = "0" * 64
    result = subprocess.run(
        [*COMMONS, "serve", "--port", str(free_port())],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 8
    assert "COMMONS_SURFACE_REGISTRY_SHA256" in result.stderr


def test_serve_on_another_port_presents_a_matching_public_url(
    server: tuple[str, Path],
) -> None:
    # No COMMONS_PUBLIC_URL: the server's own address is its public URL (issue 12 item 12).
    base, log_path = server
    host_port = base.removeprefix("http://")
    with httpx.Client(base_url=base, timeout=5) as client:
        metadata = client.get("/.well-known/openid-credential-issuer").json()
        assert metadata["credential_issuer"] == base
        assert client.get("/v1/log/key").json()["origin"] == f"{host_port}/log"
    assert f"public URL {base}" in log_path.read_text()


def test_serve_says_which_setting_disagrees_with_its_address(
    tmp_path: Path, backend_url: str
) -> None:
    env = commons_env(tmp_path / "var", backend_url)
    env["COMMONS_PUBLIC_URL"] = "http://127.0.0.1:8000"
    migrated = commons(["db", "upgrade"], env)  # in this process: tests/commons_inprocess.py
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    process = subprocess.Popen(
        [*COMMONS, "serve", "--port", str(port), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())  # printed once the checks passed
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert started["public_url"] == "http://127.0.0.1:8000"
    assert started["serving"] == f"http://127.0.0.1:{port}"
    warning = next(line for line in err.splitlines() if line.startswith("warning:"))
    assert "COMMONS_PUBLIC_URL=http://127.0.0.1:8000" in warning
    assert f"127.0.0.1:{port}" in warning
