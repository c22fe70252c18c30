"""Full nodes through real processes (issue 20 item 2): one NATS JetStream server, a
platform (``commons serve`` publishing to it, on SQLite and PostgreSQL) and two
``commons node serve`` processes following it, each on its own SQLite.  A credential issued
and then revoked on the platform is refused by both nodes' verifiers while the platform is
stopped (they learnt the revocation from ``revocations.*``, not from the issuer); a node
SIGKILLed and restarted catches up with nothing lost or doubled; the NATS server SIGKILLed
and restarted mid-stream loses nothing it acknowledged; each node's scorer runs and, the
platform having no rule set, refuses to score.  Every wait ends on a count of
polls; the timeouts only guard against a hang."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import GENEROUS_RATE_LIMITS, make_settings, migrate
from tests.e2e.test_serve import COMMONS
from tests.factories import readiness_claims
from tests.integration.federation.nats_server import NatsServer, stream_messages
from tests.integration.federation.test_publish import child_env
from tests.ports import free_port

from credit_commons.core.db import transaction
from credit_commons.formats.sd_jwt_format import SdJwt
from credit_commons.identity.auth import issue_admin_token
from credit_commons.issuer.sd_jwt import present
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime

AUDIENCE = "https://lender.example/verifier"
POLLS = 400  # x 50 ms


@dataclass
class Proc:
    argv: list[str]
    env: dict[str, str]
    base: str
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        for _ in range(POLLS):
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.argv[3:5]} did not start:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=30)
        self.process = None


def _until(what: str, check: Any) -> Any:
    for _ in range(POLLS):
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def _state(node: Proc) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{node.base}/v1/node", timeout=5).json()
    return answer


def _bus_messages(nats: NatsServer) -> int:
    return sum(1 for m in stream_messages(nats.url) if m["stream"] == "COMMONS_BUS")


def _caught_up(node: Proc, nats: NatsServer, platform: Proc) -> bool:
    size = int(httpx.get(f"{platform.base}/v1/log/checkpoint", timeout=5).text.split("\n")[1])
    state = _state(node)
    bus = state["counters"].get("accepted.COMMONS_BUS", 0)
    return bool(bus == _bus_messages(nats) and state["checkpoint"] == size)


def test_nodes_follow_revocations_restarts_and_a_nats_restart(
    tmp_path: Path, backend_url: str, nats_server: NatsServer
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path / "platform", database_url=backend_url, public_url=base)
    rt = Runtime.build(settings)
    migrate(rt.engine)
    with transaction(rt.sessions) as session:
        admin, _ = issue_admin_token(session, rt, "issuer-desk")
    rt.close()
    env = child_env(settings)
    env.update(
        COMMONS_PUBLIC_URL=base,
        COMMONS_NATS_URL=nats_server.url,
        COMMONS_LOG_CHECKPOINT_INTERVAL="0.2",
        COMMONS_RATE_LIMITS=json.dumps(GENEROUS_RATE_LIMITS),
    )
    platform = Proc(
        [*COMMONS, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env,
        base,
        tmp_path / "platform.log",
    )
    node_env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONS_")}
    node_env.update(PYTHONPATH=env["PYTHONPATH"], COMMONS_LOG_LEVEL="WARNING")
    nodes = []
    for name in ("b", "c"):
        node_port = free_port()
        argv = [*COMMONS, "node", "serve", "--peer", nats_server.url, "--follow", base]
        argv += ["--data", str(tmp_path / name), "--port", str(node_port)]
        nodes.append(
            Proc(argv, node_env, f"http://127.0.0.1:{node_port}", tmp_path / f"{name}.log")
        )
    as_admin = {"Authorization": f"Bearer {admin}"}
    try:
        platform.start()
        for node in nodes:
            node.start()

        # Issued on the platform, verified by both nodes.
        holder = PrivateKey.generate(KeyType.ED25519)
        msme = httpx.post(
            f"{base}/v1/identities", json={"roles": ["business"], "profile": {"name": "Shakti"}}
        ).json()
        issued = httpx.post(
            f"{base}/v1/credentials",
            json={
                "type": "CreditReadinessCredential",
                "subject": msme["identity_token"],
                "claims": readiness_claims(msme["identity_token"], 781),
                "holder_jwk": public_key_to_jwk(holder.public_key),
            },
            headers=as_admin,
        )
        assert issued.status_code == 201, issued.text
        nonce = secrets.token_urlsafe(12)
        shown = present(
            SdJwt.parse(issued.json()["credential"]),
            disclose=set(),
            holder_signer=holder,
            audience=AUDIENCE,
            nonce=nonce,
            iat=int(time.time()),
        )
        check = {"presentation": shown, "audience": AUDIENCE, "nonce": nonce}
        # The platform's answer, which each node's must be (docs/api.md: one shape, and here
        # the same values: issuer, type, claims, status read).
        own = httpx.post(f"{base}/v1/presentations/verify", json=check, timeout=10)
        assert own.status_code == 200, own.text
        assert set(own.json()) == {"valid", "issuer", "vct", "claims", "status_checked"}
        for node in nodes:
            ok = httpx.post(f"{node.base}/v1/presentations/verify", json=check, timeout=10)
            assert ok.status_code == 200, ok.text
            assert ok.json()["status_checked"] is True
            assert ok.json() == own.json()

        # Revoked on the platform: each node's mirrored list changes from the stream.
        lists = {node.base: httpx.get(f"{node.base}/v1/node", timeout=5).json() for node in nodes}
        credential_id = issued.json()["credential_id"]
        revoke = httpx.post(f"{base}/v1/credentials/{credential_id}/revoke", headers=as_admin)
        assert revoke.status_code == 200, revoke.text
        for node in nodes:
            _until(
                "the node counts the revocation",
                lambda n=node: (
                    _state(n)["counters"].get("accepted.COMMONS_REVOCATIONS", 0)
                    > lists[n.base]["counters"].get("accepted.COMMONS_REVOCATIONS", 0)
                ),
            )
        platform.stop()  # the issuer is unreachable from here on
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/healthz", timeout=1)
        for node in nodes:
            refused = httpx.post(f"{node.base}/v1/presentations/verify", json=check, timeout=10)
            assert refused.status_code == 400, refused.text
            assert refused.json()["code"] == "credential.revoked"

        # Node b SIGKILLed; events meanwhile; restarted, it catches up exactly.
        platform.start()
        nodes[0].stop(signal.SIGKILL)
        for i in range(40):
            created = httpx.post(
                f"{base}/v1/identities", json={"roles": ["business"], "profile": {"name": f"M{i}"}}
            )
            assert created.status_code == 201, created.text
        nodes[0].start()
        for node in nodes:
            _until("the node catches up", lambda n=node: _caught_up(n, nats_server, platform))

        # NATS SIGKILLed and restarted mid-stream: nothing acknowledged is lost.
        nats_server.kill()
        for i in range(20):
            created = httpx.post(
                f"{base}/v1/identities", json={"roles": ["business"], "profile": {"name": f"N{i}"}}
            )
            assert created.status_code == 201, created.text
        nats_server.start()
        for node in nodes:
            _until("the node converges", lambda n=node: _caught_up(n, nats_server, platform))
        states = [_state(node) for node in nodes]
        accepted = [
            {k: v for k, v in state["counters"].items() if k.startswith("accepted.")}
            for state in states
        ]
        assert accepted[0] == accepted[1]
        assert accepted[0]["accepted.COMMONS_BUS"] == _bus_messages(nats_server)
        for state in states:
            assert not [k for k in state["counters"] if k.startswith("dropped.")]
            assert state["forks"] == 0
            assert state["tree_size"] == state["checkpoint"]
        # Each node's scorer runs; the platform registered no rule set, so it refuses.
        for node in nodes:
            _until(
                "the node's scorer ran",
                lambda n=node: _state(n)["scores"]["refused"] == "no_rule_set",
            )
            did = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
            score = httpx.get(f"{node.base}/v1/scores", params={"did": did, "ctx": "c1"})
            assert score.status_code == 409, score.text
            assert score.json()["code"] == "node.scoring_refused"
    finally:
        for proc in (*nodes, platform):
            if proc.process is not None:
                proc.stop()
