from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from credit_commons.core.encoding import b64url_encode
from credit_commons.core.errors import ConfigurationError
from credit_commons.keys.errors import KeyDecryptionFailed
from credit_commons.keys.master import MasterKeyring

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_created_on_first_run_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "var" / "master.key"
    ring = MasterKeyring.load_or_create(path, now=NOW)
    assert ring.development
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = MasterKeyring.load_or_create(path, now=NOW)
    assert again.versions == ring.versions
    assert b64url_encode(ring.versions[1]) not in repr(ring)
    assert ring.versions[1].hex() not in repr(ring)


def test_refuses_group_or_world_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    MasterKeyring.create(path, development=False, now=NOW)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError) as info:
        MasterKeyring.load(path)
    assert "chmod 600" in info.value.diagnostics()


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        MasterKeyring.load(tmp_path / "nope.key")
    assert "init-master" in info.value.diagnostics()
    bad = tmp_path / "bad.key"
    bad.write_text(json.dumps({"format": "other"}))
    os.chmod(bad, 0o600)
    with pytest.raises(ConfigurationError):
        MasterKeyring.load(bad)
    with pytest.raises(ConfigurationError):
        MasterKeyring.create(bad, development=True, now=NOW)


def test_wrap_binds_associated_data_and_fails_opaquely(tmp_path: Path) -> None:
    ring = MasterKeyring.create(tmp_path / "m.key", development=True, now=NOW)
    token = ring.wrap(b"secret", purpose="p", aad=b"record-1")
    assert token.startswith("mk1.1.")
    assert ring.unwrap(token, purpose="p", aad=b"record-1") == b"secret"
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad_token, aad, purpose in [
        (token, b"record-2", "p"),  # moved to another record
        (token, b"record-1", "q"),  # used for another purpose
        (tampered, b"record-1", "p"),
        ("mk1.9." + token.split(".", 2)[2], b"record-1", "p"),  # unknown version
        ("garbage", b"record-1", "p"),
    ]:
        with pytest.raises(KeyDecryptionFailed) as info:
            ring.unwrap(bad_token, purpose=purpose, aad=aad)
        assert info.value.detail == "Stored key cannot be opened"


def test_rotation_keeps_old_versions_opening(tmp_path: Path) -> None:
    path = tmp_path / "m.key"
    ring = MasterKeyring.create(path, development=False, now=NOW)
    old = ring.wrap(b"v1 data", purpose="p", aad=b"a")
    rotated = ring.rotate(NOW)
    assert rotated.current_version == 2
    new = rotated.wrap(b"v2 data", purpose="p", aad=b"a")
    assert new.startswith("mk1.2.")
    reloaded = MasterKeyring.load(path)
    assert reloaded.unwrap(old, purpose="p", aad=b"a") == b"v1 data"
    assert reloaded.unwrap(new, purpose="p", aad=b"a") == b"v2 data"
    assert not reloaded.development
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*.tmp"))
