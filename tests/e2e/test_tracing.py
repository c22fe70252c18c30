"""End to end: OpenTelemetry traces from a real `commons serve` process, configured by the
standard OTEL_* variables, exported over real HTTP to an OTLP receiver in this test
(tests/otlp_receiver.py), on SQLite and PostgreSQL (docs/operations.md "Tracing")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.ports import free_port

PEPPER = "c2VjcmV0LXBlcHBlci1mb3ItdGhlLWUyZS10ZXN0LW9ubHk"
COMMONS = [sys.executable, "-m", "credit_commons.cli"]
# What must never reach a trace: a borrower's token in a path, a bearer token, a code in a
# query string, a phone number in a body.
PATH_TOKEN = "bt-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
BEARER = "at-secret-0123456789abcdefABCDEF"
QUERY_CODE = "qc-7364527381"
PHONE = "+919812345678"
SECRETS = (PATH_TOKEN, BEARER, QUERY_CODE, PHONE, PHONE.lstrip("+"))
# A caller's W3C traceparent (W3C Trace Context §3.2): the server continues its trace.
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def _env(data_dir: Path, database_url: str, **otel: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMMONS_", "OTEL_"))}
    env.update(
        COMMONS_DATA_DIR=str(data_dir),
        COMMONS_DATABASE_URL=database_url,
        COMMONS_PSEUDONYM_PEPPER=PEPPER,
        **otel,
    )
    return env


@dataclass
class Server:
    base: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


@pytest.fixture
def start_server(tmp_path: Path, backend_url: str) -> Iterator[object]:
    started: list[Server] = []

    def start(**otel: str) -> Server:
        env = _env(tmp_path / "var", backend_url, **otel)
        if not started:
            migrated = commons(["db", "upgrade"], env)
            assert migrated.returncode == 0, migrated.stderr
        port = free_port()
        log_path = tmp_path / f"server-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*COMMONS, "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = Server(f"http://127.0.0.1:{port}", log_path, process)
        started.append(server)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{log_path.read_text()}")
            time.sleep(0.1)

    yield start
    for server in started:
        server.stop()


def _drive(base: str) -> dict[str, str]:
    """The requests the tests trace; the request id each answer carried, by name."""
    ids: dict[str, str] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 200, answer.text
        ids["readyz"] = answer.headers["x-request-id"]
        answer = client.get(
            f"/v1/borrowers/{PATH_TOKEN}/consents",
            params={"code": QUERY_CODE},
            headers={"Authorization": f"Bearer {BEARER}"},
        )
        assert answer.status_code < 500, answer.text
        ids["borrower"] = answer.headers["x-request-id"]
        answer = client.post(
            "/v1/consents",
            json={"phone": PHONE, "purpose": "loan", "borrower": {"mobile": PHONE}},
            headers={"Authorization": f"Bearer {BEARER}"},
        )
        assert answer.status_code < 500, answer.text
        ids["consents"] = answer.headers["x-request-id"]
        answer = client.get(
            "/healthz", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
        )
        assert answer.status_code == 200
        ids["healthz"] = answer.headers["x-request-id"]
    return ids


def _request(spans: list[ReceivedSpan], request_id: str, name: str) -> ReceivedSpan:
    # The server span of the request that answered with ``request_id``.
    matches = [s for s in spans if s.attributes.get("commons.request_id") == request_id]
    assert len(matches) == 1, (request_id, matches)
    assert matches[0].name == name
    return matches[0]


SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


@pytest.mark.slow
def test_spans_reach_a_real_collector_without_secrets(start_server: object) -> None:
    with otlp_receiver() as receiver:
        server = start_server(  # type: ignore[operator]
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
            OTEL_SERVICE_NAME="commons-under-test",
            # Batches only when full (512 spans) or as the server stops: what the requests
            # below made arrives at the stop, which must export what is queued (uvicorn ends
            # on SIGTERM without running exit handlers).
            OTEL_BSP_SCHEDULE_DELAY="600000",
        )
        ids = _drive(server.base)
        server.stop()
        spans = receiver.snapshot()
        _check_spans(spans, ids, server.log_path)
        _check_no_secrets(receiver)


def _check_spans(spans: list[ReceivedSpan], ids: dict[str, str], log_path: Path) -> None:
    readyz = _request(spans, ids["readyz"], "GET /readyz")
    assert readyz.kind == SERVER
    assert readyz.resource["service.name"] == "commons-under-test"
    assert readyz.attributes == {
        "http.request.method": "GET",
        "http.route": "/readyz",
        "http.response.status_code": 200,
        "url.scheme": "http",
        "commons.request_id": ids["readyz"],
    }
    # Its database statements are its children: the statement text, no parameters.
    statements = [s for s in spans if s.parent_span_id == readyz.span_id]
    assert statements, "no database span under GET /readyz"
    for statement in statements:
        assert statement.kind == CLIENT
        assert statement.trace_id == readyz.trace_id
        assert statement.attributes["db.system.name"] in {"sqlite", "postgresql"}
        text = statement.attributes["db.query.text"]
        assert isinstance(text, str)
        assert statement.name == text.split(None, 1)[0].upper()
    assert any("alembic_version" in str(s.attributes["db.query.text"]) for s in statements)

    borrower = _request(spans, ids["borrower"], "GET /v1/borrowers/{token}/consents")
    assert borrower.attributes["http.route"] == "/v1/borrowers/{token}/consents"
    assert borrower.attributes["commons.request_id"] == ids["borrower"]
    assert set(borrower.attributes) == {
        "http.request.method",
        "http.route",
        "http.response.status_code",
        "url.scheme",
        "commons.request_id",
    }
    posted = _request(spans, ids["consents"], "POST /v1/consents")
    assert posted.attributes["http.response.status_code"] in {400, 401, 403, 422}

    # An incoming traceparent is continued.
    healthz = _request(spans, ids["healthz"], "GET /healthz")
    assert (healthz.trace_id, healthz.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)

    # The worker's passes are traces of their own: a step under a pass.
    step = next(s for s in spans if s.name == "worker consent_step")
    parents = {s.span_id: s for s in spans}
    assert parents[step.parent_span_id].name == "worker pass"
    assert step.attributes["commons.step"] == "consent_step"

    # Every exported string is an allowed kind of value.
    for span in spans:
        assert not span.status_message, span  # an exception's message is never recorded

    # The request's JSON log line names its trace and span.
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line[:1] == "{"]
    logged = next(
        line
        for line in lines
        if line.get("message") == "request" and line.get("request_id") == ids["readyz"]
    )
    assert (logged["trace_id"], logged["span_id"]) == (readyz.trace_id, readyz.span_id)


def _check_no_secrets(receiver: OtlpReceiver) -> None:
    # Searched in the raw export requests, whatever field they might have gone into.
    assert receiver.bodies
    for body in receiver.bodies:
        for secret in SECRETS:
            assert secret.encode() not in body, secret
    for span in receiver.snapshot():
        for value in (span.name, *map(str, span.attributes.values())):
            assert not any(secret in value for secret in SECRETS), (span.name, value)


@pytest.mark.slow
def test_nothing_is_exported_when_tracing_is_off(start_server: object) -> None:
    with otlp_receiver() as receiver:
        # An endpoint alone would turn tracing on; OTEL_TRACES_EXPORTER=none keeps it off.
        server = start_server(  # type: ignore[operator]
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
            OTEL_TRACES_EXPORTER="none",
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
        _drive(server.base)
        server.stop()
        assert receiver.bodies == []
        lines = server.log_path.read_text().splitlines()
        requests = [json.loads(x) for x in lines if x[:1] == "{" and '"request"' in x]
        assert requests
        assert all("trace_id" not in line for line in requests)


def test_no_sdk_is_installed_when_tracing_is_unset(tmp_path: Path) -> None:
    # A fresh interpreter builds the app and runs one request with no OTEL_* set: the
    # tracer provider is the API's proxy (every span a no-op), none was installed, and the
    # exporter was never imported.  (The SDK's modules may be: redis-py imports them.)
    script = """
import sys
from fastapi.testclient import TestClient
from opentelemetry import trace
from credit_commons.core.settings import Settings
from credit_commons.core.tracing import start_tracing
from credit_commons.gateway.app import create_app
settings = Settings(data_dir=sys.argv[1], env="test")
assert start_tracing(settings.tracing, version="0") is None
with TestClient(create_app(settings)) as client:
    assert client.get("/healthz").status_code == 200
from credit_commons.core import tracing
assert tracing._installed == []
print(type(trace.get_tracer_provider()).__name__)
print(sorted(m for m in sys.modules if m.startswith("opentelemetry.exporter")))
"""
    env = _env(tmp_path / "var", f"sqlite:///{tmp_path / 'c.db'}")
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "var")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    provider, exporters = done.stdout.strip().splitlines()[-2:]
    assert provider == "ProxyTracerProvider"
    assert exporters == "[]"
