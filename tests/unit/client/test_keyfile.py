"""The lender's key file: mode 0600, never overwritten, refused when others may read it or
when it is not a key this client wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from credit_commons.client import KeyFileExists, KeyFileInvalid, KeyFileUnprotected, LenderKey
from credit_commons.core.files import PathNotFound
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.jwk import public_key_from_jwk, thumbprint


@pytest.mark.parametrize("key_type", list(KeyType))
def test_created_0600_and_loaded_back(tmp_path: Path, key_type: KeyType) -> None:
    path = tmp_path / "keys" / "lender.json"
    made = LenderKey.create(path, key_type)
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["lender.json"]  # no temp file left
    loaded = LenderKey.load(path)
    assert loaded.kid == made.kid == thumbprint(made.key.public_key)
    assert loaded.key.public_key == made.key.public_key
    jwk = loaded.public_jwk()
    assert "d" not in jwk
    assert jwk["kid"] == made.kid
    assert jwk["alg"] == made.key.alg
    assert public_key_from_jwk(jwk) == made.key.public_key
    assert made.kid in repr(made)
    assert json.loads(path.read_text())["jwk"]["d"] not in repr(made)


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "lender.json"
    first = LenderKey.create(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileExists):
        LenderKey.create(path)
    assert path.read_bytes() == before
    assert LenderKey.load(path).kid == first.kid
    other = tmp_path / "notes.txt"
    other.write_text("not a key")
    with pytest.raises(KeyFileExists):
        LenderKey.create(other)
    assert other.read_text() == "not a key"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lender.json", "notes.txt"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "lender.json"
    LenderKey.create(path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileUnprotected) as refused:
        LenderKey.load(path)
    assert refused.value.hint == f"chmod 600 {path}"
    os.chmod(path, 0o400)
    LenderKey.load(path)


def test_files_that_are_not_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "lender.json"
    made = LenderKey.create(path)
    document = json.loads(path.read_text())
    other = LenderKey.generate()
    for bad in (
        b"not json",
        b"[]",
        json.dumps({**document, "format": "v0"}).encode(),
        json.dumps({**document, "jwk": other.public_jwk()}).encode(),  # no private part
        json.dumps({**document, "kid": other.kid}).encode(),  # kid of another key
    ):
        target = tmp_path / f"bad-{len(list(tmp_path.iterdir()))}.json"
        target.write_bytes(bad)
        os.chmod(target, 0o600)
        with pytest.raises(KeyFileInvalid):
            LenderKey.load(target)
    with pytest.raises(PathNotFound):
        LenderKey.load(tmp_path / "missing.json")
    assert LenderKey.load(path).kid == made.kid
