"""``Pkcs11KeyStore``: signing keys generated and kept inside a PKCS#11 token.

The :class:`~credit_commons.keys.store.KeyStore` interface over an HSM.  Each key version is
a key pair generated *inside* the token; the private key is CKA_SENSITIVE, not
CKA_EXTRACTABLE and may only sign.  The database row (``signing_keys``, backend ``pkcs11``)
holds the public JWK and, in ``private_blob``, only a reference to the token object — an
RFC 7512 PKCS#11 URI ``pkcs11:object=<label>;id=<random id>;type=private`` — never key
material.

Mechanisms (PKCS#11 v3.0 curr.): Ed25519 keys with CKM_EC_EDWARDS_KEY_PAIR_GEN (§2.3.6) and
CKA_EC_PARAMS the RFC 8410 OID 1.3.101.112, signing with CKM_EDDSA (pure Ed25519, 64 bytes);
P-256 keys with CKM_EC_KEY_PAIR_GEN and CKA_EC_PARAMS the OID 1.2.840.10045.3.1.7, signing
with CKM_ECDSA over a SHA-256 digest taken here (§2.3.1: the token returns ``r || s``, which is
exactly the JOSE ES256 form of RFC 7518 §3.4).  Public keys are read back from CKA_EC_POINT.

Generating a key and inserting its row are not atomic: a key whose row was never committed is
left unreferenced on the token (harmless; it never signs).  Token access goes through the
shared :class:`~credit_commons.keys.pkcs11.Pkcs11Token`, so errors are the token's
``KmsUnavailable`` and ``KmsConfigInvalid``.  python-pkcs11 is imported where the token is
used, so loading this module costs nothing without an HSM.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from sqlalchemy.orm import Session as DbSession

from credit_commons.core.clock import utc
from credit_commons.keys.algorithms import KeyType, PublicKey
from credit_commons.keys.errors import KeyExists, KeyInvalid, KmsConfigInvalid
from credit_commons.keys.jwk import public_key_to_jwk, thumbprint
from credit_commons.keys.models import SigningKeyRow
from credit_commons.keys.pkcs11 import Pkcs11Token
from credit_commons.keys.store import KeyVersion, RowKeyStore, StoredSigner, key_version

if TYPE_CHECKING:
    from pkcs11.types import Session

__all__ = ["Pkcs11KeyStore", "Pkcs11Signer"]

# DER OBJECT IDENTIFIERs for CKA_EC_PARAMS: id-Ed25519 (RFC 8410 §3) and prime256v1 (RFC 5480).
_EC_PARAMS = {
    KeyType.ED25519: bytes.fromhex("06032b6570"),
    KeyType.P256: bytes.fromhex("06082a8648ce3d030107"),
}
_POINT_LEN = {KeyType.ED25519: 32, KeyType.P256: 65}
_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,31}")


def _raw_point(key_type: KeyType, ec_point: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point; some tokens give the bare point."""
    size = _POINT_LEN[key_type]
    if len(ec_point) == size + 2 and ec_point[0] == 0x04 and ec_point[1] == size:
        return ec_point[2:]
    if len(ec_point) == size:
        return ec_point
    raise KeyInvalid("the token returned an EC point of unexpected length")


def _reference(label: str, key_id: bytes) -> str:
    ident = "".join(f"%{b:02x}" for b in key_id)
    return f"pkcs11:object={quote(label, safe='')};id={ident};type=private"


def _parse_reference(reference: str) -> tuple[str, bytes]:
    """(label, id) from a reference made by :func:`_reference`; raises ``KmsConfigInvalid``."""
    try:
        scheme, _, path = reference.partition(":")
        attrs = dict(part.split("=", 1) for part in path.split(";"))
        if scheme != "pkcs11" or attrs.get("type") != "private":
            raise ValueError("not a private-key PKCS#11 URI")
        return unquote(attrs["object"]), bytes.fromhex(attrs["id"].replace("%", ""))
    except (ValueError, KeyError) as e:
        raise KmsConfigInvalid("a stored PKCS#11 key reference is malformed") from e


class Pkcs11Signer(StoredSigner):
    """A :class:`StoredSigner` whose private key stays in the token: :meth:`sign` calls it."""

    __slots__ = ("_key_id", "_token")

    def __init__(self, info: KeyVersion, token: Pkcs11Token, key_id: bytes) -> None:
        # No in-memory private key exists, so StoredSigner.__init__ (which takes one) is not
        # called; every method of StoredSigner except sign() reads only ``info``.
        self.info = info
        self._token = token
        self._key_id = key_id

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self.info.name}#{self.info.version})"

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """Sign each of ``messages`` inside the token, one after another (the token's
        sessions are not shared between threads)."""
        return [self.sign(m) for m in messages]

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` inside the token: EdDSA, or ES256 as ``r || s`` (64 bytes).

        Raises ``KmsUnavailable`` or ``KmsConfigInvalid`` (key gone from the token).
        """
        from pkcs11.constants import ObjectClass  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
        from pkcs11.mechanisms import Mechanism  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
        from pkcs11.types import SignMixin  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        key_type = self.info.key_type

        def op(session: Session) -> bytes:
            key = self._token.find(session, ObjectClass.PRIVATE_KEY, key_id=self._key_id)
            if not isinstance(key, SignMixin):
                raise KmsConfigInvalid(
                    f"signing key {self.info.name} v{self.info.version} is not on the token"
                )
            if key_type is KeyType.ED25519:
                return key.sign(data, mechanism=Mechanism.EDDSA)
            return key.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA)

        return self._token.run(op)


class Pkcs11KeyStore(RowKeyStore):
    """Signing keys (Ed25519, P-256) generated and used inside a PKCS#11 token.

    Token objects are labelled ``<label_prefix>-<name>-v<version>``.  Raises
    ``KmsConfigInvalid`` for a malformed prefix, or as ``Pkcs11Token.connect`` when the token
    cannot be opened (``KmsConfigInvalid``, ``KmsUnavailable``).
    """

    backend = "pkcs11"

    def __init__(
        self,
        lib_path: str | Path,
        token_label: str,
        pin: str,
        *,
        label_prefix: str = "commons-sig",
    ) -> None:
        if not isinstance(label_prefix, str) or not _PREFIX.fullmatch(label_prefix):
            raise KmsConfigInvalid("the key label prefix is 1-32 of a-z, 0-9 and '-'")
        self._prefix = label_prefix
        self._token = Pkcs11Token.connect(lib_path, token_label, pin)

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore({self._token!r})"

    def close(self) -> None:
        """Release the token connection."""
        self._token.close()

    def _generate(self, key_type: KeyType, label: str) -> tuple[PublicKey, bytes]:
        from pkcs11.constants import (  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
            Attribute,
            MechanismFlag,
        )
        from pkcs11.mechanisms import KeyType as P11KeyType  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        p11_key_type = P11KeyType.EC_EDWARDS if key_type is KeyType.ED25519 else P11KeyType.EC
        key_id = secrets.token_bytes(16)

        def op(session: Session) -> bytes:
            public, _private = session.generate_keypair(
                p11_key_type,
                id=key_id,
                label=label,
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={Attribute.EC_PARAMS: _EC_PARAMS[key_type]},
                private_template={
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )
            return bytes(public[Attribute.EC_POINT])

        point = self._token.run(op)
        return PublicKey.from_raw(key_type, _raw_point(key_type, point)), key_id

    def _destroy(self, key_id: bytes) -> None:
        from pkcs11.constants import Attribute  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        def op(session: Session) -> None:
            for obj in list(session.get_objects({Attribute.ID: key_id})):
                obj.destroy()

        self._token.run(op)

    def _add(
        self, session: DbSession, name: str, version: int, key_type: KeyType, now: datetime
    ) -> KeyVersion:
        label = f"{self._prefix}-{name}-v{version}"
        public, key_id = self._generate(key_type, label)
        row = SigningKeyRow(
            name=name,
            version=version,
            key_type=key_type.value,
            kid=thumbprint(public),
            public_jwk=json.dumps(public_key_to_jwk(public), sort_keys=True),
            backend=self.backend,
            private_blob=_reference(label, key_id),
            created_at=utc(now),
        )
        try:
            return self._row(session, name, row)
        except KeyExists:
            self._destroy(key_id)
            raise

    def signer(self, session: DbSession, name: str) -> StoredSigner:
        """A signer for the newest version of ``name``, signing inside the token.

        Raises ``KeyNotFound`` (also for a key of another backend) or ``KmsConfigInvalid``
        for a malformed reference.
        """
        row = self._newest(session, name)
        _label, key_id = _parse_reference(row.private_blob)
        return Pkcs11Signer(key_version(row), self._token, key_id)
