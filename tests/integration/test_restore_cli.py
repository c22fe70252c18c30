"""The operator's CLI while the instance is held in backup-restore mode (cli/while_held.py;
docs/operations.md, "Backup and restore"), on SQLite and PostgreSQL: a write is refused with
the API's ``service.restore_mode`` (exit 9) and writes nothing; an allowed read runs and
records nothing either (not even the public URL among the issuer identifiers); after
``commons restore --confirm`` the write runs."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from unittest import mock

import sqlalchemy as sa
from tests.integration.test_backup_restore import commons

from credit_commons.cli import main
from credit_commons.core.db import transaction
from credit_commons.core.errors import ExitCode
from credit_commons.core.facts import PlatformFactRow
from credit_commons.core.settings import Settings
from credit_commons.identity.models import IdentityRow
from credit_commons.issuer.identifiers import FACT_PREFIX
from credit_commons.ledger.restore_mode import enter_restore_mode, restore_hold
from credit_commons.runtime import Runtime

NEW_URL = "https://restored.example"


def _identities(rt: Runtime) -> int:
    with transaction(rt.read_sessions) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(IdentityRow)) or 0


def _issuer_identifiers(rt: Runtime) -> set[str]:
    with transaction(rt.read_sessions) as session:
        found = session.scalars(
            sa.select(PlatformFactRow.value).where(PlatformFactRow.key.startswith(FACT_PREFIX))
        )
        return set(found)


def test_the_cli_refuses_writes_while_held_and_runs_them_after_the_confirmation(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    commons(settings, "log", "audit")  # the log's identity, made as any instance has it
    _hold(runtime, "bk_cli")
    with transaction(runtime.read_sessions) as session:
        hold = restore_hold(session)
    assert hold is not None
    before = _identities(runtime)
    create = ("identity", "create", "--name", "Asha Rao")
    with mock.patch.dict(os.environ, {"COMMONS_PUBLIC_URL": NEW_URL}):
        refused = commons(settings, *create, code=ExitCode.UNAVAILABLE)
        assert refused["code"] == "service.restore_mode"
        assert refused["detail"] == hold.error().detail  # the API's own refusal
        assert (refused["mode"], refused["backup_id"]) == ("backup_restore", "bk_cli")
        assert _identities(runtime) == before
        # Refused before anything ran, as the worker's own check does.
        assert commons(settings, "log", "sequence", code=ExitCode.UNAVAILABLE)["code"] == (
            "service.restore_mode"
        )
        # What the operator checks with still runs, and writes nothing.
        assert commons(settings, "log", "audit")["ok"] is True
        assert commons(settings, "restore", "--status")["backup_id"] == "bk_cli"
        assert NEW_URL not in _issuer_identifiers(runtime)

        confirmed = commons(settings, "restore", "--confirm", "--yes")
        assert confirmed["mode"] == "normal"
        created = commons(settings, *create)
        assert created["identity_token"]
        assert _identities(runtime) == before + 1
        assert NEW_URL in _issuer_identifiers(runtime)  # recorded again once confirmed


# The allowed reads that take no argument.
_READS_WITHOUT_ARGUMENTS = [
    ("db", "current"),
    ("anchor", "status"),
    ("log", "audit"),
    ("log", "status"),
    ("vault", "status"),
    ("keys", "list"),
    ("committee", "show"),
    ("issuer", "type", "list"),
    ("issuer", "trust", "list"),
    ("verify", "trust", "show"),
    ("verify", "trust", "pins"),
    ("verify", "policy", "list"),
    ("privacy", "epochs"),
    ("rules", "list"),
    ("zk", "statements", "list"),
    ("service-token", "keys"),
]


def _contents(rt: Runtime) -> dict[str, list[str]]:
    """Every row of every table, as text: an insert, update or delete anywhere changes it."""
    with transaction(rt.read_sessions) as session:
        metadata = sa.MetaData()
        metadata.reflect(session.connection())
        return {
            name: sorted(repr(tuple(row)) for row in session.execute(sa.select(table)))
            for name, table in metadata.tables.items()
        }


def _run(settings: Settings, *args: str) -> tuple[int, str]:
    """``commons … --json`` as the entry point runs it: the exit code and stderr."""
    env = {
        "COMMONS_DATA_DIR": str(settings.data_dir),
        "COMMONS_DATABASE_URL": settings.resolved_database_url,
        "COMMONS_ENV": "test",
    }
    errors = io.StringIO()
    with (
        mock.patch.dict(os.environ, env),
        contextlib.redirect_stderr(errors),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        code = main([*args, "--json"])
    return code, errors.getvalue()


def _hold(rt: Runtime, backup_id: str = "bk_reads") -> None:
    with transaction(rt.sessions) as session:
        enter_restore_mode(
            session,
            backup_id=backup_id,
            manifest_sha256="0" * 64,
            log_size=0,
            log_root="",
            now=rt.clock.now(),
        )


def test_allowed_reads_run_while_held_and_write_nothing(
    runtime: Runtime, settings: Settings
) -> None:
    # Each read runs once on the live instance first (what it makes on its first use — the
    # log's identity, a key — an instance restored from a backup already has).
    for args in _READS_WITHOUT_ARGUMENTS:
        assert _run(settings, *args)[0] == 0, args
    _hold(runtime)
    before = _contents(runtime)
    for args in _READS_WITHOUT_ARGUMENTS:
        code, errors = _run(settings, *args)
        assert code == 0, (args, errors)
    assert _contents(runtime) == before


def test_a_read_that_would_write_while_held_is_refused_by_the_database(
    runtime: Runtime, settings: Settings
) -> None:
    # Held before the log's identity was ever made: `log audit` would record the log's
    # origin on its first use. The connection refuses the write (core/db_read_only.py) and
    # the command answers as any write while held, having written nothing.
    _hold(runtime)
    before = _contents(runtime)
    code, errors = _run(settings, "log", "audit")
    assert code == ExitCode.UNAVAILABLE
    assert json.loads(errors.strip().splitlines()[-1])["code"] == "service.restore_mode"
    assert _contents(runtime) == before
