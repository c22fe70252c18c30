"""Erasure reaches backups (issue 13 item 2), on SQLite and PostgreSQL.

A backup is taken (a copy of the SQLite files; ``pg_dump`` of the test schema), a subject
is erased, the erasure epoch is closed, and the backup is restored beside the live database
and opened with the *current* key material — the KMS as it is now, and the subject keys as
the live database holds them now (``commons privacy restore --from``, which also applies
the erasures made since the backup): nothing sealed for the erased subject opens, and
everything of every other subject still does.  Before the
epoch is closed the same restore does open the erased subject's data, with the backup's own
subject keys: that is what the epoch changes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.conftest import POSTGRES_URL
from tests.factories import readiness_claims
from typer.testing import CliRunner

from credit_commons.cli import app as cli_app
from credit_commons.core.db import transaction
from credit_commons.core.settings import Settings
from credit_commons.identity.auth import issue_admin_token
from credit_commons.identity.models import IdentityRow
from credit_commons.issuer.models import CredentialRow
from credit_commons.keys.algorithms import KeyType, PrivateKey
from credit_commons.keys.jwk import public_key_to_jwk
from credit_commons.runtime import Runtime
from credit_commons.vault.errors import DecryptionFailed

PERSON = {
    "roles": ["citizen", "business"],
    "profile": {"name": "Sunita Devi", "phone": "+919800000001", "address": "4 Mall Road"},
    "attributes": {"birth_date": "1971-02-03", "income_annual": 310000, "state": "HP"},
}


def sealed_values(rt: Runtime, token: str) -> list[tuple[bytes, dict[str, str]]]:
    """Every sealed value of ``token`` in ``rt``'s database, with the context it opens in."""
    out: list[tuple[bytes, dict[str, str]]] = []
    with transaction(rt.read_sessions) as session:
        row = session.get(IdentityRow, token)
        assert row is not None
        for purpose, sealed in (
            ("profile", row.profile_sealed),
            ("attributes", row.attributes_sealed),
        ):
            assert sealed is not None
            context = {
                "subject": token,
                "purpose": purpose,
                "record": f"identity:{token}:{purpose}",
            }
            out.append((bytes(sealed), context))
        for credential in session.scalars(
            sa.select(CredentialRow).where(CredentialRow.subject_token == token)
        ):
            context = {"subject": token, "purpose": "credentials", "record": credential.id}
            out.append((bytes(credential.sealed), context))
    assert len(out) == 3
    return out


def opens(rt: Runtime, values: list[tuple[bytes, dict[str, str]]]) -> list[bool]:
    rt.vault.drop_cache()
    results = []
    with transaction(rt.read_sessions) as session:
        for sealed, context in values:
            try:
                rt.vault.open(session, sealed, **context)
                results.append(True)
            except DecryptionFailed:
                results.append(False)
    return results


# -- backups and restores -------------------------------------------------------------------


def connection_args(parsed: sa.engine.URL) -> list[str]:
    host, port = parsed.host or "127.0.0.1", str(parsed.port or 5432)
    return ["-h", host, "-p", port, "-U", parsed.username or "postgres"]


def backup(rt: Runtime, settings: Settings, target: Path) -> Any:
    """A backup as an operator takes it: the SQLite files copied, or a pg_dump."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        target.mkdir()
        for name in (path.name, path.name + "-wal"):
            if (path.parent / name).exists():
                shutil.copyfile(path.parent / name, target / name)
        return target / path.name
    parsed = sa.engine.make_url(url)
    schema = parsed.query["options"].split("search_path=")[1]
    dump = subprocess.run(
        [
            "pg_dump",
            *connection_args(parsed),
            "-n",
            schema,
            "--no-owner",
            parsed.database or "test",
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    return schema, dump.stdout


@contextmanager
def restored(saved: Any, settings: Settings) -> Iterator[Runtime]:
    """A runtime over the restored backup, with the live data directory's key material."""
    if isinstance(saved, Path):
        url = f"sqlite:///{saved}"
        rt = Runtime.build(settings.model_copy(update={"database_url": url}))
        try:
            yield rt
        finally:
            rt.close()
        return
    schema, text = saved
    fresh = schema + "_r"
    # The dump names its schema; restoring into a fresh one renames it (the name is random
    # hex, so it occurs nowhere else in the dump).
    parsed = sa.engine.make_url(settings.resolved_database_url)
    subprocess.run(
        [
            "psql",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            *connection_args(parsed),
            parsed.database or "test",
        ],
        input=text.replace(schema, fresh),
        capture_output=True,
        check=True,
        text=True,
    )
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{fresh}"
    rt = Runtime.build(settings.model_copy(update={"database_url": url}))
    try:
        yield rt
    finally:
        rt.close()
        admin = sa.create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{fresh}" CASCADE'))
        admin.dispose()


# -- the story ------------------------------------------------------------------------------


def register_with_credential(client: TestClient, admin: str) -> str:
    token = str(client.post("/v1/identities", json=PERSON).json()["identity_token"])
    holder = PrivateKey.generate(KeyType.ED25519)
    issued = client.post(
        "/v1/credentials",
        json={
            "type": "CreditReadinessCredential",
            "subject": token,
            "claims": readiness_claims(token),
            "holder_jwk": public_key_to_jwk(holder.public_key),
        },
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert issued.status_code == 201, issued.text
    return token


def commons(settings: Settings, *args: str, url: str | None = None) -> Any:
    """``commons … --json`` with the test's data directory, on ``url`` (default: live)."""
    env = {
        "COMMONS_DATA_DIR": str(settings.data_dir),
        "COMMONS_DATABASE_URL": url or settings.resolved_database_url,
        "COMMONS_ENV": "test",
        "COMMONS_KMS": settings.kms,
    }
    if settings.kms == "pkcs11":
        assert settings.pkcs11_pin is not None
        env.update(
            COMMONS_PKCS11_LIB=str(settings.pkcs11_lib),
            COMMONS_PKCS11_TOKEN=str(settings.pkcs11_token),
            COMMONS_PKCS11_PIN=settings.pkcs11_pin.get_secret_value(),
            COMMONS_PKCS11_KEY_PREFIX=settings.pkcs11_key_prefix,
        )
    result = CliRunner().invoke(cli_app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_backup_restored_after_the_epoch_closes_opens_nothing_of_the_erased(
    client: TestClient, runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    with transaction(runtime.sessions) as session:
        admin, _ = issue_admin_token(session, runtime, "ops")
    erased = register_with_credential(client, admin)
    kept = register_with_credential(client, admin)
    erased_values, kept_values = sealed_values(runtime, erased), sealed_values(runtime, kept)
    # Signing keys in use before the epoch (the issuer's, the log's) must sign after it.
    client.post("/v1/identities", json=PERSON)

    saved = backup(runtime, settings, tmp_path / "backup")
    answer = client.delete(f"/v1/identities/{erased}", headers={"Authorization": f"Bearer {admin}"})
    assert answer.status_code == 200, answer.text
    receipt = answer.json()
    assert receipt["erased"] is True
    epoch, after = receipt["epoch"], datetime.fromisoformat(receipt["unreadable_in_backups_after"])
    opened_at = datetime.fromisoformat(receipt["epoch_opened_at"])
    assert 0 < (after - opened_at).total_seconds() <= settings.erasure_epoch <= 24 * 3600

    # Before the epoch closes, the backup with today's key material still opens the subject:
    # the receipt says so (unreadable only *after* the epoch), and this is why.
    with restored(saved, settings) as old:
        assert opens(old, erased_values) == [True, True, True]

    closed = commons(settings, "privacy", "close-epoch")
    assert closed["epoch"] == epoch
    assert closed["state"] == "closed"
    assert closed["destroyed_versions"] == [1]

    # The serving process, whose KMS still holds version 1 in memory, learns of the new
    # version through the database: what it seals now is wrapped under version 2.
    later = register_with_credential(client, admin)
    # A signing key made by another process after the epoch signs here (and vice versa).
    commons(settings, "keys", "create", "after-epoch")
    with transaction(runtime.sessions) as session:
        assert runtime.key_store.signer(session, "after-epoch").sign(b"x")

    with restored(saved, settings) as old:
        # The backup's own subject keys are all under the destroyed version: nothing opens.
        assert opens(old, erased_values) == [False, False, False]
        assert opens(old, kept_values) == [False, False, False]
        # With the current key material, every living subject opens, the erased one never.
        url = old.settings.resolved_database_url
        restore = ["privacy", "restore", "--from", settings.resolved_database_url, "--yes"]
        counts = commons(settings, *restore, url=url)
        assert counts == {
            "keys_updated": 5,
            "keys_deleted": 3,  # the erased subject's three keys
            "epochs_copied": 2,
            "erasures_applied": 1,  # the erased subject's identity, links, tokens
            "exclusions_copied": 0,  # it never took part in reputation
        }
        assert opens(old, erased_values) == [False, False, False]
        assert opens(old, kept_values) == [True, True, True]
        with transaction(old.read_sessions) as session:
            assert session.get(IdentityRow, erased) is None  # erased again, not resurrected
            assert session.get(IdentityRow, kept) is not None

    # A fresh process (nothing in memory) opens everything of the living, new and old.
    fresh = Runtime.build(settings)
    try:
        assert opens(fresh, kept_values) == [True, True, True]
        assert opens(fresh, sealed_values(fresh, later)) == [True, True, True]
        assert opens(fresh, erased_values) == [False, False, False]
        with transaction(fresh.read_sessions) as session:
            status = fresh.vault.status(session)
            assert fresh.key_store.signer(session, "after-epoch").sign(b"x")
        assert status["versions"] == [2]
        assert status["min_decrypt_version"] == 2
        assert set(status["subject_keys_by_version"]) == {2}
    finally:
        fresh.close()
    # The issuer and the log keep signing: a checkpoint over everything, and an audit.
    commons(settings, "worker", "--once")
    commons(settings, "log", "audit")
    # The key file no longer holds version 1's key.
    key_file = json.loads(settings.resolved_master_key_file.read_text())
    assert [("key" in v, "destroyed_at" in v) for v in key_file["versions"]] == [
        (False, True),
        (True, False),
    ]
