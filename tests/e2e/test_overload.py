"""End to end: a burst of writers far beyond the connection pool, against `commons serve`
as a real process (issue 13 item 1).

Before admission, 64 concurrent registrations stalled the server: the requests holding a
connection (and, on SQLite, the write lock) waited for a worker thread to finish on, while
every thread was taken by a request waiting for a connection; after the pool timeout
(30 s) about half were answered 500.  Now a burst gets only 2xx, 429 or 503 answers (the
refusals with ``Retry-After``), none a 500, and the server serves the next request at once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.e2e.test_serve import COMMONS, commons_env
from tests.ports import free_port

WRITERS = 96
EACH = 3
REFUSALS = {"service.overloaded", "service.database_busy", "request.rate_limited"}


@pytest.fixture
def small_server(tmp_path: Path, backend_url: str) -> Iterator[str]:
    """`commons serve` with a connection pool of 2 (as many again in overflow) and a short
    admission queue, so that the burst below is many times what it can hold."""
    env = commons_env(tmp_path / "var", backend_url)
    env.update(
        COMMONS_DB_POOL_SIZE="2",
        COMMONS_ADMISSION_QUEUE="16",
        COMMONS_LOG_LEVEL="WARNING",
        # One address sends the whole burst: registration's per-address limit would refuse
        # it before it reached the database (the limits are tested in gateway/).
        COMMONS_RATE_LIMITS=json.dumps({"registration.ip": "1000000/minute"}),
    )
    migrated = commons(["db", "upgrade"], env)  # in this process: tests/commons_inprocess.py
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*COMMONS, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield base
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert b"Traceback" not in log_path.read_bytes(), log_path.read_text()


ATTEMPTS = 40
"""Tries per registration: a writer that honours ``Retry-After`` gets through long before
(a refusal costs it one second); the bound only stops a test that would otherwise loop."""


def _burst(base: str) -> list[list[httpx.Response | Exception]]:
    """Each writer registers ``EACH`` identities one after the other, retrying a refusal
    after its ``Retry-After``; returns every answer (or transport error) per registration."""

    async def register(http: httpx.AsyncClient, name: str) -> list[httpx.Response | Exception]:
        answers: list[httpx.Response | Exception] = []
        for _ in range(ATTEMPTS):
            try:
                answer = await http.post("/v1/identities", json={"profile": {"name": name}})
            except httpx.HTTPError as e:  # no answer within the timeout, or none at all
                answers.append(e)
                return answers
            answers.append(answer)
            if answer.status_code not in (429, 503):
                return answers
            await asyncio.sleep(min(int(answer.headers.get("retry-after", "1")), 5))
        return answers

    async def writer(http: httpx.AsyncClient, n: int) -> list[list[httpx.Response | Exception]]:
        return [await register(http, f"Burst {n}-{i}") for i in range(EACH)]

    async def run() -> list[list[httpx.Response | Exception]]:
        limits = httpx.Limits(max_connections=WRITERS, max_keepalive_connections=WRITERS)
        # 25 s is far beyond any wait the server allows itself (admission 0.5 s, the pool
        # and SQLite's lock 5 s, then 503): a request unanswered by then was stalled.
        async with httpx.AsyncClient(base_url=base, timeout=25, limits=limits) as http:
            done = await asyncio.gather(*(writer(http, n) for n in range(WRITERS)))
        return [registration for registrations in done for registration in registrations]

    return asyncio.run(run())


@pytest.mark.slow
def test_a_burst_of_writers_is_served_or_refused_never_stalled(small_server: str) -> None:
    # No wall-clock bound (the machine may be loaded): a stall shows as a request without an
    # answer within the client's timeout, a 500, or a registration never done.
    registrations = _burst(small_server)
    answers = [answer for registration in registrations for answer in registration]

    failures = [a for a in answers if isinstance(a, Exception)]
    assert not failures, f"{len(failures)} requests got no answer: {failures[:3]}"
    responses = [a for a in answers if isinstance(a, httpx.Response)]
    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {201, 429, 503}, statuses
    for refused in (r for r in responses if r.status_code in (429, 503)):
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] in REFUSALS
        assert int(refused.headers["retry-after"]) >= 1
    # A writer that honours Retry-After gets every registration done.
    done = [r for r in responses if r.status_code == 201]
    assert len(done) == WRITERS * EACH, f"{len(done)} of {WRITERS * EACH} registered"
    assert len({r.json()["identity_token"] for r in done}) == WRITERS * EACH

    # Right after the burst, a normal request is admitted, not refused.
    after = httpx.post(f"{small_server}/v1/identities", json={"profile": {"name": "After"}})
    assert after.status_code == 201, after.text

    # Every refusal is counted where operators look.
    metrics = httpx.get(f"{small_server}/metrics").text

    def total(name: str) -> float:
        prefix = name + "{"
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(prefix)
        )

    def refused(code: str) -> int:
        return sum(r.status_code == 503 and r.json()["code"] == code for r in responses)

    assert total("commons_admission_shed_total") == refused("service.overloaded")
    assert total("commons_db_busy_total") == refused("service.database_busy")
