"""LocalKms: wrap/unwrap over the master key file, rotation, retirement, pepper MACs."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from credit_commons.core.clock import FixedClock
from credit_commons.core.encoding import b64url_encode
from credit_commons.core.errors import ValidationError
from credit_commons.core.pseudonym import Pseudonymizer
from credit_commons.keys.master import MasterKeyring
from credit_commons.vault.errors import DecryptionFailed, KeyVersionRetired, KmsConfigInvalid
from credit_commons.vault.kms import Kms, LocalKms, WrappedKey

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DATA_KEY = bytes(range(32))
AAD = b"vault-subject-key\x00sk_1\x00idt_x\x00pii\x001"


def make_kms(tmp_path: Path, **kwargs: object) -> LocalKms:
    ring = MasterKeyring.load_or_create(tmp_path / "master.key", now=NOW)
    return LocalKms(ring, clock=FixedClock(NOW), **kwargs)  # type: ignore[arg-type]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_wrap_unwrap_round_trip_is_bound_to_aad(tmp_path: Path) -> None:
    kms: Kms = make_kms(tmp_path)
    wrapped = kms.wrap(DATA_KEY, aad=AAD)
    assert wrapped.version == 1
    assert wrapped.kek_id == kms.kek_id
    assert wrapped.kek_id.startswith("local:")
    assert wrapped.blob[0] == 1
    assert len(wrapped.blob) == 1 + 12 + 32 + 16
    assert DATA_KEY not in wrapped.blob
    assert kms.unwrap(wrapped, aad=AAD) == DATA_KEY
    with pytest.raises(DecryptionFailed):
        kms.unwrap(wrapped, aad=AAD + b"x")


def test_every_tamper_fails_opaquely(tmp_path: Path) -> None:
    kms = make_kms(tmp_path)
    wrapped = kms.wrap(DATA_KEY, aad=AAD)
    blobs = [wrapped.blob[:n] for n in range(len(wrapped.blob))]
    for index in range(len(wrapped.blob)):
        flipped = bytearray(wrapped.blob)
        flipped[index] ^= 0x01
        blobs.append(bytes(flipped))
    for blob in blobs:
        with pytest.raises(DecryptionFailed) as info:
            kms.unwrap(WrappedKey(wrapped.kek_id, 1, blob), aad=AAD)
        assert type(info.value) is DecryptionFailed
    with pytest.raises(DecryptionFailed):
        kms.unwrap(WrappedKey("local:someone-else", 1, wrapped.blob), aad=AAD)
    with pytest.raises(DecryptionFailed):  # relabelled as a version that does not exist
        kms.unwrap(WrappedKey(wrapped.kek_id, 7, wrapped.blob), aad=AAD)


def test_another_key_file_cannot_unwrap(tmp_path: Path) -> None:
    a = make_kms(tmp_path / "a")
    b = make_kms(tmp_path / "b")
    assert a.kek_id != b.kek_id
    wrapped = a.wrap(DATA_KEY, aad=AAD)
    with pytest.raises(DecryptionFailed):
        b.unwrap(WrappedKey(b.kek_id, 1, wrapped.blob), aad=AAD)


def test_rotation_keeps_old_versions_unwrapping_and_mode_0600(tmp_path: Path) -> None:
    kms = make_kms(tmp_path)
    key_file = tmp_path / "master.key"
    kek_id = kms.kek_id
    old = kms.wrap(DATA_KEY, aad=AAD)
    assert kms.rotate() == 2
    assert mode(key_file) == 0o600
    new = kms.wrap(DATA_KEY, aad=AAD)
    assert (old.version, new.version) == (1, 2)
    assert kms.versions() == [1, 2]
    assert kms.current_version() == 2
    assert kms.kek_id == kek_id  # stable across rotation
    assert kms.unwrap(old, aad=AAD) == kms.unwrap(new, aad=AAD) == DATA_KEY
    # The file still loads as a master key file, with both versions.
    assert sorted(MasterKeyring.load(key_file).versions) == [1, 2]


def test_min_decrypt_version_enforced_and_persisted_in_key_file(tmp_path: Path) -> None:
    kms = make_kms(tmp_path)
    key_file = tmp_path / "master.key"
    old = kms.wrap(DATA_KEY, aad=AAD)
    kms.rotate()
    new = kms.wrap(DATA_KEY, aad=AAD)
    kms.set_min_decrypt_version(2)
    assert kms.min_decrypt_version == 2
    with pytest.raises(KeyVersionRetired) as info:
        kms.unwrap(old, aad=AAD)
    assert isinstance(info.value, DecryptionFailed)  # still the one error for callers
    assert info.value.code == "vault.key_version_retired"
    assert kms.unwrap(new, aad=AAD) == DATA_KEY
    assert json.loads(key_file.read_bytes())["min_decrypt_version"] == 2
    assert mode(key_file) == 0o600
    # A new process sees it; rotating again keeps it in the key file.
    again = LocalKms(MasterKeyring.load(key_file), clock=FixedClock(NOW))
    assert again.min_decrypt_version == 2
    again.rotate()
    assert json.loads(key_file.read_bytes())["min_decrypt_version"] == 2
    assert LocalKms(MasterKeyring.load(key_file)).min_decrypt_version == 2


def test_min_decrypt_version_in_a_state_file(tmp_path: Path) -> None:
    state = tmp_path / "kms-state.json"
    kms = make_kms(tmp_path, state_file=state)
    before = (tmp_path / "master.key").read_bytes()
    kms.rotate()
    kms.set_min_decrypt_version(2)
    assert json.loads(state.read_bytes()) == {"min_decrypt_version": 2}
    assert mode(state) == 0o600
    assert "min_decrypt_version" not in json.loads((tmp_path / "master.key").read_bytes())
    assert before != (tmp_path / "master.key").read_bytes()  # the rotation itself
    ring = MasterKeyring.load(tmp_path / "master.key")
    assert LocalKms(ring, state).min_decrypt_version == 2


@pytest.mark.parametrize("bad", [0, -1, 3, True, "2"])
def test_min_decrypt_version_must_be_a_held_version(tmp_path: Path, bad: object) -> None:
    kms = make_kms(tmp_path)
    kms.rotate()
    with pytest.raises(KmsConfigInvalid):
        kms.set_min_decrypt_version(bad)  # type: ignore[arg-type]
    assert kms.min_decrypt_version == 1


def test_min_decrypt_version_only_goes_up(tmp_path: Path) -> None:
    kms = make_kms(tmp_path)
    kms.rotate()
    kms.set_min_decrypt_version(2)
    kms.set_min_decrypt_version(2)  # idempotent
    with pytest.raises(KmsConfigInvalid):
        kms.set_min_decrypt_version(1)


def test_malformed_state_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    ring = MasterKeyring.load_or_create(tmp_path / "master.key", now=NOW)
    for content in (b"not json", b"[]", b'{"min_decrypt_version": 5}'):
        state.write_bytes(content)
        with pytest.raises(KmsConfigInvalid):
            LocalKms(ring, state)


def test_rotation_by_another_process_is_picked_up(tmp_path: Path) -> None:
    server = make_kms(tmp_path)
    operator = LocalKms(MasterKeyring.load(tmp_path / "master.key"), clock=FixedClock(NOW))
    operator.rotate()
    wrapped = operator.wrap(DATA_KEY, aad=AAD)
    assert wrapped.version == 2
    assert server.unwrap(wrapped, aad=AAD) == DATA_KEY  # reloads the file on an unknown version
    assert server.current_version() == 2


def test_hmac_is_stable_and_label_separated(tmp_path: Path) -> None:
    kms = make_kms(tmp_path)
    mac = kms.hmac(b"123456789012", label="aadhaar")
    assert len(mac) == 32
    assert kms.hmac(b"123456789012", label="aadhaar") == mac
    assert kms.hmac(b"123456789012", label="mobile") != mac
    assert kms.hmac(b"123456789013", label="aadhaar") != mac
    # The NUL after the label keeps (label, data) pairs apart.
    assert kms.hmac(b"x", label="ab") != kms.hmac(b"bx", label="a")
    fingerprint = kms.pepper_fingerprint()
    assert len(fingerprint) == 22
    kms.rotate()  # the pepper comes from version 1: rotation does not change pseudonyms
    assert kms.hmac(b"123456789012", label="aadhaar") == mac
    assert kms.pepper_fingerprint() == fingerprint
    other = make_kms(tmp_path / "other")
    assert other.hmac(b"123456789012", label="aadhaar") != mac
    assert other.pepper_fingerprint() != fingerprint


@pytest.mark.parametrize(
    "label", ["", "Aadhaar", "with space", "a\x00b", "x" * 65, "1abc", "aadhaar\n"]
)
def test_hmac_label_is_validated(tmp_path: Path, label: str) -> None:
    with pytest.raises(ValidationError):
        make_kms(tmp_path).hmac(b"x", label=label)


def test_explicit_pepper(tmp_path: Path) -> None:
    pepper = bytes(range(100, 140))
    kms = make_kms(tmp_path, pepper=pepper)
    derived = make_kms(tmp_path)
    assert kms.hmac(b"x", label="pan") != derived.hmac(b"x", label="pan")
    # The same fingerprint as the platform's Pseudonymizer computes for the same pepper, and
    # the same MAC construction as its pseudonyms.
    assert kms.pepper_fingerprint() == Pseudonymizer(pepper).fingerprint()
    pseudonym = Pseudonymizer(pepper).pseudonym("pan", "ABCDE1234F")
    assert pseudonym == "p1:" + b64url_encode(kms.hmac(b"ABCDE1234F", label="pan"))
    with pytest.raises(KmsConfigInvalid):
        make_kms(tmp_path, pepper=b"short")


def test_repr_shows_no_key_material(tmp_path: Path) -> None:
    kms = make_kms(tmp_path)
    ring = MasterKeyring.load(tmp_path / "master.key")
    text = repr(kms)
    assert ring.versions[1].hex() not in text
    assert "LocalKms(local:" in text


def test_key_file_permissions_are_checked_on_refresh(tmp_path: Path) -> None:
    kms = make_kms(tmp_path)
    os.chmod(tmp_path / "master.key", 0o644)
    with pytest.raises(Exception, match="accessible to other users"):
        kms.refresh()
