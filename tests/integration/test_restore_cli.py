"""The operator's CLI while the instance is held in backup-restore mode (cli/while_held.py;
docs/operations.md, "Backup and restore"), on SQLite and PostgreSQL: a write is refused with
the API's ``service.restore_mode`` (exit 9) and writes nothing; an allowed read runs and
records nothing either (not even the public URL among the issuer identifiers); after
``commons restore --confirm`` the write runs."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import sqlalchemy as sa
from tests.integration.test_backup_restore import commons

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
    with transaction(runtime.sessions) as session:
        enter_restore_mode(
            session,
            backup_id="bk_cli",
            manifest_sha256="0" * 64,
            log_size=0,
            log_root="",
            now=runtime.clock.now(),
        )
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
