"""Two independent witnesses as real processes, driven over loopback HTTP by the log-side
client: a growing log gets a 2-of-2 cosigned checkpoint, a forked log is refused by both
(C2SP tlog-witness@v1.0.0), and the refusals leave their state unchanged.

The first witness keeps its default SQLite database in its data directory; the second is
given the backend under test with ``--database-url`` (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tests.ports import free_port

from credit_commons.ledger import note
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.cosignature import CosignatureVerifier, verify_cosigned
from credit_commons.ledger.rfc6962 import Hash, InMemoryTree, consistency_proof, leaf_hash
from credit_commons.ledger.witness import AddCheckpointRequest
from credit_commons.ledger.witness_client import (
    WitnessEndpoint,
    WitnessRejected,
    collect_cosignatures,
)

ORIGIN = "log.example/credit"
LOG_SKEY, LOG_VKEY = note.generate_key(ORIGIN, bytes(range(32)))
LOG = note.Ed25519Signer.from_skey(LOG_SKEY)
WITNESS_APP = [sys.executable, "-m", "credit_commons.gateway.witness_app"]


@dataclass
class RunningWitness:
    name: str
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    database_url: str
    vkey: str = ""

    def logs(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()


def _start(tmp_path: Path, name: str, database_url: str | None) -> RunningWitness:
    label = name.split(".", 1)[0]
    port = free_port()
    data_dir = tmp_path / label
    stdout, stderr = tmp_path / f"{label}.out", tmp_path / f"{label}.err"
    command = [
        *WITNESS_APP, "--data-dir", str(data_dir), "--name", name, "--log-key", LOG_VKEY,
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    if database_url is not None:
        command += ["--database-url", database_url]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
    url = database_url or f"sqlite:///{data_dir / 'witness.db'}"
    return RunningWitness(name, f"http://127.0.0.1:{port}", data_dir, process, stdout, stderr, url)


def _wait_ready(witness: RunningWitness, deadline: float) -> None:
    while True:
        first_line = witness.stdout.read_text().partition("\n")[0]
        if first_line and not witness.vkey:
            witness.vkey = json.loads(first_line)["witness_vkey"]
        if witness.vkey:
            try:
                if httpx.get(f"{witness.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        if witness.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"witness {witness.name} did not start:\n{witness.logs()}")
        time.sleep(0.05)


@pytest.fixture
def witnesses(tmp_path: Path, backend_url: str) -> Iterator[list[RunningWitness]]:
    started = [
        _start(tmp_path, "w1.example/witness", None),
        _start(tmp_path, "w2.example/witness", backend_url),
    ]
    try:
        deadline = time.monotonic() + 20
        for witness in started:
            _wait_ready(witness, deadline)
        yield started
    finally:
        for witness in started:
            witness.process.send_signal(signal.SIGTERM)
        stuck = []
        for witness in started:
            try:
                witness.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                witness.process.kill()
                witness.process.wait()
                stuck.append(witness.name)
        assert not stuck, f"witnesses ignored SIGTERM: {stuck}"
        for witness in started:
            # Uvicorn shuts down gracefully, then re-raises the signal it caught.
            assert witness.process.returncode in (0, -signal.SIGTERM), witness.logs()
            assert "Application shutdown complete" in witness.logs()


def checkpoint(t: InMemoryTree) -> str:
    return note.sign_note(Checkpoint(ORIGIN, t.size, t.root()).format(), LOG)


def proofs(t: InMemoryTree) -> Callable[[int, int], tuple[Hash, ...]]:
    return lambda old, new: consistency_proof(old, new, t)


def recorded(witness: RunningWitness) -> tuple[int, bytes]:
    # Read the witness's own database directly while it runs.
    engine = sa.create_engine(witness.database_url)
    try:
        with engine.connect() as db:
            size, root = db.execute(
                sa.text("SELECT size, root_hash FROM witness_checkpoints WHERE origin = :o"),
                {"o": ORIGIN},
            ).one()
    finally:
        engine.dispose()
    return int(size), bytes(root)


def test_two_witnesses_cosign_a_growing_log_and_refuse_forks(
    witnesses: list[RunningWitness],
) -> None:
    endpoints = [WitnessEndpoint(w.url, w.vkey) for w in witnesses]
    verifiers = [CosignatureVerifier.from_vkey(w.vkey) for w in witnesses]
    assert [v.name for v in verifiers] == [w.name for w in witnesses]
    for witness in witnesses:
        assert stat.S_IMODE((witness.data_dir / "witness.key").stat().st_mode) == 0o600

    # A growing log, each checkpoint cosigned by both witnesses.
    log_tree = InMemoryTree()
    known: dict[str, int] = {}
    for size in (1, 3, 8, 21, 100):
        log_tree.extend(leaf_hash(b"entry %d" % i) for i in range(log_tree.size, size))
        signed = checkpoint(log_tree)
        result = collect_cosignatures(
            signed, witnesses=endpoints, last_known_size=known, proof_for=proofs(log_tree)
        )
        assert not result.failures, result.failures
        known.update({name: c.size for name, c in result.cosignatures.items()})
        opened = verify_cosigned(result.cosigned_note(signed), LOG.verifier(), verifiers, k=2)
        assert opened.checkpoint.size == size
        assert len(opened.cosigners) == 2

    # The log lost its record of the witnesses: each says 409 with its size, then cosigns.
    log_tree.extend(leaf_hash(b"entry %d" % i) for i in range(100, 130))
    signed = checkpoint(log_tree)
    result = collect_cosignatures(
        signed, witnesses=endpoints, last_known_size={}, proof_for=proofs(log_tree)
    )
    assert not result.failures, result.failures
    verify_cosigned(result.cosigned_note(signed), LOG.verifier(), verifiers, k=2)
    known = {name: c.size for name, c in result.cosignatures.items()}
    state = (130, bytes(log_tree.root()))
    assert [recorded(w) for w in witnesses] == [state, state]

    # Fork 1: another checkpoint of the same size.
    same_size = InMemoryTree(leaf_hash(b"forged %d" % i) for i in range(130))
    # Fork 2: a larger tree that keeps the first 100 entries and rewrites the rest.
    diverged = InMemoryTree(leaf_hash(b"entry %d" % i) for i in range(100))
    diverged.extend(leaf_hash(b"forged %d" % i) for i in range(100, 200))
    for fork, status in ((same_size, 409), (diverged, 422)):
        result = collect_cosignatures(
            checkpoint(fork), witnesses=endpoints, last_known_size=known, proof_for=proofs(fork)
        )
        assert not result.cosignatures
        assert set(result.failures) == {e.name for e in endpoints}
        for failure in result.failures.values():
            assert isinstance(failure.error, WitnessRejected)
            assert failure.error.http_status == status
    assert [recorded(w) for w in witnesses] == [state, state]

    # On the wire: a stale old size gets the recorded size as text/x.tlog.size.
    stale = AddCheckpointRequest(0, (), checkpoint(diverged)).format()
    for witness in witnesses:
        answer = httpx.post(f"{witness.url}/add-checkpoint", content=stale, timeout=5)
        assert answer.status_code == 409
        assert answer.headers["content-type"] == "text/x.tlog.size"
        assert answer.content == b"130\n"

    # The honest log carries on from where the witnesses are.
    log_tree.extend(leaf_hash(b"entry %d" % i) for i in range(130, 131))
    result = collect_cosignatures(
        checkpoint(log_tree), witnesses=endpoints, last_known_size=known,
        proof_for=proofs(log_tree),
    )  # fmt: skip
    assert sorted(c.size for c in result.cosignatures.values()) == [131, 131]
