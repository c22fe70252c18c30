"""``Pkcs11Kms``: the KMS on any PKCS#11 token (an HSM; SoftHSM2 in tests), via python-pkcs11.

Objects on the token (``P`` is ``key_label_prefix``), all created *inside* the token:

* ``P-v<N>`` — master-key version N: CKO_SECRET_KEY, CKK_AES, 32 bytes, made with
  CKM_AES_KEY_GEN; CKA_TOKEN, CKA_PRIVATE and CKA_SENSITIVE true, CKA_EXTRACTABLE false,
  only CKA_ENCRYPT/CKA_DECRYPT allowed.  Wrapping is CKM_AES_GCM (PKCS#11 v2.40 curr.
  §2.12.3; NIST SP 800-38D) with a random 96-bit IV and 128-bit tag; the blob is
  ``0x01 || IV(12) || ciphertext || tag`` and the associated data is
  :func:`~credit_commons.vault.kms.wrap_aad` (KEK id, version, caller's aad).  Random IVs
  bound each version to 2^32 wraps (SP 800-38D §8.3): rotate long before.
* ``P-pepper`` — the pseudonym pepper: CKK_GENERIC_SECRET, 32 bytes, CKM_GENERIC_SECRET_KEY_GEN,
  sensitive, non-extractable, only CKA_SIGN/CKA_VERIFY; MACs are CKM_SHA256_HMAC (v2.40 curr.
  §2.20), so the pepper never leaves the token.
* ``P-state`` — CKO_DATA objects (private, on the token) whose CKA_VALUE is JSON
  ``{"min_decrypt_version": N}``.  Tokens may refuse to modify CKA_VALUE, so a change writes a
  new object and then destroys the old ones; readers take the largest N, which is safe because
  the minimum only ever goes up.

The token itself — one logged-in session per token, shared in the process, used under the
library's lock, reopened once when lost — is :class:`~credit_commons.keys.pkcs11.Pkcs11Token`,
shared with the signing-key store.

Errors are translated where they enter: a failed decryption (bad tag, wrong key, short input)
is :class:`DecryptionFailed`; token, session and device problems are :class:`KmsUnavailable`;
a missing library, token or key, a wrong PIN or an unsupported mechanism is
:class:`KmsConfigInvalid`.  The PIN is never logged or put in an error.  python-pkcs11 is
imported where the token is used, so loading this module costs nothing without an HSM.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credit_commons.core.encoding import b64url_encode
from credit_commons.keys import Pkcs11Token
from credit_commons.vault.errors import (
    DecryptionFailed,
    KeyVersionRetired,
    KmsConfigInvalid,
)
from credit_commons.vault.kms import (
    PEPPER_FINGERPRINT_MESSAGE,
    WrappedKey,
    check_min_version,
    hmac_message,
    wrap_aad,
)

if TYPE_CHECKING:
    from pkcs11.constants import Attribute
    from pkcs11.types import Object, Session

__all__ = ["Pkcs11Kms"]

_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,31}")
_NONCE_LEN = 12
_BLOB_FORMAT = 1
_APPLICATION = "credit-commons"


def _secret_template() -> dict[Attribute, Any]:
    """Added to python-pkcs11's template, whose ``capabilities`` set every usage flag
    (CKA_ENCRYPT, CKA_SIGN, CKA_WRAP, CKA_DERIVE, ...) explicitly true or false."""
    from pkcs11.constants import Attribute  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

    return {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
    }


def _one_shot(result: bytes | Iterator[bytes]) -> bytes:
    # python-pkcs11 returns bytes for bytes input (an iterator only for streamed input).
    if not isinstance(result, bytes):
        raise TypeError("expected a single-part result")
    return result


class Pkcs11Kms:
    """The KMS on a PKCS#11 token: AES-256-GCM master-key versions and an HMAC pepper.

    With ``create_missing`` an empty token gets version 1 and a pepper; otherwise missing keys
    raise :class:`KmsConfigInvalid` (so a wrong prefix never silently makes a new pepper).
    Raises :class:`KmsConfigInvalid` or :class:`KmsUnavailable` as :meth:`Pkcs11Token.connect`.
    """

    def __init__(
        self,
        lib_path: str | Path,
        token_label: str,
        pin: str,
        *,
        key_label_prefix: str = "commons-kek",
        create_missing: bool = False,
    ) -> None:
        if not isinstance(key_label_prefix, str) or not _PREFIX.fullmatch(key_label_prefix):
            raise KmsConfigInvalid("the key label prefix is 1-32 of a-z, 0-9 and '-'")
        self._prefix = key_label_prefix
        self._kek_id = f"pkcs11:{key_label_prefix}"
        self._token = Pkcs11Token.connect(lib_path, token_label, pin)
        self._versions: list[int] = []
        self._min = 1
        try:
            self.refresh()
            if not self._versions or self._pepper() is None:
                if not create_missing:
                    raise KmsConfigInvalid(
                        f"token {token_label!r} holds no {key_label_prefix}-v1 key or pepper",
                        hint="check the token and prefix, or construct Pkcs11Kms once with "
                        "create_missing=True to generate them",
                    )
                if not self._versions:
                    self.rotate()
                if self._pepper() is None:
                    self._token.run(self._generate_pepper)
        except BaseException:
            self._token.close()
            raise

    def __repr__(self) -> str:
        return f"Pkcs11Kms({self._kek_id}, {self._token!r})"

    def close(self) -> None:
        """Release the token connection."""
        self._token.close()

    # -- token objects -------------------------------------------------------------------

    def _label(self, version: int) -> str:
        return f"{self._prefix}-v{version}"

    def _scan(self, session: Session) -> tuple[list[int], int]:
        from pkcs11.constants import (  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
            Attribute,
            ObjectClass,
        )

        pattern = re.compile(rf"^{re.escape(self._prefix)}-v([1-9][0-9]*)$")
        versions = []
        for obj in self._token.objects(session, ObjectClass.SECRET_KEY):
            match = pattern.match(obj[Attribute.LABEL])
            if match:
                versions.append(int(match.group(1)))
        minimum = 1
        state = self._token.objects(session, ObjectClass.DATA, label=f"{self._prefix}-state")
        for obj in state:
            try:
                minimum = max(minimum, int(json.loads(obj[Attribute.VALUE])["min_decrypt_version"]))
            except (ValueError, KeyError, TypeError) as e:
                raise KmsConfigInvalid(f"the {self._prefix}-state object is malformed") from e
        return sorted(versions), minimum

    def refresh(self) -> None:
        """Rescan the token (after another process rotated or retired versions)."""
        self._versions, self._min = self._token.run(self._scan)

    def _pepper(self) -> Object | None:
        from pkcs11.constants import ObjectClass  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        return self._token.run(
            lambda s: self._token.find(s, ObjectClass.SECRET_KEY, label=f"{self._prefix}-pepper")
        )

    def _generate_pepper(self, session: Session) -> None:
        from pkcs11.constants import MechanismFlag  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
        from pkcs11.mechanisms import (  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
            KeyType,
            Mechanism,
        )

        session.generate_key(
            KeyType.GENERIC_SECRET,
            256,
            label=f"{self._prefix}-pepper",
            id=f"{self._prefix}-pepper".encode(),
            store=True,
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            mechanism=Mechanism.GENERIC_SECRET_KEY_GEN,
            template=_secret_template(),
        )

    def _kek(self, session: Session, version: int) -> Object:
        from pkcs11.constants import ObjectClass  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        key = self._token.find(session, ObjectClass.SECRET_KEY, label=self._label(version))
        if key is None:
            raise DecryptionFailed()
        return key

    # -- Kms -----------------------------------------------------------------------------

    @property
    def kek_id(self) -> str:
        """``pkcs11:`` and the key label prefix."""
        return self._kek_id

    @property
    def min_decrypt_version(self) -> int:
        """The oldest version :meth:`unwrap` opens."""
        return self._min

    def current_version(self) -> int:
        """The newest master-key version on the token."""
        return self._versions[-1]

    def versions(self) -> list[int]:
        """Every master-key version on the token, oldest first."""
        return list(self._versions)

    def wrap(self, plaintext: bytes, *, aad: bytes) -> WrappedKey:
        """AES-256-GCM inside the token under the newest version, bound to ``aad``.

        Raises :class:`KmsUnavailable` or :class:`KmsConfigInvalid`.
        """
        from pkcs11.mechanisms import (  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
            GCMParams,
            Mechanism,
        )
        from pkcs11.types import EncryptMixin  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        version = self.current_version()
        nonce = secrets.token_bytes(_NONCE_LEN)
        params = GCMParams(nonce, wrap_aad(self._kek_id, version, aad), 128)

        def op(session: Session) -> bytes:
            key = self._kek(session, version)
            if not isinstance(key, EncryptMixin):
                raise KmsConfigInvalid(f"{self._label(version)} may not encrypt")
            return _one_shot(
                key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=params)
            )

        ct = self._token.run(op)
        return WrappedKey(self._kek_id, version, bytes([_BLOB_FORMAT]) + nonce + ct)

    def unwrap(self, wrapped: WrappedKey, *, aad: bytes) -> bytes:
        """AES-256-GCM decryption inside the token.

        Raises :class:`KeyVersionRetired` below the minimum decryption version,
        :class:`DecryptionFailed` for every failure to open, :class:`KmsUnavailable`.
        """
        from pkcs11.mechanisms import (  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
            GCMParams,
            Mechanism,
        )
        from pkcs11.types import DecryptMixin  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        if wrapped.kek_id != self._kek_id:
            raise DecryptionFailed()
        if wrapped.version < self._min:
            raise KeyVersionRetired(f"master key version {wrapped.version} is retired")
        if wrapped.version not in self._versions:
            self.refresh()
            if wrapped.version not in self._versions:
                raise DecryptionFailed()
        blob = wrapped.blob
        if len(blob) < 1 + _NONCE_LEN + 16 or blob[0] != _BLOB_FORMAT:
            raise DecryptionFailed()
        params = GCMParams(blob[1 : 1 + _NONCE_LEN], wrap_aad(self._kek_id, wrapped.version, aad))

        def op(session: Session) -> bytes:
            key = self._kek(session, wrapped.version)
            if not isinstance(key, DecryptMixin):
                raise DecryptionFailed()
            return _one_shot(
                key.decrypt(
                    blob[1 + _NONCE_LEN :], mechanism=Mechanism.AES_GCM, mechanism_param=params
                )
            )

        return self._token.run(op, failure=DecryptionFailed)

    def rotate(self) -> int:
        """Generate the next master-key version inside the token and return it."""
        from pkcs11.constants import MechanismFlag  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
        from pkcs11.mechanisms import KeyType  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        def op(session: Session) -> int:
            versions, _ = self._scan(session)
            version = (versions[-1] if versions else 0) + 1
            session.generate_key(
                KeyType.AES,
                256,
                label=self._label(version),
                id=self._label(version).encode(),
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template=_secret_template(),
            )
            return version

        with self._token.locked():
            version = self._token.run(op)
            self.refresh()
        return version

    def set_min_decrypt_version(self, version: int) -> None:
        """Persist the minimum decryption version in a ``P-state`` data object.

        Raises :class:`KmsConfigInvalid` for a version outside 1 .. current, or below the
        current minimum (the minimum only goes up).
        """
        from pkcs11.constants import (  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
            Attribute,
            ObjectClass,
        )

        def op(session: Session) -> None:
            old = self._token.objects(session, ObjectClass.DATA, label=f"{self._prefix}-state")
            session.create_object(
                {
                    Attribute.CLASS: ObjectClass.DATA,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.LABEL: f"{self._prefix}-state",
                    Attribute.APPLICATION: _APPLICATION,
                    Attribute.VALUE: json.dumps({"min_decrypt_version": version}).encode(),
                }
            )
            for obj in old:
                obj.destroy()

        with self._token.locked():
            self.refresh()
            check_min_version(version, self.current_version())
            if version < self._min:
                raise KmsConfigInvalid(
                    f"the minimum decryption version is {self._min} and only goes up"
                )
            self._token.run(op)
            self._min = version

    def destroy_versions_below(self, version: int) -> list[int]:
        """Retire every version below ``version``, then destroy their ``P-v<N>`` objects on
        the token (C_DestroyObject); returns the versions destroyed now.

        Raises :class:`KmsConfigInvalid` for a version outside 1 .. current,
        :class:`KmsUnavailable`.
        """
        from pkcs11.constants import ObjectClass  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        with self._token.locked():
            self.refresh()
            check_min_version(version, self.current_version())
            # Retired first: a crash in between leaves refused versions, destroyed next run.
            if version > self._min:
                self.set_min_decrypt_version(version)
            doomed = [v for v in self._versions if v < version]

            def op(session: Session) -> None:
                for number in doomed:
                    label = self._label(number)
                    for obj in self._token.objects(session, ObjectClass.SECRET_KEY, label=label):
                        obj.destroy()

            if doomed:
                self._token.run(op)
                self._token.forget_objects()
            self.refresh()
        return doomed

    def _mac(self, message: bytes) -> bytes:
        from pkcs11.constants import ObjectClass  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
        from pkcs11.mechanisms import Mechanism  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM
        from pkcs11.types import SignMixin  # noqa: PLC0415  # deferred: python-pkcs11, only with an HSM

        def op(session: Session) -> bytes:
            key = self._token.find(session, ObjectClass.SECRET_KEY, label=f"{self._prefix}-pepper")
            if not isinstance(key, SignMixin):
                raise KmsConfigInvalid(f"the {self._prefix}-pepper key is missing or cannot sign")
            return key.sign(message, mechanism=Mechanism.SHA256_HMAC)

        return self._token.run(op)

    def hmac(self, data: bytes, *, label: str) -> bytes:
        """CKM_SHA256_HMAC inside the token of ``label || 0x00 || data``.

        Raises ``ValidationError`` for a malformed label, :class:`KmsUnavailable`.
        """
        return self._mac(hmac_message(data, label))

    def pepper_fingerprint(self) -> str:
        """base64url of the first 16 bytes of the HMAC of the fingerprint message."""
        return b64url_encode(self._mac(PEPPER_FINGERPRINT_MESSAGE)[:16])
