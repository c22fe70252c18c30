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

Thread safety: python-pkcs11 calls C_Initialize with NULL arguments, which tells the library
that it will not be called from several threads at once (PKCS#11 v2.40 base §5.4).  So every
call into one library goes through one lock, on one logged-in session per token, shared by
every user in the process (:class:`Pkcs11Token`).  A second C_Login would fail anyway: login
state belongs to the application, not the session, and closing a logged-in session logs out
all of them.  A lost session (token removed, HSM restarted) is reopened once per call.

Errors are translated where they enter: a failed decryption (bad tag, wrong key, short input)
is :class:`DecryptionFailed`; token, session and device problems are :class:`KmsUnavailable`;
a missing library, token or key, a wrong PIN or an unsupported mechanism is
:class:`KmsConfigInvalid`.  The PIN is never logged or put in an error.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pkcs11
from pkcs11 import exceptions as p11e
from pkcs11.constants import Attribute, MechanismFlag, ObjectClass
from pkcs11.mechanisms import GCMParams, Mechanism
from pkcs11.mechanisms import KeyType as P11KeyType
from pkcs11.types import DecryptMixin, EncryptMixin, Object, Session, SignMixin, Token

from credit_commons.core.encoding import b64url_encode
from credit_commons.vault.errors import (
    DecryptionFailed,
    KeyVersionRetired,
    KmsConfigInvalid,
    KmsUnavailable,
)
from credit_commons.vault.kms import (
    PEPPER_FINGERPRINT_MESSAGE,
    WrappedKey,
    check_min_version,
    hmac_message,
    wrap_aad,
)

__all__ = ["Pkcs11Kms", "Pkcs11Token"]

T = TypeVar("T")

_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,31}")
_NONCE_LEN = 12
_BLOB_FORMAT = 1
_APPLICATION = "credit-commons"
# Errors after which the session is reopened and the call retried once.
_SESSION_LOST = (
    p11e.SessionHandleInvalid,
    p11e.SessionClosed,
    p11e.UserNotLoggedIn,
    p11e.ObjectHandleInvalid,
    p11e.KeyHandleInvalid,
    p11e.DeviceRemoved,
    p11e.TokenNotPresent,
)
# Errors that mean the token cannot do what we ask: a configuration problem, not an outage.
_UNSUPPORTED = (
    p11e.MechanismInvalid,
    p11e.MechanismParamInvalid,
    p11e.FunctionNotSupported,
    p11e.KeyTypeInconsistent,
    p11e.TemplateInconsistent,
    p11e.TemplateIncomplete,
    p11e.AttributeValueInvalid,
    p11e.AttributeTypeInvalid,
)


class Pkcs11Token:
    """One logged-in read/write session on one token, shared in the process, used under the
    library's lock.  Get it with :meth:`connect`; release it with :meth:`close`."""

    _lib_locks: ClassVar[dict[str, threading.RLock]] = {}
    _shared: ClassVar[dict[tuple[str, str], Pkcs11Token]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, lib_path: str, token_label: str, pin: str, lock: threading.RLock) -> None:
        self.lib_path = lib_path
        self.token_label = token_label
        self._pin = pin
        self._lock = lock
        self._session: Session | None = None
        self._objects: dict[tuple[ObjectClass, str | None, bytes | None], Object] = {}
        self._users = 0

    def __repr__(self) -> str:  # never show the PIN
        return f"Pkcs11Token({self.lib_path!r}, {self.token_label!r})"

    @classmethod
    def connect(cls, lib_path: str | Path, token_label: str, pin: str) -> Pkcs11Token:
        """The shared connection to ``token_label`` through the library at ``lib_path``.

        Raises :class:`KmsConfigInvalid` for a library that does not load, an unknown token or
        a wrong PIN, and :class:`KmsUnavailable` when the token cannot be reached.
        """
        path = str(Path(lib_path).resolve())
        with cls._registry_lock:
            token = cls._shared.get((path, token_label))
            if token is None:
                lock = cls._lib_locks.setdefault(path, threading.RLock())
                token = cls(path, token_label, pin, lock)
                with token._lock:
                    token._open()
                cls._shared[(path, token_label)] = token
            elif not hmac.compare_digest(pin.encode(), token._pin.encode()):
                raise KmsConfigInvalid(
                    f"token {token_label!r} is already open in this process with another PIN"
                )
            token._users += 1
            return token

    def close(self) -> None:
        """Release this user's share; the last one closes the session (and logs out)."""
        with self._registry_lock, self._lock:
            self._users -= 1
            if self._users > 0:
                return
            self._shared.pop((self.lib_path, self.token_label), None)
            session, self._session = self._session, None
            self._objects.clear()
            if session is not None:
                # A session that is gone already has nothing left to release.
                with suppress(p11e.PKCS11Error):
                    session.close()

    def _open(self) -> Session:
        try:
            lib = pkcs11.lib(self.lib_path)
            token: Token = lib.get_token(token_label=self.token_label)
        except p11e.NoSuchToken as e:
            raise KmsConfigInvalid(f"no PKCS#11 token labelled {self.token_label!r}") from e
        except p11e.PKCS11Error as e:
            raise KmsConfigInvalid(
                f"the PKCS#11 library {self.lib_path} cannot be used ({type(e).__name__})"
            ) from e
        try:
            try:
                session = token.open(rw=True, user_pin=self._pin)
            except p11e.UserAlreadyLoggedIn:
                # Something else in this process logged in; the login is shared by sessions.
                session = token.open(rw=True)
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange, p11e.PinLocked) as e:
            raise KmsConfigInvalid(
                f"the PIN of PKCS#11 token {self.token_label!r} was refused ({type(e).__name__})"
            ) from e
        except p11e.PKCS11Error as e:
            raise KmsUnavailable(
                f"cannot open a session on token {self.token_label!r} ({type(e).__name__})"
            ) from e
        self._session = session
        self._objects.clear()
        return session

    def run(self, op: Callable[[Session], T], *, decrypting: bool = False) -> T:
        """Run ``op`` on the session under the library lock, translating PKCS#11 errors.

        With ``decrypting``, any other PKCS#11 failure is :class:`DecryptionFailed`.  Raises
        :class:`KmsUnavailable` (token or session lost twice, device errors) or
        :class:`KmsConfigInvalid` (unsupported mechanism or template).
        """
        with self._lock:
            for attempt in (1, 2):
                session = self._session or self._open()
                try:
                    return op(session)
                except _SESSION_LOST as e:
                    self._session = None
                    self._objects.clear()
                    if attempt == 2:
                        raise KmsUnavailable(
                            f"lost the session on token {self.token_label!r} ({type(e).__name__})"
                        ) from e
                except _UNSUPPORTED as e:
                    if decrypting:
                        raise DecryptionFailed() from e
                    raise KmsConfigInvalid(
                        f"token {self.token_label!r} refused the operation ({type(e).__name__})",
                        hint="the token must support CKM_AES_GCM, CKM_SHA256_HMAC, "
                        "CKM_EDDSA and CKM_ECDSA",
                    ) from e
                except p11e.PKCS11Error as e:
                    if decrypting:
                        raise DecryptionFailed() from e
                    raise KmsUnavailable(
                        f"token {self.token_label!r} failed ({type(e).__name__})"
                    ) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def find(
        self,
        session: Session,
        object_class: ObjectClass,
        *,
        label: str | None = None,
        key_id: bytes | None = None,
    ) -> Object | None:
        """The one object of ``object_class`` with this label and/or id (cached until the
        session is reopened), or None.  Raises :class:`KmsConfigInvalid` if several match."""
        cache_key = (object_class, label, key_id)
        cached = self._objects.get(cache_key)
        if cached is not None:
            return cached
        attrs: dict[Attribute, Any] = {Attribute.CLASS: object_class}
        if label is not None:
            attrs[Attribute.LABEL] = label
        if key_id is not None:
            attrs[Attribute.ID] = key_id
        found = list(session.get_objects(attrs))
        if len(found) > 1:
            raise KmsConfigInvalid(f"the token holds {len(found)} objects labelled {label!r}")
        if found:
            self._objects[cache_key] = found[0]
            return found[0]
        return None

    def forget_objects(self) -> None:
        """Drop the cached object handles (after objects were destroyed)."""
        with self._lock:
            self._objects.clear()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the library lock across several :meth:`run` calls (for read-modify-write)."""
        with self._lock:
            yield


# Added to python-pkcs11's template, whose ``capabilities`` set every usage flag (CKA_ENCRYPT,
# CKA_SIGN, CKA_WRAP, CKA_DERIVE, ...) explicitly true or false.
_SECRET_TEMPLATE: dict[Attribute, Any] = {
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
        pattern = re.compile(rf"^{re.escape(self._prefix)}-v([1-9][0-9]*)$")
        versions = []
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
            match = pattern.match(obj[Attribute.LABEL])
            if match:
                versions.append(int(match.group(1)))
        minimum = 1
        state = {Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: f"{self._prefix}-state"}
        for obj in session.get_objects(state):
            try:
                minimum = max(minimum, int(json.loads(obj[Attribute.VALUE])["min_decrypt_version"]))
            except (ValueError, KeyError, TypeError) as e:
                raise KmsConfigInvalid(f"the {self._prefix}-state object is malformed") from e
        return sorted(versions), minimum

    def refresh(self) -> None:
        """Rescan the token (after another process rotated or retired versions)."""
        self._versions, self._min = self._token.run(self._scan)

    def _pepper(self) -> Object | None:
        return self._token.run(
            lambda s: self._token.find(s, ObjectClass.SECRET_KEY, label=f"{self._prefix}-pepper")
        )

    def _generate_pepper(self, session: Session) -> None:
        session.generate_key(
            P11KeyType.GENERIC_SECRET,
            256,
            label=f"{self._prefix}-pepper",
            id=f"{self._prefix}-pepper".encode(),
            store=True,
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            mechanism=Mechanism.GENERIC_SECRET_KEY_GEN,
            template=_SECRET_TEMPLATE,
        )

    def _kek(self, session: Session, version: int) -> Object:
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

        return self._token.run(op, decrypting=True)

    def rotate(self) -> int:
        """Generate the next master-key version inside the token and return it."""

        def op(session: Session) -> int:
            versions, _ = self._scan(session)
            version = (versions[-1] if versions else 0) + 1
            session.generate_key(
                P11KeyType.AES,
                256,
                label=self._label(version),
                id=self._label(version).encode(),
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template=_SECRET_TEMPLATE,
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

        def op(session: Session) -> None:
            old = list(
                session.get_objects(
                    {Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: f"{self._prefix}-state"}
                )
            )
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
                    for obj in list(
                        session.get_objects(
                            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}
                        )
                    ):
                        obj.destroy()

            if doomed:
                self._token.run(op)
                self._token.forget_objects()
            self.refresh()
        return doomed

    def _mac(self, message: bytes) -> bytes:
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
