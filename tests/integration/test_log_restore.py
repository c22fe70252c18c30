"""A restore can never fork the transparency log (issue 13 item 4), on SQLite and PostgreSQL.

A backup is taken at size N (a copy of the SQLite files; ``pg_dump``), the log grows and a
checkpoint at M > N is published and anchored (the file anchor), and the backup is restored
beside the live database with the live data directory (where the published-checkpoint file
and the anchor journal live, as on a real host).  The restored platform refuses to sequence
or sign and names the gap — it used to sign a second root for sizes already published —
and each documented recovery ends with ``commons log audit`` passing and no second root for
any size of the log.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from tests.conftest import make_settings, migrate
from tests.integration.test_erasure_backups import backup
from tests.integration.test_erasure_backups import restored as restored_once

from credit_commons.cli import main
from credit_commons.core.db import transaction
from credit_commons.core.errors import CommonsError, ExitCode
from credit_commons.core.settings import Settings
from credit_commons.events import record_event
from credit_commons.formats.tlog_tiles import TILE_WIDTH
from credit_commons.gateway.app import create_app
from credit_commons.gateway.witness_app import TLOG_SIZE
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.service import KeyRotated
from credit_commons.ledger.anchors import FileAnchorBackend
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.cosignature import CosignatureSigner
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.models import CheckpointRow, LogEntryRow
from credit_commons.ledger.note import parse_note
from credit_commons.ledger.recovery import HttpTiles, read_entries, tile_path
from credit_commons.ledger.sequencer import sequence_pending
from credit_commons.ledger.steps import anchor_step, witness_step
from credit_commons.ledger.witness import OldSizeMismatch, SqlWitnessStore, Witness, WitnessConfig
from credit_commons.ledger.witness_client import WitnessEndpoint
from credit_commons.ledger.worker import LogWorker
from credit_commons.runtime import Runtime

N, M = 250, 530  # the backup's size, and the published size: across two tile boundaries


def problem(err: str) -> Any:
    """The problem+json line a failing ``--json`` command ends its stderr with."""
    return json.loads(err.strip().splitlines()[-1])


@pytest.fixture
def settings(tmp_path: Path, backend_url: str) -> Settings:
    """Anchoring every checkpoint (no interval), so the anchor journal holds size M."""
    return make_settings(tmp_path, database_url=backend_url, anchor_interval=0)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.build(settings)
    migrate(rt.engine)
    try:
        yield rt
    finally:
        rt.close()


@contextmanager
def restored(saved: Any, settings: Settings) -> Iterator[Runtime]:
    """A runtime over a fresh restore of ``saved`` (a SQLite backup is copied first, so each
    restore starts from the backup as it was taken)."""
    if isinstance(saved, Path):
        copy = saved.parent.with_name(f"{saved.parent.name}-{secrets.token_hex(4)}")
        shutil.copytree(saved.parent, copy)
        saved = copy / saved.name
    with restored_once(saved, settings) as rt:
        yield rt


def record(rt: Runtime, count: int) -> None:
    with transaction(rt.sessions) as session:
        for i in range(count):
            record_event(
                session,
                KeyRotated(key_name="k", version=i + 1, key_type=KeyType.ED25519, kid=f"kid{i}"),
                actor=rt.operator_actor(),
                at=rt.clock.now(),
            )


def publish(rt: Runtime) -> Any:
    """One worker pass that sequences, signs and anchors (the file journal)."""
    anchors = anchor_step({"file": FileAnchorBackend(rt.settings.resolved_anchor_file)})
    return LogWorker(rt, steps=[anchors]).run_once(force_checkpoint=True)


def checkpoints(rt: Runtime) -> dict[int, tuple[str, bytes]]:
    """Every stored checkpoint: size -> (origin, root)."""
    with transaction(rt.read_sessions) as session:
        rows = session.scalars(sa.select(CheckpointRow)).all()
        return {
            r.size: (Checkpoint.parse(parse_note(r.note).text).origin, bytes(r.root)) for r in rows
        }


def cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    rt: Runtime,
    *args: str,
) -> tuple[int, Any, str]:
    """``commons … --json`` over ``rt``'s database and data directory: (code, stdout, stderr)."""
    monkeypatch.setenv("COMMONS_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setenv("COMMONS_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("COMMONS_ENV", "test")
    monkeypatch.setenv("COMMONS_ANCHOR_INTERVAL", "0")
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


@pytest.fixture
def published(runtime: Runtime, settings: Settings, tmp_path: Path) -> Any:
    """The live log: a backup at size N, then a checkpoint at M published and anchored."""
    record(runtime, N)
    assert LogWorker(runtime, steps=[]).run_once(force_checkpoint=True).checkpoint == N
    saved = backup(runtime, settings, tmp_path / "backup")
    record(runtime, M - N)
    report = publish(runtime)
    assert report.checkpoint == M
    assert report.extra["anchors_published"] == 1
    journal = settings.resolved_anchor_file.read_text().splitlines()
    assert json.loads(journal[-1])["size"] == str(M)
    return saved


def assert_refused(
    rt: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> dict[str, Any]:
    """Every way the restored platform could sign refuses, naming the gap."""
    before = checkpoints(rt)
    report = LogWorker(rt, steps=[]).run_once(force_checkpoint=True)
    # Before the check, this signed a second root (for a size at or below M, or past it).
    assert checkpoints(rt) == before, "signed over the restored database"
    assert report.diverged is not None
    assert report.sequenced == 0
    gap = report.diverged.to_json()
    assert (gap["kind"], gap["published_size"]) == (kind, M)
    for command in (["worker", "--once"], ["log", "checkpoint", "--publish"], ["log", "sequence"]):
        code, _, err = cli(monkeypatch, capsys, rt, *command)
        assert code == ExitCode.INTEGRITY, (command, err)
        refusal = problem(err)
        assert refusal["code"] == "log.diverged"
        assert refusal["published_size"] == M
        assert f"published size {M}" in refusal["detail"]
        assert "Traceback" not in err
    code, status, _ = cli(monkeypatch, capsys, rt, "log", "status")
    assert code == ExitCode.INTEGRITY
    assert status["ok"] is False
    assert status["gap"] == gap
    with TestClient(create_app(rt.settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["code"] == "log.diverged"
    assert ready.json()["published_size"] == M
    # Nothing was signed over the restored database.
    assert checkpoints(rt) == before
    assert max(before) <= N
    return gap


def test_a_restored_backup_behind_the_published_log_is_refused(
    runtime: Runtime,
    settings: Settings,
    published: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live = checkpoints(runtime)
    with restored(published, settings) as old:
        # Writes after the restore are accepted; their events wait unsequenced.
        record(old, M - N)
        gap = assert_refused(old, monkeypatch, capsys, "behind")
        assert gap["source"] == "published-checkpoint file"
        assert gap["database_size"] == N
        assert gap["lost_leaves"] == M - N
        assert gap["lost_range"] == [N, M]
        assert gap["pending_events"] == M - N
        assert gap["published_root"] is not None
        # No second root for any size: whatever the restored copy holds, the live log has.
        for size, (origin, root) in checkpoints(old).items():
            assert live[size] == (origin, root)


def test_without_the_published_file_the_anchor_journal_still_refuses(
    runtime: Runtime,
    settings: Settings,
    published: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings.resolved_log_published_file.unlink()
    with restored(published, settings) as old:
        record(old, 3)
        gap = assert_refused(old, monkeypatch, capsys, "behind")
        assert gap["source"] == "anchor journal"


def test_a_restored_database_with_another_history_at_the_published_size_is_refused(
    runtime: Runtime,
    settings: Settings,
    published: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with restored(published, settings) as old:
        # Other leaves up to the published size, sequenced by something that did not check
        # (the platform before this check): the same size, another root.
        record(old, M - N)
        assert sequence_pending(old.sessions).size == M
        gap = assert_refused(old, monkeypatch, capsys, "different")
        assert gap["database_size"] == M
        assert gap["lost_leaves"] is None
        assert gap["database_root"] != gap["published_root"]


def test_a_normal_restart_signs_as_before(
    runtime: Runtime,
    settings: Settings,
    published: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    again = Runtime.build(settings)
    try:
        code, status, _ = cli(monkeypatch, capsys, again, "log", "status")
        assert code == 0
        assert status["ok"] is True
        assert status["published"][0]["size"] == M
        with TestClient(create_app(settings)) as client:
            assert client.get("/readyz").status_code == 200
        record(again, 3)
        # The anchoring of M recorded an event too, and starting the app may record its own
        # (its first start creates the surface-registry key): every event recorded is in the
        # checkpoint the restarted log signs, ours and those at least.
        with again.sessions() as session:
            recorded = session.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
        assert recorded >= M + 4
        assert publish(again).checkpoint == recorded
    finally:
        again.close()
    code, audit, err = cli(monkeypatch, capsys, runtime, "log", "audit")
    assert code == 0, err
    assert audit["size"] >= recorded
    head = json.loads(settings.resolved_log_published_file.read_text())
    assert [log["size"] for log in head["logs"].values()] == [recorded]


# -- recovery ----------------------------------------------------------------------------------


def mirror_tiles(client: TestClient, size: int, directory: Path) -> None:
    """Copy the entry bundles of the first ``size`` leaves as a tlog-tiles mirror holds them."""
    for tile in range(-(-size // TILE_WIDTH)):
        width = min(TILE_WIDTH, size - tile * TILE_WIDTH)
        path = tile_path(tile, width if width < TILE_WIDTH else None)
        answer = client.get(f"/tile/entries/{path}")
        assert answer.status_code == 200, answer.text
        target = directory / "tile" / "entries" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(answer.content)


def live_entries(rt: Runtime, start: int, end: int) -> list[bytes]:
    with transaction(rt.read_sessions) as session:
        rows = session.execute(
            sa.select(LogEntryRow.entry)
            .where(LogEntryRow.leaf_index >= start, LogEntryRow.leaf_index < end)
            .order_by(LogEntryRow.leaf_index)
        )
        return [bytes(e) for (e,) in rows]


def assert_one_root_per_size(rt: Runtime, live: dict[int, tuple[str, bytes]], origin: str) -> None:
    """Every checkpoint of ``origin`` at a size the live log signed is the live log's (and
    ``commons log audit`` checked that every later one extends them: one tree)."""
    for size, signed in checkpoints(rt).items():
        if signed[0] == origin and size in live:
            assert live[size] == signed, f"a second root for size {size}"


def test_replay_from_published_tiles_recovers_the_one_history(
    runtime: Runtime,
    settings: Settings,
    published: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mirror, short, tampered = tmp_path / "mirror", tmp_path / "short", tmp_path / "tampered"
    with TestClient(create_app(settings)) as client:
        mirror_tiles(client, M, mirror)
        mirror_tiles(client, 2 * TILE_WIDTH, short)
        # A tlog-tiles URL serves the same leaves as the directory.
        assert read_entries(HttpTiles(client), N, M) == live_entries(runtime, N, M)
    shutil.copytree(mirror, tampered)
    bundle = tampered / "tile" / "entries" / tile_path(1)
    data = bytearray(bundle.read_bytes())
    at = data.index(b'"digest":"') + len(b'"digest":"')
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    bundle.write_bytes(bytes(data))
    live = checkpoints(runtime)
    origin = live[M][0]

    with restored(published, settings) as old:
        record(old, 3)  # writes after the restore wait in the outbox
        replay = ["log", "replay", "--yes", "--from"]
        code, _, err = cli(monkeypatch, capsys, old, *replay, str(tmp_path / "nowhere"))
        assert (code, problem(err)["code"]) == (ExitCode.NOT_FOUND, "file.not_found"), err
        code, _, err = cli(monkeypatch, capsys, old, "log", "replay", "--from", str(mirror))
        assert code == ExitCode.VALIDATION, err  # --yes is required
        code, _, err = cli(monkeypatch, capsys, old, *replay, str(short))
        assert code == ExitCode.NOT_FOUND, err
        assert "tile/entries/002.p/18" in problem(err)["detail"]
        code, _, err = cli(monkeypatch, capsys, old, *replay, str(tampered))
        assert code == ExitCode.INTEGRITY, err
        assert problem(err)["code"] == "log.diverged"
        # Refused replays kept nothing.
        assert LogWorker(old, steps=[]).run_once().diverged is not None

        code, result, err = cli(monkeypatch, capsys, old, *replay, str(mirror))
        assert code == 0, err
        assert result["replayed"] == M - N
        assert (result["from_size"], result["size"], result["checkpoint"]) == (N, M, M)
        assert result["events_missing"] == M - N  # recorded after the backup: bodies lost
        assert result["types"] == {"key.rotated": M - N}
        assert result["root"] == base64.b64encode(live[M][1]).decode()

        code, status, _ = cli(monkeypatch, capsys, old, "log", "status")
        assert code == 0
        assert status["ok"] is True
        code, report, err = cli(monkeypatch, capsys, old, "worker", "--once")
        assert code == 0, err
        assert report["checkpoint"] == M + 4  # three writes held meanwhile, and the replay
        code, audit, err = cli(monkeypatch, capsys, old, "log", "audit")
        assert code == 0, err
        assert audit["checkpoints"] == 3
        assert_one_root_per_size(old, live, origin)
        assert set(checkpoints(old)) == {N, M, M + 4}


def test_a_new_origin_continues_the_log_and_freezes_the_old_one(
    runtime: Runtime,
    settings: Settings,
    published: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live = checkpoints(runtime)
    old_origin, new_origin = live[M][0], "log.commons.example/2"
    with restored(published, settings) as old:
        record(old, 3)
        declare = ["log", "new-origin", "--origin"]
        code, _, err = cli(monkeypatch, capsys, old, *declare, old_origin, "--yes")
        assert code == ExitCode.VALIDATION, err  # a name this log used
        code, declared, err = cli(monkeypatch, capsys, old, *declare, new_origin, "--yes")
        assert code == 0, err
        assert declared == {
            "origin": new_origin,
            "frozen_origin": old_origin,
            "published_size": M,
            "database_size": N,
            "lost_leaves": M - N,
        }
        code, report, err = cli(monkeypatch, capsys, old, "worker", "--once")
        assert code == 0, err
        assert report["checkpoint"] == N + 4  # three writes held meanwhile, the declaration
        code, audit, err = cli(monkeypatch, capsys, old, "log", "audit")
        assert code == 0, err
        assert audit["checkpoints"] == 2
        signed = checkpoints(old)
        assert signed[N + 4][0] == new_origin
        assert_one_root_per_size(old, live, old_origin)
        assert max(s for s, (o, _) in signed.items() if o == old_origin) == N
        code, key, _ = cli(monkeypatch, capsys, old, "log", "checkpoint")
        assert key["origin"] == new_origin
        assert key["checkpoint"].startswith(f"{new_origin}\n{N + 4}\n")

    record_file = json.loads(settings.resolved_log_published_file.read_text())
    assert record_file["frozen"][old_origin]["successor"] == new_origin
    assert record_file["logs"][old_origin]["size"] == M
    assert record_file["logs"][new_origin]["size"] == N + 4
    # The frozen origin is never signed again: not by another restore of the backup, not
    # by the old live database.
    with restored(published, settings) as again:
        gap = LogWorker(again, steps=[]).run_once(force_checkpoint=True).diverged
        assert gap is not None
        assert (gap.kind, gap.successor) == ("frozen", new_origin)
        code, status, _ = cli(monkeypatch, capsys, again, "log", "status")
        assert code == ExitCode.INTEGRITY
        assert status["gap"]["kind"] == "frozen"
    record(runtime, 2)
    assert LogWorker(runtime, steps=[]).run_once(force_checkpoint=True).diverged is not None
    assert checkpoints(runtime) == live


def in_process_witness(
    name: str, log_key: str, tmp: Path
) -> tuple[WitnessEndpoint, httpx.MockTransport]:
    """A witness answering as ``commons witness serve`` does, 409 sizes included."""
    signer = CosignatureSigner.from_private_key(name, Ed25519PrivateKey.generate())
    witness = Witness(
        WitnessConfig(signer, {log_key.split("+", 1)[0]: [log_key]}),
        SqlWitnessStore.open(f"sqlite:///{tmp / 'witness.db'}"),
    )

    def handle(request: httpx.Request) -> httpx.Response:
        try:
            lines = witness.add_checkpoint(request.content, now=1_700_000_000)
        except OldSizeMismatch as e:
            size = f"{e.recorded_size}\n"
            return httpx.Response(409, text=size, headers={"content-type": TLOG_SIZE})
        except CommonsError as e:
            return httpx.Response(e.status, text=e.detail)
        return httpx.Response(200, text="".join(lines))

    endpoint = WitnessEndpoint(url=f"https://{name}", vkey=signer.verifier().vkey)
    return endpoint, httpx.MockTransport(handle)


def test_a_witness_further_than_the_restored_database_is_asked_before_anything_is_signed(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    endpoint, transport = in_process_witness(
        "witness.example/w1", log_identity(runtime).vkey, tmp_path
    )
    cosign = witness_step([endpoint], transport)
    record(runtime, N)
    assert LogWorker(runtime, steps=[cosign]).run_once(force_checkpoint=True).checkpoint == N
    saved = backup(runtime, settings, tmp_path / "backup")
    record(runtime, M - N)
    report = LogWorker(runtime, steps=[cosign]).run_once(force_checkpoint=True)
    assert (report.checkpoint, report.extra["cosigned"]) == (M, 1)
    # The host was lost with its published-checkpoint file; no anchors were configured.
    settings.resolved_log_published_file.unlink()
    with restored(saved, settings) as old:
        record(old, M - N)
        probe = witness_step([endpoint], transport, probe=True)
        report = LogWorker(old, steps=[cosign], probes=[probe]).run_once(force_checkpoint=True)
        assert max(checkpoints(old)) == N, "signed before asking the witness"
        assert report.diverged is not None
        assert report.diverged.kind == "behind"
        assert report.diverged.claim.size == M
        assert report.diverged.claim.source == "witness witness.example/w1 (its cosigned size)"
