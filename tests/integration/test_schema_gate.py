"""The schema gate (core/migrate.py) on each backend: what answers 503 service.not_migrated
at the HTTP edge and holds the log worker back until ``commons db upgrade`` has run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate

from credit_commons.core.db import make_engine
from credit_commons.core.errors import ConfigurationError
from credit_commons.core.migrate import SchemaGate
from credit_commons.core.net import FetchFailed
from credit_commons.gateway.app import create_app
from credit_commons.ledger.worker import LogWorker
from credit_commons.node import Platform
from credit_commons.runtime import Runtime


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(backend_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(backend_url)
    yield engine
    engine.dispose()


def _statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    return seen


def test_reads_at_a_bounded_rate_until_migrated_then_never(engine: sa.Engine) -> None:
    clock = FakeMonotonic()
    opened: list[int] = []
    gate = SchemaGate(engine, on_migrated=lambda: opened.append(1), recheck=2.0, monotonic=clock)
    statements = _statements(engine)
    assert gate.due()
    assert not gate.migrated()
    read = len(statements)
    assert read > 0
    for _ in range(50):  # within the recheck window: the kept answer, no query
        assert not gate.migrated()
    assert len(statements) == read
    migrate(engine)
    clock.now += 1.9
    assert not gate.due()
    assert not gate.migrated()  # not looked at again yet
    clock.now += 0.2
    statements.clear()
    assert gate.migrated()
    assert gate.is_open
    assert opened == [1]
    statements.clear()
    clock.now += 1000
    for _ in range(50):
        assert gate.migrated()
    assert statements == []  # once migrated, no query per ask
    assert opened == [1]


def test_a_refused_start_up_check_keeps_it_shut(engine: sa.Engine) -> None:
    migrate(engine)
    clock = FakeMonotonic()
    calls: list[int] = []

    def refuse() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a changed pepper")

    gate = SchemaGate(engine, on_migrated=refuse, recheck=2.0, monotonic=clock)
    with pytest.raises(RuntimeError):
        gate.migrated()
    assert not gate.is_open
    assert not gate.migrated()  # not again within the window
    clock.now += 2.0
    assert gate.migrated()
    assert calls == [1, 1]


def test_a_refusing_start_up_check_is_the_answer_until_the_next_look(
    tmp_path: Path, backend_url: str
) -> None:
    # A changed pepper refused when the gate opens: the requests until the next look get
    # that refusal, not "run `commons db upgrade`" (which has run).
    engine = make_engine(backend_url)
    migrate(engine)
    clock = FakeMonotonic()

    def refuse() -> None:
        raise ConfigurationError("the events pseudonymisation pepper changed")

    gate = SchemaGate(engine, on_migrated=refuse, recheck=2.0, monotonic=clock)
    try:
        assert gate.refusal().code == "service.not_migrated"  # before any look
        with pytest.raises(ConfigurationError):
            gate.migrated()
        assert not gate.migrated()  # within the window
        assert gate.refusal().code == ConfigurationError.code
        assert "pepper changed" in str(gate.refusal().detail)
    finally:
        engine.dispose()


def test_a_database_migrated_by_a_newer_version_says_so(tmp_path: Path, backend_url: str) -> None:
    # `commons db upgrade` cannot help there (alembic: "Can't locate revision"): routes,
    # /readyz and the gate name the revision and say to deploy the newer version.
    engine = make_engine(backend_url)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    engine.dispose()
    app = create_app(make_settings(tmp_path, database_url=backend_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(2):  # the first look, then the kept answer within the window
            for path in ["/v1/log/key", "/readyz"]:
                answer = client.get(path)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                problem = answer.json()
                assert problem["code"] == "service.schema_ahead"
                assert "ffffffffffff" in problem["detail"]
                assert "deploy that version" in problem["detail"]
                assert "commons db upgrade" not in problem["detail"]
        assert not app.state.schema_gate.is_open


def test_every_route_but_the_operations_is_503_until_migrated(
    tmp_path: Path, backend_url: str
) -> None:
    app = create_app(make_settings(tmp_path, database_url=backend_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        for open_path in ["/healthz", "/openapi.json", "/metrics", "/docs"]:
            assert client.get(open_path).status_code == 200, open_path
        for method, path in [
            ("GET", "/v1/log/key"),
            ("GET", "/v1/log/checkpoint"),
            ("GET", "/.well-known/jwt-vc-issuer"),
            ("POST", "/v1/identities"),
            ("GET", "/v1/routes"),
            ("GET", "/readyz"),
        ]:
            answer = client.request(method, path)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["retry-after"] == "5"
            problem = answer.json()
            assert problem["code"] == "service.not_migrated"
            assert problem["status"] == 503
        gate: SchemaGate = app.state.schema_gate
        migrate(app.state.runtime.engine)
        while not gate.due():  # at most the recheck window
            threading.Event().wait(0.05)
        key = client.get("/v1/log/key")
        assert key.status_code == 200, key.text
        assert gate.is_open
        assert client.get("/readyz").json()["status"] == "ready"


def test_the_worker_waits_quietly_until_migrated(
    tmp_path: Path, backend_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime.build(make_settings(tmp_path, database_url=backend_url))
    gate = SchemaGate(runtime.engine, recheck=0.05)
    worker = LogWorker(runtime, steps=[], probes=[], ready=gate.migrated)
    caplog.set_level(logging.INFO, logger="credit_commons.ledger.worker")
    thread = threading.Thread(target=worker.run_forever, kwargs={"poll": 0.02})
    thread.start()
    try:
        threading.Event().wait(0.5)  # some 25 polls
        migrate(runtime.engine)
        for _ in range(200):
            if gate.is_open:
                break
            threading.Event().wait(0.02)
        threading.Event().wait(0.2)
    finally:
        worker.stop()
        thread.join()
        runtime.close()
    messages = [record.getMessage() for record in caplog.records]
    assert (
        messages.count("database not migrated: the log worker waits for `commons db upgrade`") == 1
    )
    assert "database migrated: the log worker starts" in messages
    assert "log worker step failed" not in messages


class _Forward(httpx.BaseTransport):
    """A node's requests to the platform's test client."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.get(request.url.raw_path.decode())
        headers = {"content-type": answer.headers.get("content-type", "")}
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)


def test_a_node_following_an_unmigrated_platform_says_why(tmp_path: Path, backend_url: str) -> None:
    # `commons node serve` exited 9 with "remote answered HTTP 500"; now the platform answers
    # 503 and the node's error points at its /readyz and the command.
    app = create_app(make_settings(tmp_path, database_url=backend_url))
    with TestClient(app, raise_server_exceptions=False) as client:
        platform = Platform("http://127.0.0.1:8000", transport=_Forward(client))
        try:
            with pytest.raises(FetchFailed) as refused:
                platform.log_key()
        finally:
            platform.close()
    assert refused.value.remote_status == 503
    assert refused.value.detail == (
        "the platform at http://127.0.0.1:8000 is not ready: /v1/log/key answered HTTP 503"
    )
    assert refused.value.hint is not None
    assert "http://127.0.0.1:8000/readyz" in refused.value.hint
    assert "commons db upgrade" in refused.value.hint
