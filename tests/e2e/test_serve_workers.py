"""`commons serve --workers N` (issue 13 item 7): N worker processes serve the API, the log
worker runs once (in the supervising process), SQLite and per-process rate limits are
warned about, and production refuses several workers without Redis."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import make_settings
from tests.e2e.test_serve import COMMONS, commons_env
from tests.ports import free_port

from credit_commons.core.migrate import upgrade
from credit_commons.gateway.app import create_app
from credit_commons.gateway.serving import build_worker_app, workers_warnings
from credit_commons.runtime import Runtime


def _spawned_workers(pid: int) -> list[int]:
    # uvicorn's workers are multiprocessing "spawn" children: their command line runs
    # multiprocessing.spawn's spawn_main (the resource tracker, also a child, does not).
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_serve_with_two_workers(tmp_path: Path, backend_url: str) -> None:
    env = commons_env(tmp_path / "var", backend_url)
    env["COMMONS_LOG_CHECKPOINT_INTERVAL"] = "0.5"
    subprocess.run([*COMMONS, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*COMMONS, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 120
            while len(_spawned_workers(process.pid)) < 2 or not _ready(base):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
            workers = _spawned_workers(process.pid)
            assert len(workers) == 2

            # Both serve: each connection lands on one of them; an identity registered
            # through one is read through whichever answers next.
            made = httpx.post(f"{base}/v1/identities", json={"profile": {"name": "W"}})
            assert made.status_code == 201, made.text
            event = made.json()["event_id"]
            # The one log worker (in the supervisor) sequences and checkpoints the event.
            deadline = time.monotonic() + 120
            while httpx.get(f"{base}/v1/log/receipts/{event}").status_code != 200:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    assert process.returncode == 0, log_path.read_text()
    for pid in workers:  # stopped with their supervisor
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)
    text = log_path.read_text()
    assert "2 worker processes" in text
    assert "rate limits are kept in each of the 2 worker processes apart" in text
    assert ("SQLite" in text) == backend_url.startswith("sqlite")
    assert "Traceback" not in text


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_production_refuses_several_workers_without_redis(tmp_path: Path) -> None:
    env = commons_env(tmp_path / "var", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    env.update(COMMONS_ENV="production", COMMONS_PUBLIC_URL="https://commons.example")
    result = subprocess.run(
        [*COMMONS, "serve", "--port", str(free_port()), "--workers", "2"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 8, result.stderr
    assert "COMMONS_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_warnings(tmp_path: Path) -> None:
    sqlite = make_settings(tmp_path)
    assert workers_warnings(sqlite, 1) == []
    said = workers_warnings(sqlite, 3)
    assert any("SQLite" in line for line in said)
    assert any("up to 3 times each limit" in line for line in said)
    shared = make_settings(
        tmp_path,
        database_url="postgresql+psycopg://commons@db/commons",
        redis_url="redis://127.0.0.1:6379/0",
    )
    assert workers_warnings(shared, 4) == []


def test_a_worker_process_app_runs_no_log_worker(tmp_path: Path, backend_url: str) -> None:
    # What each spawned worker serves: its own runtime, never a log worker, while the
    # single-process app of `commons serve` runs one (the supervisor runs it once instead).
    def log_workers() -> int:
        return sum(t.name == "log-worker" for t in threading.enumerate())

    settings = make_settings(tmp_path, database_url=backend_url)
    rt = Runtime.build(settings)
    try:
        upgrade(rt.engine)
    finally:
        rt.close()
    before = log_workers()
    with TestClient(build_worker_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        assert log_workers() == before
    with TestClient(create_app(settings, run_worker=True)) as client:
        assert client.get("/readyz").status_code == 200
        assert log_workers() == before + 1
