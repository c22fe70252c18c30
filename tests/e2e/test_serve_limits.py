"""Limits of a real ``commons serve`` process (issue 12 items 6, 8 and 9): uvicorn no longer
rewrites the client address from ``X-Forwarded-For`` (it trusted loopback), so a spoofed
header cannot escape a per-address limit, while a configured proxy's header counts; the
parser refuses over-long headers with 431 problem+json before they grow; over-large bodies,
declared or chunked, get 413 problem+json.  SQLite only: no storage is involved."""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from tests.e2e.test_serve import COMMONS, commons_env
from tests.ports import free_port

Serve = Callable[..., str]
MiB = 1024 * 1024


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Starts ``commons serve`` with extra environment; yields its base URL."""
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []

    def start(**extra: str) -> str:
        data = tmp_path / f"var{len(processes)}"
        env = commons_env(data, f"sqlite:///{data}/commons.db")
        env.update(extra)
        subprocess.run([*COMMONS, "db", "upgrade"], env=env, check=True, capture_output=True)
        port = free_port()
        log = (tmp_path / f"server{len(processes)}.log").open("wb")
        logs.append(log)
        process = subprocess.Popen(
            [*COMMONS, "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                # Not /readyz: the tests count the operations group's requests.
                if httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200:
                    return base
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("server did not start")
            time.sleep(0.1)

    yield start
    for process in processes:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    for log in logs:
        log.close()


LIMITS = json.dumps({"operations.ip": "3/minute"})


def test_a_spoofed_forwarded_for_does_not_escape_the_address_limit(serve: Serve) -> None:
    base = serve(COMMONS_RATE_LIMITS=LIMITS)
    with httpx.Client(base_url=base, timeout=5) as client:
        statuses = [
            client.get("/healthz", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
            for i in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


def test_a_trusted_proxys_forwarded_for_names_the_client(serve: Serve) -> None:
    base = serve(COMMONS_RATE_LIMITS=LIMITS, COMMONS_TRUSTED_PROXIES="127.0.0.1")
    with httpx.Client(base_url=base, timeout=5) as client:
        for i in range(5):
            forwarded = {"X-Forwarded-For": f"198.51.100.{i}"}
            assert client.get("/healthz", headers=forwarded).status_code == 200
        same = {"X-Forwarded-For": "198.51.100.0"}
        assert [client.get("/healthz", headers=same).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]


def raw_request(base: str, data: bytes) -> bytes:
    """Send raw bytes, as much as the server takes, and read its answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # The server stops reading once it has refused.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def status_and_body(answer: bytes) -> tuple[int, bytes, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.lower(), body


def test_the_server_refuses_over_long_headers(serve: Serve) -> None:
    base = serve()
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/healthz", headers={"X-Ok": "a" * 7000}).status_code == 200
        for headers in (
            {"X-Long": "a" * 9000},
            {f"X-Many-{i}": "a" * 4000 for i in range(10)},
        ):
            response = client.get("/healthz", headers=headers)
            assert response.status_code == 431
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "request.headers_too_large"
    # A header section that never ends is cut off at the limit, not buffered: 4 MiB sent.
    flood = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: " + b"a" * (4 * MiB)
    status, head, body = status_and_body(raw_request(base, flood))
    assert status == 431
    assert b"application/problem+json" in head
    assert json.loads(body)["code"] == "request.headers_too_large"


def test_the_server_refuses_a_console_page_s_over_long_headers_with_its_page(
    serve: Serve,
) -> None:
    # The parser's own refusal (before the app) on a console page is the console's page.
    base = serve()
    with httpx.Client(base_url=base, timeout=10) as client:
        response = client.get("/signin", headers={"Accept-Language": "hi", "X-Long": "a" * 9000})
        assert response.status_code == 431
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert '<html lang="hi"' in response.text
    flood = b"GET /borrower/consents HTTP/1.1\r\nHost: x\r\nX-Flood: " + b"a" * (4 * MiB)
    status, head, body = status_and_body(raw_request(base, flood))
    assert status == 431
    assert b"content-type: text/html; charset=utf-8" in head
    assert body.startswith(b"<!doctype html>")
    assert b'<html lang="en"' in body


def test_the_server_refuses_over_large_bodies(serve: Serve) -> None:
    base = serve()
    with httpx.Client(base_url=base, timeout=10) as client:
        declared = client.post(
            "/v1/identities",
            content=b"{" + b" " * (2 * MiB) + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert declared.status_code == 413
        assert declared.json()["code"] == "request.too_large"

        def chunks() -> Iterator[bytes]:
            for _ in range(32):
                yield b" " * 65536

        chunked = client.post(
            "/v1/identities", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert chunked.request.headers["transfer-encoding"] == "chunked"
        assert chunked.status_code == 413
        assert chunked.headers["content-type"] == "application/problem+json"


def _get_on(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    return response.status


def test_an_idle_connection_outlives_a_clients_own_keep_alive_expiry(serve: Serve) -> None:
    # httpx (and uvicorn's default) keep an idle connection 5 s: a server that closed its
    # side as early could close under a request sent at 4.99 s and lose it.
    host, port = serve().removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        assert _get_on(connection) == 200
        sock = connection.sock
        time.sleep(6)
        assert _get_on(connection) == 200  # RemoteDisconnected if the server had closed
        assert connection.sock is sock
    finally:
        connection.close()


def test_an_idle_connection_is_closed_after_the_keep_alive_setting(serve: Serve) -> None:
    host, port = serve(COMMONS_HTTP_KEEP_ALIVE="1").removeprefix("http://").split(":")
    # A 10 s read timeout: the default (20 s) would time out instead of closing.
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        assert _get_on(connection) == 200
        assert connection.sock is not None
        assert connection.sock.recv(1) == b""  # the server's close, not a timeout (raises)
    finally:
        connection.close()
