"""``GET /v1/subscribe`` through a real ``commons serve`` on SQLite and PostgreSQL (issue 20
item 5): an administrator's stream receives a credential issuance and a consent grant, in
the log's order, each message verifying under the log's key; a resumed stream repeats
nothing; a subscriber that does not read is dropped while another keeps receiving; 401,
403, 400 and the stream limits (429, 503 with ``Retry-After``); SIGTERM ends open streams.
Bounded by counts (events, reads, polls); the timeouts are only a guard against a hang."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.conftest import GENEROUS_RATE_LIMITS, make_settings, migrate
from tests.e2e.test_serve import COMMONS
from tests.integration.federation.test_publish import child_env, record_reputation
from tests.ports import free_port

from credit_commons.core.db import transaction
from credit_commons.demo import run_story
from credit_commons.federation import MESSAGE_TYP
from credit_commons.formats.jws import verify_compact
from credit_commons.identity.auth import issue_admin_token, issue_token
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

GUARD = 30.0  # seconds: only against a hang; every wait below ends on a count


@dataclass
class Platform:
    rt: Runtime
    base: str
    admin: str
    process: subprocess.Popen[bytes]
    log: Path

    def headers(self, token: str | None = None, last: int | None = None) -> dict[str, str]:
        found = {"Authorization": f"Bearer {token or self.admin}"}
        if last is not None:
            found["Last-Event-ID"] = str(last)
        return found


@pytest.fixture
def platform(tmp_path: Path, backend_url: str) -> Iterator[Platform]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path, database_url=backend_url, public_url=base)
    rt = Runtime.build(settings)
    migrate(rt.engine)
    with transaction(rt.sessions) as session:
        admin, _ = issue_admin_token(session, rt, "subscriber")
    env = child_env(settings)
    env.update(
        COMMONS_LOG_LEVEL="INFO",
        COMMONS_PUBLIC_URL=base,
        COMMONS_RATE_LIMITS=json.dumps(GENEROUS_RATE_LIMITS),
        COMMONS_SUBSCRIBE_STREAMS="4",
        COMMONS_SUBSCRIBE_STREAMS_PER_CREDENTIAL="3",
        COMMONS_SUBSCRIBE_BUFFER="8",
        COMMONS_SUBSCRIBE_POLL="0.05",
        COMMONS_SUBSCRIBE_STALL="0.5",
    )
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        # No log worker in the server: this test sequences the log itself, so it knows
        # every index it expects.
        process = subprocess.Popen(
            [*COMMONS, "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    break
                time.sleep(0.1)
            else:
                pytest.fail("server did not start")
            if process.poll() is not None:
                pytest.fail(f"server did not start:\n{log_path.read_text()}")
            yield Platform(rt, base, admin, process, log_path)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)
            rt.close()


@dataclass
class Reader:
    """A subscriber reading in a thread until it has ``want`` events or the stream ends."""

    url: str
    headers: dict[str, str]
    want: int
    events: list[tuple[int, str, str]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    opened: threading.Event = field(default_factory=threading.Event)
    ended: bool = False
    failure: str | None = None

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        assert self.opened.wait(GUARD)
        assert self.failure is None, self.failure
        return thread

    def _run(self) -> None:
        try:
            self._read()
        except Exception as exc:
            self.failure = repr(exc)
        finally:
            self.opened.set()

    def _read(self) -> None:
        with httpx.stream("GET", self.url, headers=self.headers, timeout=GUARD) as response:
            if response.status_code != 200:
                self.failure = f"{response.status_code} {response.read()!r}"
                return
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if line.startswith(":"):
                    self.comments.append(line)
                    self.opened.set()
                elif line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                elif fields:
                    self.events.append((int(fields["id"]), fields["event"], fields["data"]))
                    fields = {}
                    if len(self.events) >= self.want:
                        return
        self.ended = True


def sequence(rt: Runtime) -> int:
    return LogWorker(rt, steps=[]).run_once().size


def log_key(rt: Runtime) -> object:
    with transaction(rt.read_sessions) as session:
        return rt.key_store.versions(session, "log")[-1].public_key


def test_receives_issuance_and_grant_in_order_signed_and_resumes(
    platform: Platform, tmp_path: Path
) -> None:
    rt, base = platform.rt, platform.base
    sequence(rt)
    url = f"{base}/v1/subscribe?topic=consent.granted&topic=credential.issued"
    first = Reader(url, platform.headers(), want=2)
    thread = first.start()
    run_story(rt, base, tmp_path / "wallet", say=lambda _line: None)
    size = sequence(rt)
    thread.join(GUARD)
    assert [kind for _, kind, _ in first.events] == ["credential.issued", "consent.granted"]
    indices = [index for index, _, _ in first.events]
    assert indices == sorted(indices)
    assert indices[-1] < size
    key = log_key(rt)
    for index, subject, data in first.events:
        payload = verify_compact(data, key, typ=MESSAGE_TYP, algs=("EdDSA",))
        assert payload["sub"] == subject
        assert payload["index"] == index
        assert isinstance(payload["event"], dict)
        assert payload["event"]["type"] == subject

    # Resuming after the first event gets the second, once, then what comes next: three
    # reputation events recorded afterwards (on a topic added for the purpose).
    again = Reader(f"{url}&topic=events.*", platform.headers(last=indices[0]), want=4)
    thread = again.start()
    record_reputation(rt, 3)
    thread.join(GUARD)
    assert [(i, kind) for i, kind, _ in again.events] == [
        (indices[1], "consent.granted"),
        (size, "events.shg=2Elucknow"),
        (size + 1, "events.agri"),
        (size + 2, "events.shg=2Elucknow"),
    ]


def test_slow_reader_is_dropped_while_another_keeps_receiving(platform: Platform) -> None:
    rt, base = platform.rt, platform.base
    record_reputation(rt, 1)  # so that there is an index to resume after
    start = sequence(rt)
    # ~1 KB a message: far more than the socket buffers (the sender's grows to 4 MiB on
    # loopback), uvicorn's 64 KiB and the stream's 8 messages hold.
    total = 8000
    url = f"{base}/v1/subscribe?topic=events.*"
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    slow.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    request = (
        f"GET /v1/subscribe?topic=events.* HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {platform.admin}\r\nLast-Event-ID: {start - 1}\r\n\r\n"
    )
    record_reputation(rt, total)
    slow.sendall(request.encode())
    fast = Reader(url, platform.headers(last=start - 1), want=total)
    thread = fast.start()
    # The server drops the slow one (its buffer stayed full): its metric says so.
    for _ in range(600):
        metrics = httpx.get(f"{base}/metrics").text
        if "commons_subscribe_dropped_total 1.0" in metrics:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the slow subscriber was not dropped")
    # What it reads now ends with the farewell and the end of the response, after fewer
    # events than were sent.
    slow.settimeout(GUARD)
    received = b""
    while chunk := slow.recv(65536):
        received += chunk
        if b": dropped" in received and received.endswith(b"0\r\n\r\n"):
            break
    slow.close()
    assert b": dropped: the subscriber did not keep up" in received
    assert received.count(b"\nevent: events.") < total
    # The other one receives everything, in order, once.
    thread.join(GUARD)
    assert [e[0] for e in fast.events] == list(range(start, start + total))


def test_refusals(platform: Platform) -> None:
    rt, base = platform.rt, platform.base
    url = f"{base}/v1/subscribe"
    unauthenticated = httpx.get(url, params={"topic": "consent.*"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["code"] == "auth.unauthenticated"
    with transaction(rt.sessions) as session:
        identity_token, _ = issue_token(session, rt, "idt_someone", "identity")
    forbidden = httpx.get(
        url, params={"topic": "consent.*"}, headers=platform.headers(identity_token)
    )
    assert forbidden.status_code == 403
    for topic in (
        "consent.x",
        "consent.gr*",
        "foo.bar",
        "consent",
        "checkpoints.*",
        "events.a.b",
        "events.a b",
        "*.granted",
        ">",
        "",
    ):
        bad = httpx.get(url, params={"topic": topic}, headers=platform.headers())
        assert bad.status_code == 400, topic
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["code"] == "subscribe.topic_invalid"
    bad_id = httpx.get(
        url,
        params={"topic": "consent.*"},
        headers=platform.headers(last=-1) | {"Last-Event-ID": "x1"},
    )
    assert bad_id.status_code == 400
    assert bad_id.json()["code"] == "subscribe.last_event_id_invalid"

    # Three streams per credential, four in the process.
    readers = [Reader(f"{url}?topic=consent.*", platform.headers(), want=1) for _ in range(3)]
    threads = [reader.start() for reader in readers]
    fourth = httpx.get(url, params={"topic": "consent.*"}, headers=platform.headers())
    assert fourth.status_code == 429
    assert fourth.json()["code"] == "subscribe.too_many_streams"
    assert int(fourth.headers["Retry-After"]) > 0
    with transaction(rt.sessions) as session:
        other, _ = issue_admin_token(session, rt, "second")
    readers.append(Reader(f"{url}?topic=consent.*", platform.headers(other), want=1))
    threads.append(readers[-1].start())
    full = httpx.get(url, params={"topic": "consent.*"}, headers=platform.headers(other))
    assert full.status_code == 503
    assert full.json()["code"] == "subscribe.streams_full"
    assert int(full.headers["Retry-After"]) > 0

    # SIGTERM ends the open streams (each response completes), and the server exits
    # (uvicorn re-raises the signal once it has shut down).
    platform.process.send_signal(signal.SIGTERM)
    assert platform.process.wait(timeout=GUARD) == -signal.SIGTERM
    for thread, reader in zip(threads, readers, strict=True):
        thread.join(GUARD)
        assert reader.ended
        assert reader.failure is None
        assert not reader.events
    assert "Application shutdown complete" in platform.log.read_text()
