"""A server already running on the empty instance while `commons restore` loads a backup
into it (its schema gate waiting for the migration): it never accepts a write — the schema
reaches head in the transaction that writes the backup-restore hold (backup/load.py), so
while the erasures are applied and the log audited, writes are 503 service.restore_mode."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from unittest import mock

from fastapi.testclient import TestClient
from tests.integration.test_backup_restore import commons, new_host
from tests.integration.test_erasure_backups import PERSON

from credit_commons.backup import load as load_mod
from credit_commons.core.migrate import SchemaGate
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.runtime import Runtime


def _wait_for_the_gate(gate: SchemaGate) -> None:
    while not (gate.is_open or gate.due()):  # its next look at the database
        threading.Event().wait(0.05)


def test_a_server_on_the_empty_instance_accepts_no_write_mid_restore(
    client: TestClient, runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    commons(settings, "worker", "--once")
    out = tmp_path / "backups" / "b1"
    out.parent.mkdir()
    commons(settings, "backup", str(out))
    with new_host(settings, tmp_path) as target:
        served_runtime = Runtime.build(target)
        seen: dict[str, Any] = {}
        real = load_mod.restore_from
        app = create_app(target, runtime=served_runtime)
        gate: SchemaGate = app.state.schema_gate
        try:
            with TestClient(app, raise_server_exceptions=False) as served:
                before = served.post("/v1/identities", json=PERSON)
                assert before.json()["code"] == "service.not_migrated"

                def during(rt: Any, source: Any) -> Any:
                    # The data is loaded and at head; the erasures are not applied yet.
                    _wait_for_the_gate(gate)
                    written = served.post("/v1/identities", json=PERSON)
                    seen["during"] = (written.status_code, written.json()["code"])
                    return real(rt, source)

                with mock.patch.object(load_mod, "restore_from", during):
                    commons(target, "restore", str(out), "--yes")
                _wait_for_the_gate(gate)
                after = served.post("/v1/identities", json=PERSON)
                seen["after"] = (after.status_code, after.json()["code"])
        finally:
            served_runtime.close()
    assert seen == {
        "during": (503, "service.restore_mode"),
        "after": (503, "service.restore_mode"),
    }
