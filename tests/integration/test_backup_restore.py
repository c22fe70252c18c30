"""``commons backup`` and ``commons restore`` (issue 21 item 7), on SQLite and PostgreSQL.

An instance with data — two subjects with credentials, one of them erased, a checkpointed
log — is backed up; the backup is restored on a "new host" (a new data directory holding
only the master key file the operator keeps apart, and a new SQLite file or an empty
PostgreSQL schema).  The restored instance passes ``commons log audit``, serves the same
checkpoint, says ``backup_restore`` on ``/readyz``, refuses writes (503
``service.restore_mode``) and refuses to sequence until an operator confirms; the erased
subject's data opens nowhere, the other subject's still does.  After ``commons restore
--confirm`` writes are accepted and the confirmation is a log event.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.conftest import fresh_postgres_schema, make_settings
from tests.integration.test_erasure_backups import (
    PERSON,
    opens,
    register_with_credential,
    sealed_values,
)
from typer.testing import CliRunner

from credit_commons.backup import read_manifest
from credit_commons.cli import app as cli_app
from credit_commons.cli import main
from credit_commons.core.db import transaction
from credit_commons.core.errors import ExitCode, IntegrityError
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.identity.models import IdentityRow
from credit_commons.issuer.models import CredentialOfferRow
from credit_commons.runtime import Runtime
from credit_commons.web.borrower_models import SignInCodeRow
from credit_commons.web.models import WebSessionRow


def commons(settings: Settings, *args: str, code: int = 0) -> Any:
    """``commons … --json`` on ``settings``'s data directory and database; the exit code
    must be ``code``; returns the JSON answer (stdout) or the problem (stderr)."""
    env = {
        "COMMONS_DATA_DIR": str(settings.data_dir),
        "COMMONS_DATABASE_URL": settings.resolved_database_url,
        "COMMONS_ENV": "test",
    }
    if code == 0:
        result = CliRunner().invoke(cli_app, [*args, "--json"], env=env)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)
    # A failure as the entry point maps it: one problem+json line and the exit code.
    errors = io.StringIO()
    with mock.patch.dict(os.environ, env), contextlib.redirect_stderr(errors):
        assert main([*args, "--json"]) == code, errors.getvalue()
    return json.loads(errors.getvalue().strip().splitlines()[-1])


@contextmanager
def new_host(live: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings of an empty instance on another host: a new data directory with only the
    live master key file in it (kept apart from backups), and an empty database."""
    data = tmp_path / "new-host"
    data.mkdir(mode=0o700)
    shutil.copyfile(live.resolved_master_key_file, data / "master.key")
    (data / "master.key").chmod(0o600)
    if live.resolved_database_url.startswith("sqlite"):
        yield make_settings(tmp_path, data_dir=data, database_url=f"sqlite:///{data}/commons.db")
        return
    with fresh_postgres_schema() as url:
        yield make_settings(tmp_path, data_dir=data, database_url=url)


def test_backup_wipe_restore_audit_and_restore_mode(
    client: TestClient, runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "ops")
    erased = register_with_credential(client, admin)
    kept = register_with_credential(client, admin)
    erased_values, kept_values = sealed_values(runtime, erased), sealed_values(runtime, kept)
    answer = client.delete(f"/v1/identities/{erased}", headers={"Authorization": f"Bearer {admin}"})
    assert answer.status_code == 200, answer.text
    worked = commons(settings, "worker", "--once")
    assert worked["checkpoint"] == worked["size"] > 0
    checkpoint = client.get("/v1/log/checkpoint").text

    out = tmp_path / "backups" / "b1"
    out.parent.mkdir()
    manifest = commons(settings, "backup", str(out))
    assert manifest["log"]["size"] == worked["size"]
    assert manifest["log"]["checkpoint_size"] == worked["size"]
    assert manifest["log"]["published_file_copied"] is True
    assert manifest["erasure_epoch"]["epoch"] >= 1
    assert manifest["database"]["rows"]["identities"] == 1  # the erased one is gone
    excluded = {s["secret"] for s in manifest["secrets_excluded"]}
    assert {"master key", "COMMONS_PSEUDONYM_PEPPER"} <= excluded
    assert (out / "log" / "checkpoint").read_text() == checkpoint
    assert {"keys.json", "log/checkpoint", "log/log-published.json"} <= set(manifest["parts"])
    assert any(p.startswith("log/tile/entries/") for p in manifest["parts"])
    keys = json.loads((out / "keys.json").read_text())
    assert keys["signing_keys"], "the log's and the issuer's keys are listed"
    for key in keys["signing_keys"]:
        assert "d" not in key["public_jwk"]  # public parts only
    assert not list(out.parent.glob(".b1.partial-*"))  # written aside, then renamed
    refused = commons(settings, "backup", str(out), code=ExitCode.CONFLICT)
    assert refused["code"] == "resource.conflict"

    with new_host(settings, tmp_path) as target:
        # A database that is not empty is refused: the live one, for instance.
        commons(settings, "restore", str(out), "--yes", code=ExitCode.CONFLICT)
        report = commons(target, "restore", str(out), "--yes")
        assert report["backup_id"] == manifest["backup_id"]
        assert (report["log_size"], report["log_root"]) == (
            manifest["log"]["size"],
            manifest["log"]["root"],
        )
        assert report["mode"] == "backup_restore"
        assert report["published_file"].startswith("installed")
        commons(target, "restore", str(out), "--yes", code=ExitCode.CONFLICT)  # now not empty

        audit = commons(target, "log", "audit")
        assert audit["ok"] is True
        assert (audit["size"], audit["root"]) == (manifest["log"]["size"], manifest["log"]["root"])
        status = commons(target, "restore", "--status")
        assert status["mode"] == "backup_restore"
        assert status["backup_id"] == manifest["backup_id"]
        held = commons(target, "worker", "--once", code=ExitCode.UNAVAILABLE)
        assert held["code"] == "service.restore_mode"
        # The operator's CLI refuses writes too (tests/integration/test_restore_cli.py).
        create = ("identity", "create", "--name", "Asha Rao")
        refused = commons(target, *create, code=ExitCode.UNAVAILABLE)
        assert refused["code"] == "service.restore_mode"

        restored = Runtime.build(target)
        try:
            # The erased subject: nothing of them came back, and what was sealed for them
            # opens with nothing the restored instance holds; the other subject opens.
            with transaction(restored.read_sessions) as session:
                assert session.get(IdentityRow, erased) is None
            assert opens(restored, erased_values) == [False, False, False]
            assert opens(restored, kept_values) == [True, True, True]
            with TestClient(create_app(target, runtime=restored)) as served:
                assert served.get("/v1/log/checkpoint").text == checkpoint
                ready = served.get("/readyz")
                assert ready.status_code == 200
                assert ready.json()["mode"] == "backup_restore"
                assert ready.json()["backup_id"] == manifest["backup_id"]
                assert served.get(f"/v1/identities/{kept}", headers=_bearer(admin)).status_code == (
                    200
                )
                write = served.post("/v1/identities", json=PERSON)
                assert write.status_code == 503
                assert write.headers["content-type"] == "application/problem+json"
                assert write.json()["code"] == "service.restore_mode"
                assert write.json()["mode"] == "backup_restore"
        finally:
            restored.close()

        confirmed = commons(target, "restore", "--confirm", "--yes")
        assert confirmed["mode"] == "normal"
        commons(target, "restore", "--confirm", "--yes", code=ExitCode.CONFLICT)
        after = commons(target, "worker", "--once")
        # Events recorded while held (reads are audited) waited; now they are sequenced.
        assert after["size"] > manifest["log"]["size"]
        entries = commons(
            target,
            "log",
            "entries",
            "--start",
            str(manifest["log"]["size"]),
            "--end",
            str(after["size"]),
        )
        types = [e["entry"]["type"] for e in entries]
        assert types.count("log.restore_confirmed") == 1, types
        assert commons(target, "log", "audit")["ok"] is True
        restored = Runtime.build(target)
        try:
            with TestClient(create_app(target, runtime=restored)) as served:
                assert served.get("/readyz").json()["mode"] == "normal"
                assert served.post("/v1/identities", json=PERSON).status_code == 201
        finally:
            restored.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_backup_whose_part_changed_is_refused(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "b"
    commons(settings, "backup", str(out))
    read_manifest(out)  # as written: every part matches
    keys = out / "keys.json"
    keys.write_text(keys.read_text().replace('"kms"', '"kms" '))
    with pytest.raises(IntegrityError, match=r"keys\.json"):
        read_manifest(out)
    (out / "extra").write_bytes(b"x")
    with new_host(settings, tmp_path) as target:
        refused = commons(target, "restore", str(out), "--yes", code=ExitCode.INTEGRITY)
        assert refused["code"] == "integrity.invalid"
        engine = sa.create_engine(target.resolved_database_url)
        try:
            assert sa.inspect(engine).get_table_names() == []  # nothing was written
        finally:
            engine.dispose()


def test_a_backup_holds_no_live_secret(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    """Sessions' CSRF secrets and offer transaction codes, sign-in codes and the (reversible)
    hashes of offers' transaction codes appear nowhere in the backup's bytes; the manifest
    names each; the backup still restores, without them."""
    now = runtime.clock.now()
    later = now + timedelta(hours=1)
    csrf, tx_code, code_hash = secrets.token_hex(32), secrets.token_hex(8), secrets.token_hex(32)
    tx_code_hash = hashlib.sha256(secrets.token_hex(3).encode()).hexdigest()
    with transaction(runtime.sessions) as session:
        session.add(
            WebSessionRow(
                id_hash=secrets.token_hex(32),
                role="admin",
                subject="ops",
                display_name="Ops",
                csrf_secret=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=later,
                offer_id="off_x",
                offer_tx_code=tx_code,
                offer_tx_until=later,
            )
        )
        session.add(
            SignInCodeRow(
                id_hash=secrets.token_hex(32),
                subject="idt_x",
                code_hash=code_hash,
                attempts=0,
                created_at=now,
                expires_at=later,
            )
        )
        session.add(
            CredentialOfferRow(
                id="off_secret",
                code_hash=secrets.token_hex(32),
                tx_code_hash=tx_code_hash,
                type_name="credit_readiness",
                subject_token="idt_x",
                sealed_claims=b"sealed",
                status="OFFERED",
                expires_at=later,
                created_at=now,
            )
        )
    out = tmp_path / "b"
    manifest = commons(settings, "backup", str(out))
    data = b"".join(p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file())
    for secret in (csrf, tx_code, code_hash, tx_code_hash):
        assert secret.encode() not in data
    assert b"off_secret" in data  # the offer itself is kept
    excluded = {s["secret"] for s in manifest["secrets_excluded"]}
    assert {
        "table web_sessions",
        "table web_signin_codes",
        "column credential_offers.tx_code_hash",
    } <= excluded
    assert manifest["database"]["rows"]["web_sessions"] == 0
    with new_host(settings, tmp_path) as target:
        commons(target, "restore", str(out), "--yes")
        restored = Runtime.build(target)
        try:
            with transaction(restored.read_sessions) as session:
                assert session.scalars(sa.select(WebSessionRow)).all() == []
                assert session.scalars(sa.select(SignInCodeRow)).all() == []
                offer = session.get(CredentialOfferRow, "off_secret")
                assert offer is not None
                assert offer.tx_code_hash == ""  # no code matches: the offer is refused
        finally:
            restored.close()
