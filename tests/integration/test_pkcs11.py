"""The PKCS#11 KMS and key store against a real SoftHSM2 token.

A session fixture runs ``scripts/softhsm-init.sh`` in a temporary directory and points
``SOFTHSM2_CONF`` at it before the library is first loaded (SoftHSM reads it once, at
C_Initialize).  Every test uses its own key label prefix on the shared token.  Without
``softhsm2-util`` these tests fail — unless ``COMMONS_TEST_SKIP_HSM=1`` says to skip them.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pkcs11 import exceptions as p11e
from pkcs11.constants import Attribute, ObjectClass
from pkcs11.types import Session
from pydantic import SecretStr

from credit_commons.core.db import transaction
from credit_commons.core.migrate import upgrade
from credit_commons.core.settings import Settings
from credit_commons.gateway.app import create_app
from credit_commons.identity.auth import issue_admin_token
from credit_commons.keys import service as key_service
from credit_commons.keys.algorithms import KeyType
from credit_commons.keys.errors import KeyExists, KeyNotFound, SignatureInvalid
from credit_commons.keys.jwk import public_key_from_jwk
from credit_commons.keys.models import SigningKeyRow
from credit_commons.keys.pkcs11 import Pkcs11Token
from credit_commons.keys.pkcs11_store import Pkcs11KeyStore, Pkcs11Signer
from credit_commons.runtime import Runtime
from credit_commons.vault import envelope
from credit_commons.vault.errors import DecryptionFailed, KeyVersionRetired, KmsConfigInvalid
from credit_commons.vault.kms import WrappedKey
from credit_commons.vault.pkcs11 import Pkcs11Kms
from credit_commons.vault.service import Vault

ROOT = Path(__file__).resolve().parents[2]
SKIP_HSM = os.environ.get("COMMONS_TEST_SKIP_HSM") == "1"
USER_PIN = "4321"


@dataclass(frozen=True)
class Hsm:
    lib: str
    token: str
    fresh_token: str  # never opened before its test: for the wrong-PIN check
    pin: str


def _init_token(directory: Path, label: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SOFTHSM_TOKEN_LABEL=label, SOFTHSM_SO_PIN="87654321", SOFTHSM_USER_PIN=USER_PIN)
    result = subprocess.run(
        [str(ROOT / "scripts" / "softhsm-init.sh"), str(directory)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/softhsm-init.sh failed: {result.stderr.strip()}")
    return dict(line.split("=", 1) for line in shlex.split(result.stdout))


@pytest.fixture(scope="session")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hsm]:
    """Two SoftHSM2 tokens in a temporary directory, with SOFTHSM2_CONF pointing at them."""
    if SKIP_HSM:
        pytest.skip("COMMONS_TEST_SKIP_HSM=1")
    if shutil.which("softhsm2-util") is None:
        pytest.fail(
            "softhsm2-util is not installed, so the PKCS#11 tests cannot run: install SoftHSM2 "
            "(Debian: apt-get install softhsm2) or set COMMONS_TEST_SKIP_HSM=1"
        )
    directory = tmp_path_factory.mktemp("softhsm")
    values = _init_token(directory, "commons-test")
    assert _init_token(directory, "commons-test") == values  # idempotent
    _init_token(directory, "commons-fresh")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = values["SOFTHSM2_CONF"]
    try:
        yield Hsm(values["COMMONS_PKCS11_LIB"], "commons-test", "commons-fresh", USER_PIN)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


def prefix() -> str:
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
def kms(hsm: Hsm) -> Iterator[Pkcs11Kms]:
    kms = Pkcs11Kms(hsm.lib, hsm.token, hsm.pin, key_label_prefix=prefix(), create_missing=True)
    try:
        yield kms
    finally:
        kms.close()


AAD = b"vault-subject-key\x00sk_1\x00idt_x\x00pii\x001"


def test_an_uninitialised_prefix_is_refused(hsm: Hsm) -> None:
    with pytest.raises(KmsConfigInvalid) as info:
        Pkcs11Kms(hsm.lib, hsm.token, hsm.pin, key_label_prefix=prefix())
    assert "create_missing" in info.value.diagnostics()


def test_wrap_unwrap_rotate_and_retire(hsm: Hsm, kms: Pkcs11Kms) -> None:
    assert kms.kek_id.startswith("pkcs11:t")
    assert kms.versions() == [1]
    old = kms.wrap(bytes(32), aad=AAD)
    assert old.version == 1
    assert old.blob[0] == 1
    assert len(old.blob) == 1 + 12 + 32 + 16
    assert kms.unwrap(old, aad=AAD) == bytes(32)
    for bad_aad, bad in [
        (AAD + b"!", old),
        (AAD, WrappedKey(old.kek_id, 1, old.blob[:-1] + bytes([old.blob[-1] ^ 1]))),
        (AAD, WrappedKey(old.kek_id, 1, old.blob[:20])),
        (AAD, WrappedKey("pkcs11:other", 1, old.blob)),
        (AAD, WrappedKey(old.kek_id, 9, old.blob)),
    ]:
        with pytest.raises(DecryptionFailed) as info:
            kms.unwrap(bad, aad=bad_aad)
        assert type(info.value) is DecryptionFailed
    assert kms.rotate() == 2
    new = kms.wrap(b"k" * 32, aad=AAD)
    assert new.version == 2
    assert kms.unwrap(old, aad=AAD) == bytes(32)  # old versions keep unwrapping
    assert kms.unwrap(new, aad=AAD) == b"k" * 32
    kms.set_min_decrypt_version(2)
    with pytest.raises(KeyVersionRetired):
        kms.unwrap(old, aad=AAD)
    with pytest.raises(KmsConfigInvalid):
        kms.set_min_decrypt_version(1)
    with pytest.raises(KmsConfigInvalid):
        kms.set_min_decrypt_version(3)
    # The minimum is stored on the token: another instance sees it.
    label_prefix = kms.kek_id.removeprefix("pkcs11:")
    again = Pkcs11Kms(hsm.lib, hsm.token, hsm.pin, key_label_prefix=label_prefix)
    try:
        assert again.min_decrypt_version == 2
        assert again.versions() == [1, 2]
        assert again.unwrap(new, aad=AAD) == b"k" * 32
    finally:
        again.close()


def test_rotation_by_another_instance_is_picked_up(hsm: Hsm, kms: Pkcs11Kms) -> None:
    label_prefix = kms.kek_id.removeprefix("pkcs11:")
    operator = Pkcs11Kms(hsm.lib, hsm.token, hsm.pin, key_label_prefix=label_prefix)
    try:
        operator.rotate()
        wrapped = operator.wrap(b"x" * 32, aad=AAD)
    finally:
        operator.close()
    assert kms.unwrap(wrapped, aad=AAD) == b"x" * 32
    assert kms.current_version() == 2


def _attributes(hsm: Hsm, object_class: ObjectClass, label: str) -> dict[Attribute, object]:
    token = Pkcs11Token.connect(hsm.lib, hsm.token, hsm.pin)
    wanted = [
        Attribute.SENSITIVE,
        Attribute.EXTRACTABLE,
        Attribute.NEVER_EXTRACTABLE,
        Attribute.ALWAYS_SENSITIVE,
        Attribute.LOCAL,
        Attribute.TOKEN,
    ]

    def op(session: Session) -> dict[Attribute, object]:
        (obj,) = session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label})
        with pytest.raises(p11e.AttributeSensitive):
            obj[Attribute.VALUE]
        return dict(obj.get_attributes(wanted))

    try:
        return token.run(op)
    finally:
        token.close()


def test_master_keys_and_pepper_are_non_extractable(hsm: Hsm, kms: Pkcs11Kms) -> None:
    kms.rotate()
    label_prefix = kms.kek_id.removeprefix("pkcs11:")
    for label in (f"{label_prefix}-v1", f"{label_prefix}-v2", f"{label_prefix}-pepper"):
        attrs = _attributes(hsm, ObjectClass.SECRET_KEY, label)
        assert attrs[Attribute.SENSITIVE] is True
        assert attrs[Attribute.EXTRACTABLE] is False
        assert attrs[Attribute.NEVER_EXTRACTABLE] is True
        assert attrs[Attribute.ALWAYS_SENSITIVE] is True
        assert attrs[Attribute.LOCAL] is True  # generated inside the token
        assert attrs[Attribute.TOKEN] is True


def test_hmac_inside_the_token(hsm: Hsm, kms: Pkcs11Kms) -> None:
    mac = kms.hmac(b"999999990019", label="aadhaar")
    assert len(mac) == 32
    assert kms.hmac(b"999999990019", label="aadhaar") == mac
    assert kms.hmac(b"999999990019", label="mobile") != mac
    fingerprint = kms.pepper_fingerprint()
    assert len(fingerprint) == 22
    kms.rotate()  # the pepper is not versioned with the master key
    assert kms.hmac(b"999999990019", label="aadhaar") == mac
    other = Pkcs11Kms(hsm.lib, hsm.token, hsm.pin, key_label_prefix=prefix(), create_missing=True)
    try:
        assert other.pepper_fingerprint() != fingerprint
        assert other.hmac(b"999999990019", label="aadhaar") != mac
    finally:
        other.close()


def test_seal_and_open_through_hsm_wrapped_subject_keys(kms: Pkcs11Kms) -> None:
    subject_key = secrets.token_bytes(32)
    ref = envelope.SubjectKeyRef(key_id="sk_01JDEMO0000000000000000000", version=1)
    ctx = envelope.SealContext(subject="idt_abc123def456", purpose="pii", record="name")
    wrapped = kms.wrap(subject_key, aad=AAD)
    sealed = envelope.seal(subject_key, b"Asha Devi", subject_key_ref=ref, context=ctx)
    # Later, in another request: look the key up by the header, unwrap it in the HSM, open.
    assert envelope.parse_header(sealed).subject_key_ref == ref
    assert envelope.open_envelope(sealed, kms.unwrap(wrapped, aad=AAD), context=ctx) == (
        b"Asha Devi"
    )
    # Rotation rewraps the subject key only; the envelope is untouched and still opens.
    kms.rotate()
    rewrapped = kms.wrap(kms.unwrap(wrapped, aad=AAD), aad=AAD)
    assert rewrapped.version == 2
    kms.set_min_decrypt_version(2)
    with pytest.raises(KeyVersionRetired):
        kms.unwrap(wrapped, aad=AAD)
    assert envelope.open_envelope(sealed, kms.unwrap(rewrapped, aad=AAD), context=ctx) == (
        b"Asha Devi"
    )
    # A subject key wrapped for another record does not unwrap here.
    with pytest.raises(DecryptionFailed):
        kms.unwrap(rewrapped, aad=AAD.replace(b"sk_1", b"sk_2"))


def test_concurrent_use_from_threads(kms: Pkcs11Kms) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                key = secrets.token_bytes(32)
                assert kms.unwrap(kms.wrap(key, aad=AAD), aad=AAD) == key
                kms.hmac(key, label="t")
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_lost_session_is_reopened(hsm: Hsm, kms: Pkcs11Kms) -> None:
    wrapped = kms.wrap(b"s" * 32, aad=AAD)
    token = Pkcs11Token.connect(hsm.lib, hsm.token, hsm.pin)
    try:
        token.run(lambda session: session.close())  # logs out and closes, behind our back
    finally:
        token.close()
    assert kms.unwrap(wrapped, aad=AAD) == b"s" * 32


def test_configuration_errors(hsm: Hsm, tmp_path: Path) -> None:
    with pytest.raises(KmsConfigInvalid):
        Pkcs11Kms(tmp_path / "missing.so", hsm.token, hsm.pin, create_missing=True)
    with pytest.raises(KmsConfigInvalid):
        Pkcs11Kms(hsm.lib, "no-such-token", hsm.pin, create_missing=True)
    with pytest.raises(KmsConfigInvalid):
        Pkcs11Kms(hsm.lib, hsm.token, hsm.pin, key_label_prefix="Bad Prefix")
    with pytest.raises(KmsConfigInvalid):
        Pkcs11KeyStore(hsm.lib, hsm.token, hsm.pin, label_prefix="bad_prefix")
    with pytest.raises(KmsConfigInvalid) as info:
        Pkcs11Kms(hsm.lib, hsm.fresh_token, "0000", create_missing=True)
    assert "0000" not in info.value.diagnostics()  # the PIN is never echoed
    assert "refused" in info.value.diagnostics()
    fresh = Pkcs11Kms(hsm.lib, hsm.fresh_token, hsm.pin, create_missing=True)
    try:
        assert fresh.unwrap(fresh.wrap(b"f" * 32, aad=b""), aad=b"") == b"f" * 32
        with pytest.raises(KmsConfigInvalid):  # the open connection does not take another PIN
            Pkcs11Kms(hsm.lib, hsm.fresh_token, "0000")
    finally:
        fresh.close()
    assert "4321" not in repr(fresh)


# -- signing keys in the token ------------------------------------------------------------


@pytest.fixture
def store(hsm: Hsm) -> Iterator[Pkcs11KeyStore]:
    store = Pkcs11KeyStore(hsm.lib, hsm.token, hsm.pin, label_prefix=prefix())
    try:
        yield store
    finally:
        store.close()


@pytest.mark.parametrize("key_type", list(KeyType))
def test_hsm_signing_keys(
    runtime: Runtime, store: Pkcs11KeyStore, hsm: Hsm, key_type: KeyType
) -> None:
    actor = runtime.operator_actor()
    with transaction(runtime.sessions) as session:
        v1 = key_service.create_key(
            session,
            store,
            runtime.clock,
            name="issuer",
            key_type=key_type,
            actor=actor,
            objects=runtime.objects,
        )
        signer = store.signer(session, "issuer")
        row = session.get(SigningKeyRow, 1)
        assert row is not None
        blob, backend = row.private_blob, row.backend
    assert isinstance(signer, Pkcs11Signer)
    assert (v1.version, v1.backend, backend) == (1, "pkcs11", "pkcs11")
    assert blob.startswith("pkcs11:object=")
    assert blob.endswith(";type=private")
    assert signer.alg == key_type.jose_alg
    assert signer.kid == v1.kid
    signature = signer.sign(b"credential payload")
    assert len(signature) == 64
    v1.public_key.verify(key_type.jose_alg, b"credential payload", signature)
    public_key_from_jwk(v1.jwk()).verify(key_type.jose_alg, b"credential payload", signature)
    with pytest.raises(SignatureInvalid):
        v1.public_key.verify(key_type.jose_alg, b"another payload", signature)

    # The private key was generated in the token and cannot leave it.
    label = blob.split(";")[0].removeprefix("pkcs11:object=")
    attrs = _attributes(hsm, ObjectClass.PRIVATE_KEY, label)
    assert attrs[Attribute.SENSITIVE] is True
    assert attrs[Attribute.EXTRACTABLE] is False
    assert attrs[Attribute.NEVER_EXTRACTABLE] is True
    assert attrs[Attribute.LOCAL] is True

    with transaction(runtime.sessions) as session:
        with pytest.raises(KeyExists):
            store.create(session, "issuer", key_type, runtime.clock.now())
        v2 = key_service.rotate_key(
            session, store, runtime.clock, name="issuer", actor=actor, objects=runtime.objects
        )
        newest = store.signer(session, "issuer")
        versions = store.versions(session, "issuer")
    assert v2.version == 2
    assert newest.kid == v2.kid != v1.kid
    assert [v.version for v in versions] == [1, 2]
    second = newest.sign(b"after rotation")
    v2.public_key.verify(key_type.jose_alg, b"after rotation", second)
    with pytest.raises(SignatureInvalid):
        v1.public_key.verify(key_type.jose_alg, b"after rotation", second)
    v1.public_key.verify(key_type.jose_alg, b"credential payload", signature)  # still verifies


def test_hsm_store_refuses_keys_it_does_not_hold(runtime: Runtime, store: Pkcs11KeyStore) -> None:
    with transaction(runtime.sessions) as session:
        runtime.key_store.create(session, "embedded-key", KeyType.ED25519, runtime.clock.now())
        with pytest.raises(KeyExists):
            store.create(session, "embedded-key", KeyType.ED25519, runtime.clock.now())
        with pytest.raises(KeyNotFound):
            store.signer(session, "embedded-key")
        with pytest.raises(KeyNotFound):
            store.signer(session, "missing")
        assert [v.backend for v in store.versions(session)] == ["embedded"]
        # And the other way: the embedded store does not sign with (or rotate) a token key.
        store.create(session, "token-key", KeyType.ED25519, runtime.clock.now())
        with pytest.raises(KeyNotFound, match="not held in the embedded key store"):
            runtime.key_store.signer(session, "token-key")
        with pytest.raises(KeyNotFound):
            runtime.key_store.rotate(session, "token-key", runtime.clock.now())
        assert store.signer(session, "token-key").kid == store.versions(session, "token-key")[0].kid


def test_the_vault_on_the_hsm_seals_rotates_rewraps_and_shreds(
    runtime: Runtime, kms: Pkcs11Kms
) -> None:
    vault = Vault(kms, runtime.clock)
    contexts = [
        {"subject": f"idt_hsmsubject{i:04d}", "purpose": "profile", "record": "r"} for i in range(5)
    ]
    with transaction(runtime.sessions) as session:
        sealed = [
            vault.seal(session, f"value {i}".encode(), **ctx) for i, ctx in enumerate(contexts)
        ]
    assert kms.rotate() == 2
    report = vault.rewrap(runtime.sessions, batch=2)
    assert (report.rewrapped, report.remaining, report.target_version) == (5, 0, 2)
    kms.set_min_decrypt_version(2)
    vault.drop_cache()
    with transaction(runtime.read_sessions) as session:
        for i, (ctx, envelope) in enumerate(zip(contexts, sealed, strict=True)):
            assert vault.open(session, envelope, **ctx) == f"value {i}".encode()
        assert vault.status(session)["subject_keys_by_version"] == {2: 5}
    with transaction(runtime.sessions) as session:
        assert vault.shred(session, contexts[0]["subject"]) == 1
    with transaction(runtime.read_sessions) as session:
        with pytest.raises(DecryptionFailed):
            vault.open(session, sealed[0], **contexts[0])
        assert vault.open(session, sealed[1], **contexts[1]) == b"value 1"


# -- erasure epochs on the token ------------------------------------------------------------


def test_an_erasure_epoch_destroys_the_old_version_on_the_token(
    hsm: Hsm, settings: Settings, tmp_path: Path
) -> None:
    # Issue 13 item 2 with the master key in the HSM: a backup made before an erasure opens
    # nothing of the erased subject once the epoch closed, with the current key material.
    from tests.integration.test_erasure_backups import (  # noqa: PLC0415 - shared story
        backup,
        commons,
        opens,
        register_with_credential,
        restored,
        sealed_values,
    )

    label_prefix = prefix()
    Pkcs11Kms(
        hsm.lib, hsm.token, hsm.pin, key_label_prefix=label_prefix, create_missing=True
    ).close()
    on_hsm = settings.model_copy(
        update={
            "kms": "pkcs11",
            "pkcs11_lib": Path(hsm.lib),
            "pkcs11_token": hsm.token,
            "pkcs11_pin": SecretStr(hsm.pin),
            "pkcs11_key_prefix": label_prefix,
        }
    )
    rt = Runtime.build(on_hsm)
    upgrade(rt.engine)
    try:
        with TestClient(create_app(on_hsm, runtime=rt)) as client:
            with transaction(rt.sessions) as session:
                admin, _ = issue_admin_token(session, rt, "ops")
            erased = register_with_credential(client, admin)
            kept = register_with_credential(client, admin)
            erased_values, kept_values = sealed_values(rt, erased), sealed_values(rt, kept)
            saved = backup(rt, on_hsm, tmp_path / "backup")
            gone = client.delete(
                f"/v1/identities/{erased}", headers={"Authorization": f"Bearer {admin}"}
            )
            assert gone.status_code == 200, gone.text

            closed = commons(on_hsm, "privacy", "close-epoch")
            assert (closed["state"], closed["kek_version"]) == ("closed", 2)
            assert closed["destroyed_versions"] == [1]
            # The version-1 object is gone from the token; version 2 and the pepper remain.
            assert not _labels(hsm, f"{label_prefix}-v1")
            assert _labels(hsm, f"{label_prefix}-v2")
            assert _labels(hsm, f"{label_prefix}-pepper")
            later = register_with_credential(client, admin)
            assert opens(rt, sealed_values(rt, later)) == [True, True, True]
            assert opens(rt, kept_values) == [True, True, True]

        with restored(saved, on_hsm) as old:
            assert opens(old, erased_values) == [False, False, False]
            assert opens(old, kept_values) == [False, False, False]
            restore = ["privacy", "restore", "--from", on_hsm.resolved_database_url, "--yes"]
            commons(on_hsm, *restore, url=old.settings.resolved_database_url)
            assert opens(old, erased_values) == [False, False, False]
            assert opens(old, kept_values) == [True, True, True]
    finally:
        rt.close()


def _labels(hsm: Hsm, label: str) -> list[str]:
    token = Pkcs11Token.connect(hsm.lib, hsm.token, hsm.pin)
    try:
        return token.run(
            lambda s: [str(o[Attribute.LABEL]) for o in s.get_objects({Attribute.LABEL: label})]
        )
    finally:
        token.close()
