"""``commons log verify-consistency`` (issue 14 item 9) against the local log and a served one,
on both databases, and HEAD on the tiles and checkpoints (RFC 9110 §9.3.2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from credit_commons.cli import main
from credit_commons.core.db import transaction
from credit_commons.core.errors import ExitCode
from credit_commons.core.settings import Settings
from credit_commons.demo import bound_socket, serve_in_thread
from credit_commons.gateway.app import create_app
from credit_commons.ledger import note as note_format
from credit_commons.ledger.checkpoint import Checkpoint
from credit_commons.ledger.identity import log_identity
from credit_commons.ledger.rfc6962 import Hash
from credit_commons.ledger.service import log_signer
from credit_commons.runtime import Runtime


@pytest.fixture
def env(tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMMONS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COMMONS_DATABASE_URL", backend_url)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _grow(capsys: pytest.CaptureFixture[str], *names: str) -> dict[str, object]:
    """Log an event per key created, then publish a checkpoint; returns `log checkpoint`."""
    for name in names:
        assert run(capsys, "keys", "create", name)[0] == 0
    code, out, err = run(capsys, "log", "checkpoint", "--publish", "--json")
    assert code == 0, err
    published: dict[str, object] = json.loads(out)
    return published


def _signed_by_log(text: str) -> str:
    """``text`` signed with this log's own key (what only the log, or a thief of its key,
    can make)."""
    rt = Runtime.build(Settings())
    try:
        with transaction(rt.sessions) as session:
            signer = log_signer(session, rt.key_store, log_identity(rt))
            return note_format.sign_note(text, signer)
    finally:
        rt.close()


@pytest.fixture
def kept(env: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, dict[str, object]]:
    """A migrated log with a checkpoint at size 3 kept in a file."""
    assert run(capsys, "db", "upgrade")[0] == 0
    first = _grow(capsys, "key-a", "key-b", "key-c")
    assert first["size"] == 3
    path = env / "kept-checkpoint.txt"
    path.write_text(str(first["checkpoint"]))
    return path, first


def test_todays_checkpoint_extends_the_kept_one(
    kept: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, first = kept
    # The same size: nothing to prove but equal roots.
    code, out, err = run(capsys, "log", "verify-consistency", str(path), "--json")
    assert code == 0, err
    assert json.loads(out) | {"checkpoint": ""} == {
        "ok": True,
        "origin": first["origin"],
        "old_size": 3,
        "new_size": 3,
        "checkpoint": "",
    }
    later = _grow(capsys, "key-d", "key-e", "key-f", "key-g")
    code, out, err = run(capsys, "log", "verify-consistency", str(path), "--json")
    assert code == 0, err
    found = json.loads(out)
    assert (found["old_size"], found["new_size"]) == (3, later["size"])
    assert found["checkpoint"] == later["checkpoint"]
    # Pinned explicitly, the same key verifies; text output says what was checked.
    code, out, err = run(
        capsys, "log", "verify-consistency", str(path), "--log-key", str(first["log_key"])
    )
    assert code == 0, err
    assert out.startswith(f"ok: {first['origin']} at size {later['size']} extends")


def test_a_tampered_kept_checkpoint_is_refused(
    kept: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str], env: Path
) -> None:
    path, first = kept
    _grow(capsys, "key-d")
    origin, size, _root, *rest = str(first["checkpoint"]).split("\n")
    other_root = Hash(bytes(32)).b64()
    tampered = env / "tampered.txt"
    tampered.write_text("\n".join([origin, size, other_root, *rest]))
    code, _, err = run(capsys, "log", "verify-consistency", str(tampered), "--json")
    assert code == ExitCode.INTEGRITY
    assert json.loads(err)["code"] == "log.signature_invalid"
    # A different pinned key does not verify the genuine checkpoint either.
    _, vkey = note_format.generate_key(origin)
    code, _, _ = run(capsys, "log", "verify-consistency", str(path), "--log-key", vkey)
    assert code == ExitCode.INTEGRITY


def test_a_checkpoint_of_another_log_is_refused(
    kept: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str], env: Path
) -> None:
    skey, _ = note_format.generate_key("other.example/log")
    text = Checkpoint("other.example/log", 3, Hash(bytes(32))).format()
    other = env / "other.txt"
    other.write_text(note_format.sign_note(text, note_format.Ed25519Signer.from_skey(skey)))
    code, _, err = run(capsys, "log", "verify-consistency", str(other), "--json")
    assert code == ExitCode.LOG_ORIGIN_MISMATCH == 10
    assert json.loads(err)["code"] == "log.origin_mismatch"


def test_a_fork_or_a_rollback_is_refused(
    kept: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str], env: Path
) -> None:
    _, first = kept
    origin = str(first["origin"])
    # Another history at the same size, signed by the log's own key: a fork.
    fork = env / "fork.txt"
    fork.write_text(_signed_by_log(Checkpoint(origin, 3, Hash(bytes(32))).format()))
    code, _, err = run(capsys, "log", "verify-consistency", str(fork), "--json")
    assert code == ExitCode.LOG_FORKED == 11
    assert json.loads(err)["code"] == "log.forked"
    # The same at a smaller size: the consistency proof from it does not hold.
    _grow(capsys, "key-d", "key-e")
    smaller = env / "smaller.txt"
    smaller.write_text(_signed_by_log(Checkpoint(origin, 2, Hash(bytes(32))).format()))
    code, _, err = run(capsys, "log", "verify-consistency", str(smaller), "--json")
    assert code == ExitCode.LOG_FORKED
    assert "does not extend" in json.loads(err)["detail"]
    # A kept checkpoint larger than today's: the log was rolled back.
    ahead = env / "ahead.txt"
    ahead.write_text(_signed_by_log(Checkpoint(origin, 1000, Hash(bytes(32))).format()))
    code, _, err = run(capsys, "log", "verify-consistency", str(ahead), "--json")
    assert code == ExitCode.LOG_FORKED
    assert "rolled back" in json.loads(err)["detail"]


@pytest.fixture
def served(kept: tuple[Path, dict[str, object]]) -> Iterator[str]:
    """The log served over HTTP on a loopback port."""
    settings = Settings()
    with serve_in_thread(create_app(settings), bound_socket()) as base:
        yield base


def test_verify_consistency_against_a_server(
    kept: tuple[Path, dict[str, object]], served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path, first = kept
    vkey = str(first["log_key"])
    code, _, err = run(capsys, "log", "verify-consistency", str(path), "--url", served)
    assert code == ExitCode.USAGE
    assert "--log-key" in err
    later = _grow(capsys, "key-d", "key-e", "key-f")
    code, out, err = run(
        capsys, "log", "verify-consistency", str(path), "--url", served, "--log-key", vkey, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["new_size"] == later["size"]
    assert json.loads(out)["checkpoint"] == later["checkpoint"]
    code, _, _ = run(
        capsys,
        "log",
        "verify-consistency",
        str(path),
        "--url",
        "http://127.0.0.1:9/",
        "--log-key",
        vkey,
    )
    assert code == ExitCode.UNAVAILABLE


def test_head_on_tiles_and_checkpoints(
    kept: tuple[Path, dict[str, object]], served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # RFC 9110 §9.3.2: the headers of the GET, Content-Length included, and no body.
    paths = ["/checkpoint", "/v1/log/checkpoint", "/tile/0/000.p/3", "/tile/entries/000.p/3"]
    with httpx.Client(base_url=served) as http:
        for path in paths:
            got, head = http.get(path), http.head(path)
            assert got.status_code == head.status_code == 200, path
            assert got.content
            assert head.content == b""
            assert head.headers["content-length"] == str(len(got.content))
            for name in ("content-type", "cache-control"):
                assert head.headers[name] == got.headers[name], (path, name)
        assert http.head("/tile/0/999").status_code == http.get("/tile/0/999").status_code == 404
