"""A real NATS server with JetStream for the federation tests: started on a free loopback
port with its own store directory, so a test can kill and restart it (issue 20)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from tests.ports import free_port

from credit_commons.core.db import transaction
from credit_commons.federation import MESSAGE_TYP, STREAMS
from credit_commons.formats.jws import verify_compact
from credit_commons.runtime import Runtime

READY_ATTEMPTS = 200  # x 25 ms


def nats_binary() -> str:
    """Debian's ``/usr/sbin/nats-server`` (not on a user's PATH), or one on the PATH."""
    found = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")
    assert found, "nats-server is not installed (scripts/ensure-system-deps.sh installs it)"
    return found


@dataclass
class NatsServer:
    """One ``nats-server -js`` process; :meth:`kill` and :meth:`start` keep port and store."""

    store: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [nats_binary(), "-js", "-sd", str(self.store), "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(READY_ATTEMPTS):
            assert self.process.poll() is None, "nats-server exited"
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.025)
        raise AssertionError("nats-server did not listen")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no final flush."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None


def stream_messages(url: str) -> list[dict[str, Any]]:
    """Every message of every federation stream: stream, subject, Nats-Msg-Id and body."""

    async def read() -> list[dict[str, Any]]:
        nc = await nats.connect(servers=[url], allow_reconnect=False)
        try:
            js = nc.jetstream()
            found = []
            for spec in STREAMS:
                info = await js.stream_info(spec.name)
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    if not info.state.messages:
                        break
                    raw = await js.get_msg(spec.name, seq)
                    found.append(
                        {
                            "stream": spec.name,
                            "subject": raw.subject,
                            "msg_id": (raw.headers or {}).get("Nats-Msg-Id"),
                            "body": raw.data or b"",
                        }
                    )
            return found
        finally:
            await nc.close()

    return asyncio.run(read())


def verified_payloads(rt: Runtime, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each message's payload, its JWS verified under the log's key."""
    with transaction(rt.read_sessions) as session:
        key = rt.key_store.versions(session, "log")[-1].public_key
    return [
        verify_compact(m["body"].decode("ascii"), key, typ=MESSAGE_TYP, algs=("EdDSA",))
        for m in messages
    ]
