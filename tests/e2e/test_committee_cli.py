"""End to end: the checkpoint committee through the CLI against a real ``commons serve``
(SQLite and PostgreSQL for the log; each member node its own SQLite data directory), with
``commons committee member serve`` processes, each sending its partials with the service
token of the full node it is bound to: two members up add no line, the third makes
the committee's line, which ``commons committee verify`` checks with the group key alone;
a byzantine partial is refused and reported.  Waits are bounded by poll counts."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from tests.commons_inprocess import commons
from tests.e2e.test_serve import COMMONS, commons_env
from tests.ports import free_port

from credit_commons.core.encoding import b64_encode
from credit_commons.keys import ServiceIdentity
from credit_commons.ledger import committee
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.committee_errors import CommitteeSignatureMissing
from credit_commons.ledger.committee_setup import MemberShare
from credit_commons.ledger.note import parse_note
from credit_commons.ledger.rfc6962 import Hash

POLLS = 600  # at most 600 × 0.1 s for any one state to be reached


def wait_for(condition: Callable[[], bool], what: str) -> None:
    for _ in range(POLLS):
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"not reached after {POLLS} polls: {what}")


@pytest.fixture
def platform(tmp_path: Path, backend_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **commons_env(tmp_path / "var", backend_url),
        "COMMONS_PUBLIC_URL": base,
        "COMMONS_LOG_CHECKPOINT_INTERVAL": "0.2",
    }
    migrated = commons(["db", "upgrade"], env)
    assert migrated.returncode == 0, migrated.stderr
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*COMMONS, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: process.poll() is not None or _healthy(base),
                f"server start:\n{log_path.read_text()}",
            )
            assert process.poll() is None, log_path.read_text()
            yield base, env
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_committee_through_the_cli(platform: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, env = platform
    dealt = commons(
        ["committee", "deal", "--out", str(tmp_path / "dealt"), "-t", "3", "-n", "5", "--json"],
        env,
    )
    assert dealt.returncode == 0, dealt.stderr
    group_vkey = json.loads(dealt.stdout)["vkey"]
    assert (tmp_path / "dealt" / "member-1.json").stat().st_mode & 0o777 == 0o600
    # Each member is a full node with its own service key, registered with the platform.
    keys = [tmp_path / f"node{index}-service-key.json" for index in range(1, 6)]
    nodes = []
    for index, key in enumerate(keys, 1):
        identity = ServiceIdentity.create(key, service="node", name=f"node-m{index}")
        jwk = json.dumps(identity.public_jwk())
        added = commons(
            ["service-token", "register", "--service", "node", "--name", identity.name,
             "--public-key", jwk],
            env,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        nodes.append(identity)
    group_file = str(tmp_path / "dealt" / "group.json")
    unbound = commons(["committee", "register", group_file, "--node", "node-m1"], env)
    assert unbound.returncode != 0
    assert "each of the 5 members" in unbound.stderr
    bound = [arg for identity in nodes for arg in ("--node", identity.name)]
    registered = commons(["committee", "register", group_file, *bound, "--json"], env)
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["in_effect"] is True
    assert json.loads(registered.stdout)["nodes"] == [n.name for n in nodes]
    rebound = commons(["committee", "bind", "1", *bound, "--json"], env)
    assert rebound.returncode == 0, rebound.stderr
    assert json.loads(rebound.stdout) == {"version": 1, "nodes": [n.name for n in nodes]}
    unknown = commons(["committee", "bind", "1", *bound[:-1], "node-nobody"], env)
    assert unknown.returncode != 0
    assert "node-nobody" in unknown.stderr
    log_vkey = httpx.get(f"{base}/v1/log/key").json()["vkey"]
    member_envs = []
    printed = ""
    for index in range(1, 6):
        member_env = commons_env(
            tmp_path / f"member{index}", f"sqlite:///{tmp_path / f'member{index}.db'}"
        )
        assert commons(["db", "upgrade"], member_env).returncode == 0
        share_file = str(tmp_path / "dealt" / f"member-{index}.json")
        imported = commons(["committee", "member", "import", share_file, "--json"], member_env)
        assert imported.returncode == 0, imported.stderr
        printed += dealt.stdout + dealt.stderr + imported.stdout + imported.stderr
        member_envs.append(member_env)
    # No share ever reaches the output.
    for index in range(1, 6):
        share = json.loads((tmp_path / "dealt" / f"member-{index}.json").read_text())["share"]
        assert share not in printed

    def task() -> dict[str, object] | None:
        body = httpx.get(f"{base}/v1/tasks/current").json()
        found: dict[str, object] | None = body["task"]
        return found

    wait_for(lambda: task() is not None, "a checkpoint to sign")
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[BinaryIO] = []

    def start(index: int) -> None:
        log = (tmp_path / f"member{index}.log").open("wb")
        logs.append(log)
        processes.append(
            subprocess.Popen(
                [
                    *COMMONS, "committee", "member", "serve", "--log", base,
                    "--log-key", log_vkey, "--service-key", str(keys[index - 1]),
                    "--poll", "0.2",
                ],
                env=member_envs[index - 1],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )  # fmt: skip

    try:
        start(1)
        start(2)
        wait_for(lambda: (task() or {}).get("partials") == 2, "two partials")
        note = httpx.get(f"{base}/v1/log/checkpoint").text
        with pytest.raises(CommitteeSignatureMissing):
            committee.verify_committee_signature(note, group_vkey)
        start(3)
        wait_for(lambda: "— commons-committee " in httpx.get(f"{base}/checkpoint").text, "line")
        note = httpx.get(f"{base}/checkpoint").text
        (tmp_path / "checkpoint.txt").write_text(note)
        verified = commons(
            ["committee", "verify", str(tmp_path / "checkpoint.txt"), "--group-key", group_vkey],
            env,
        )
        assert verified.returncode == 0, verified.stderr
        # A byzantine member 4: a valid partial over another root for that size.
        checkpoint = Checkpoint.parse(parse_note(note).text)
        byzantine = MemberShare.from_json(
            json.loads((tmp_path / "dealt" / "member-4.json").read_text())
        )
        wrong = Checkpoint(checkpoint.origin, checkpoint.size, Hash(bytes(32)))
        partial = byzantine.share.sign(wrong.format().encode())
        statement = {
            "group_key": b64_encode(byzantine.group.group_key),
            "member": 4,
            "size": checkpoint.size,
            "root": wrong.root_hash.b64(),
            "signature": b64_encode(partial.signature),
        }
        # Without member 4's node's token it is not even read; with it, it is reported.
        anonymous = httpx.post(f"{base}/v1/partials", json=statement)
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "auth.service_token_invalid"
        token = nodes[3].token(audience=base, scopes=["partials:write"], ttl=60)
        refused = httpx.post(
            f"{base}/v1/partials", json=statement, headers={"Authorization": f"Bearer {token}"}
        )
        assert refused.status_code == 409
        assert refused.json()["code"] == "committee.equivocation"
        shown = commons(["committee", "show", "--json"], env)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["committees"][0]["vkey"] == group_vkey
        status = commons(["committee", "member", "status", "--json"], member_envs[2])
        assert json.loads(status.stdout)["signed_size"] >= checkpoint.size
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=15) for process in processes]
        for log in logs:
            log.close()
    assert codes == [0, 0, 0], [(tmp_path / f"member{i}.log").read_text() for i in (1, 2, 3)]
